//! Segment files: a header, then length-prefixed, CRC-checked records (layout in the module
//! doc of [`crate::relay`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::StreamError;

const MAGIC: &[u8; 8] = b"SLRELAY1";
/// length, CRC32, offset before, offset after, flags.
const RECORD_HEAD: usize = 4 + 4 + 8 + 8 + 1;
/// The record is a copy of the upstream file's FORMAT_DESCRIPTION put at the head of a segment
/// that starts mid-file, so that a reader starting there can decode: decode it, never apply it.
pub const FLAG_COPIED_FDE: u8 = 1;

/// One event as the relay holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The upstream offset where the event starts (the stream's position before it).
    pub before: u64,
    /// The upstream offset after it.
    pub after: u64,
    pub flags: u8,
    pub event: Vec<u8>,
}

fn corrupt(path: &Path, at: u64, reason: impl Into<String>) -> StreamError {
    StreamError::Corrupt {
        file: path.display().to_string(),
        offset: at,
        reason: reason.into(),
    }
}

fn io_error(path: &Path, action: &str, e: std::io::Error) -> StreamError {
    StreamError::Config(format!("relay log {}: {action}: {e}", path.display()))
}

fn header(file: &str, first_offset: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(18 + file.len());
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&first_offset.to_le_bytes());
    h.extend_from_slice(&(file.len() as u16).to_le_bytes());
    h.extend_from_slice(file.as_bytes());
    h
}

fn encode(record: &Record) -> Vec<u8> {
    let len = (RECORD_HEAD - 8 + record.event.len()) as u32;
    let mut body = Vec::with_capacity(RECORD_HEAD + record.event.len());
    body.extend_from_slice(&record.before.to_le_bytes());
    body.extend_from_slice(&record.after.to_le_bytes());
    body.push(record.flags);
    body.extend_from_slice(&record.event);
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Appends records to a new segment.
pub struct SegmentWriter {
    path: PathBuf,
    out: BufWriter<File>,
    pub bytes: u64,
}

impl SegmentWriter {
    /// Creates the segment with its header, durably (the file and its folder synced).
    pub fn create(
        path: &Path,
        file: &str,
        first_offset: u64,
    ) -> Result<SegmentWriter, StreamError> {
        let f = File::create(path).map_err(|e| io_error(path, "create", e))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        let h = header(file, first_offset);
        out.write_all(&h).map_err(|e| io_error(path, "write", e))?;
        let mut w = SegmentWriter {
            path: path.to_owned(),
            out,
            bytes: h.len() as u64,
        };
        w.sync()?;
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error(dir, "sync", e))?;
        }
        Ok(w)
    }

    pub fn append(&mut self, record: &Record) -> Result<(), StreamError> {
        let bytes = encode(record);
        self.out
            .write_all(&bytes)
            .map_err(|e| io_error(&self.path, "write", e))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Hands what was appended to the file (readers see it), without waiting for the disk.
    pub fn flush(&mut self) -> Result<(), StreamError> {
        self.out
            .flush()
            .map_err(|e| io_error(&self.path, "write", e))
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), StreamError> {
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_data())
            .map_err(|e| io_error(&self.path, "sync", e))
    }
}

/// Reads a segment's records in order, also while a puller is still appending to it.
pub struct SegmentReader {
    path: PathBuf,
    file: File,
    /// The upstream binlog file the segment holds.
    pub upstream_file: String,
    pub first_offset: u64,
    /// Where the next record starts in the segment file.
    pos: u64,
}

/// What [`SegmentReader::next`] found.
pub enum Next {
    Record(Record),
    /// Nothing more yet: the end of what has been written (or a record still being written).
    End,
}

impl SegmentReader {
    pub fn open(path: &Path) -> Result<SegmentReader, StreamError> {
        let file = File::open(path).map_err(|e| io_error(path, "open", e))?;
        let mut fixed = [0u8; 18];
        file.read_exact_at(&mut fixed, 0)
            .map_err(|_| corrupt(path, 0, "a segment without its header"))?;
        if &fixed[..8] != MAGIC {
            return Err(corrupt(path, 0, "not a Sluice relay segment"));
        }
        let first_offset = u64::from_le_bytes(fixed[8..16].try_into().unwrap_or_default());
        let name_len = u16::from_le_bytes([fixed[16], fixed[17]]) as usize;
        let mut name = vec![0u8; name_len];
        file.read_exact_at(&mut name, 18)
            .map_err(|_| corrupt(path, 18, "a segment header cut short"))?;
        Ok(SegmentReader {
            path: path.to_owned(),
            file,
            upstream_file: String::from_utf8_lossy(&name).into_owned(),
            first_offset,
            pos: 18 + name_len as u64,
        })
    }

    /// Where the next record would start: after the last whole record read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The next whole record; [`Next::End`] at the end of what is there. A record whose CRC
    /// does not match is corruption, named with the segment and byte offset.
    pub fn next_record(&mut self) -> Result<Next, StreamError> {
        let mut head = [0u8; 8];
        if read_fully(&self.file, &mut head, self.pos)? < head.len() {
            return Ok(Next::End);
        }
        let len = u32::from_le_bytes(head[..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().unwrap_or_default());
        if !(RECORD_HEAD - 8..=(1 << 31)).contains(&len) {
            return Err(corrupt(
                &self.path,
                self.pos,
                format!("a record of impossible length {len}"),
            ));
        }
        let mut body = vec![0u8; len];
        if read_fully(&self.file, &mut body, self.pos + 8)? < len {
            return Ok(Next::End);
        }
        if crc32fast::hash(&body) != crc {
            return Err(corrupt(&self.path, self.pos, "record CRC32 mismatch"));
        }
        let before = u64::from_le_bytes(body[..8].try_into().unwrap_or_default());
        let after = u64::from_le_bytes(body[8..16].try_into().unwrap_or_default());
        let flags = body[16];
        body.drain(..17);
        let event_size = body
            .get(9..13)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize);
        if event_size != Some(body.len()) {
            return Err(corrupt(
                &self.path,
                self.pos,
                "a record whose event size does not match its length",
            ));
        }
        self.pos += 8 + len as u64;
        Ok(Next::Record(Record {
            before,
            after,
            flags,
            event: body,
        }))
    }
}

/// Reads up to `buf.len()` bytes at `at`; fewer only at the end of the file.
fn read_fully(file: &File, buf: &mut [u8], at: u64) -> Result<usize, StreamError> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(StreamError::Config(format!("relay log read: {e}")));
            }
        }
    }
    Ok(done)
}

/// Cuts a segment back to its last whole, CRC-valid record (a crash while writing leaves a
/// torn tail). Returns the last record kept, and how many bytes were cut.
pub fn repair(path: &Path) -> Result<(Option<Record>, u64), StreamError> {
    let mut reader = SegmentReader::open(path)?;
    let mut last = None;
    loop {
        match reader.next_record() {
            Ok(Next::Record(r)) => last = Some(r),
            Ok(Next::End) | Err(StreamError::Corrupt { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    let keep = reader.position();
    let size = std::fs::metadata(path)
        .map_err(|e| io_error(path, "stat", e))?
        .len();
    if size > keep {
        let f = File::options()
            .write(true)
            .open(path)
            .map_err(|e| io_error(path, "open", e))?;
        f.set_len(keep)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_error(path, "truncate", e))?;
    }
    Ok((last, size - keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(size: usize, fill: u8) -> Vec<u8> {
        let mut e = vec![fill; size];
        e[9..13].copy_from_slice(&(size as u32).to_le_bytes());
        e
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment.000001");
        let mut w = SegmentWriter::create(&path, "bin.000007", 4).unwrap();
        let records: Vec<Record> = (0..5u64)
            .map(|i| Record {
                before: 4 + i * 100,
                after: 104 + i * 100,
                flags: 0,
                event: event(100, i as u8),
            })
            .collect();
        for r in &records {
            w.append(r).unwrap();
        }
        w.sync().unwrap();
        let mut r = SegmentReader::open(&path).unwrap();
        assert_eq!(r.upstream_file, "bin.000007");
        let mut got = Vec::new();
        while let Next::Record(rec) = r.next_record().unwrap() {
            got.push(rec);
        }
        assert_eq!(got, records);

        // A crash in the middle of the last record: the reader waits, the repair cuts it.
        let size = std::fs::metadata(&path).unwrap().len();
        let f = File::options().write(true).open(&path).unwrap();
        f.set_len(size - 30).unwrap();
        let mut r = SegmentReader::open(&path).unwrap();
        let mut n = 0;
        while let Next::Record(_) = r.next_record().unwrap() {
            n += 1;
        }
        assert_eq!(n, 4);
        let (last, cut) = repair(&path).unwrap();
        assert_eq!(last.unwrap(), records[3]);
        assert_eq!(cut, 8 + 17 + 100 - 30);
        let mut r = SegmentReader::open(&path).unwrap();
        let mut kept = Vec::new();
        while let Next::Record(rec) = r.next_record().unwrap() {
            kept.push(rec);
        }
        assert_eq!(kept, records[..4]);

        // A flipped byte inside a record is corruption, named with the place.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 20;
        bytes[at] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        let mut r = SegmentReader::open(&path).unwrap();
        let err = loop {
            match r.next_record() {
                Ok(Next::Record(_)) => continue,
                Ok(Next::End) => panic!("corruption not found"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("record CRC32 mismatch"), "{err}");
    }
}
