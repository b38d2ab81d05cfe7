//! Binlog event framing: the 19-byte v4 header, the body, the optional CRC32 trailer, and the
//! byte offset of every event as a `u64`.
//!
//! Why offsets are counted here: the header's `log_pos` (the end of the event) is 32 bits and
//! wraps in a file past 4 GiB (one huge transaction is never split across files). The reader
//! therefore starts at the file's first byte (or a known 64-bit offset) and adds event sizes,
//! and uses `log_pos` only as a cross-check of its low 32 bits.
//!
//! Header layout (little-endian): timestamp u32 | type u8 | server_id u32 | event_size u32 |
//! log_pos u32 | flags u16. The FORMAT_DESCRIPTION event says whether events carry a CRC32
//! (its body ends with the checksum algorithm byte, then its own CRC); with CRC32 on, every
//! event's last four bytes are the CRC32 of everything before them, and the reader checks it.

use std::io::Read;

use crate::StreamError;

pub const HEADER_LEN: usize = 19;
/// Every binlog file starts with these four bytes.
pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

/// Event type codes this crate names.
pub mod event_type {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const INTVAR: u8 = 5;
    pub const RAND: u8 = 13;
    pub const USER_VAR: u8 = 14;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const WRITE_ROWS_V1: u8 = 23;
    pub const UPDATE_ROWS_V1: u8 = 24;
    pub const DELETE_ROWS_V1: u8 = 25;
    pub const HEARTBEAT: u8 = 27;
    pub const ROWS_QUERY: u8 = 29;
    pub const WRITE_ROWS_V2: u8 = 30;
    pub const UPDATE_ROWS_V2: u8 = 31;
    pub const DELETE_ROWS_V2: u8 = 32;
    pub const GTID_MYSQL: u8 = 33;
    pub const ANONYMOUS_GTID: u8 = 34;
    pub const PREVIOUS_GTIDS: u8 = 35;
    pub const XA_PREPARE: u8 = 38;
    pub const PARTIAL_UPDATE_ROWS: u8 = 39;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const GTID_TAGGED_MYSQL: u8 = 42;
    pub const ANNOTATE_ROWS: u8 = 160;
    pub const BINLOG_CHECKPOINT: u8 = 161;
    pub const GTID_MARIADB: u8 = 162;
    pub const GTID_LIST: u8 = 163;
    pub const START_ENCRYPTION: u8 = 164;
    /// MariaDB's compressed QUERY and rows events (`log_bin_compress`), 165 to 171.
    pub const QUERY_COMPRESSED: u8 = 165;
    pub const DELETE_ROWS_COMPRESSED_V2: u8 = 171;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHeader {
    pub timestamp: u32,
    pub event_type: u8,
    pub server_id: u32,
    pub event_size: u32,
    /// The end of the event as the server wrote it: 32 bits, wraps past 4 GiB.
    pub log_pos: u32,
    pub flags: u16,
}

impl EventHeader {
    pub fn parse(b: &[u8; HEADER_LEN]) -> EventHeader {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        EventHeader {
            timestamp: u32_at(0),
            event_type: b[4],
            server_id: u32_at(5),
            event_size: u32_at(9),
            log_pos: u32_at(13),
            flags: u16::from_le_bytes([b[17], b[18]]),
        }
    }
}

/// Whether events end in a CRC32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlg {
    None,
    Crc32,
}

/// One event: where it starts, its header, and its body without header and CRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Byte offset of the event's first byte in its file: 64-bit, exact past 4 GiB.
    pub offset: u64,
    pub header: EventHeader,
    pub body: Vec<u8>,
}

impl Event {
    /// The offset just past this event (where the next one starts).
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.header.event_size)
    }
}

/// Reads the events of one binlog file from its start.
pub struct EventReader<R> {
    input: R,
    file: String,
    offset: u64,
    checksum: ChecksumAlg,
    log_pos_mismatches: u64,
}

impl<R: Read> EventReader<R> {
    /// Checks the magic bytes; the first event starts at offset 4.
    pub fn new(mut input: R, file: impl Into<String>) -> Result<EventReader<R>, StreamError> {
        let file = file.into();
        let mut magic = [0u8; 4];
        input
            .read_exact(&mut magic)
            .map_err(|e| StreamError::Corrupt {
                file: file.clone(),
                offset: 0,
                reason: e.to_string(),
            })?;
        if magic != MAGIC {
            return Err(StreamError::Corrupt {
                file,
                offset: 0,
                reason: "not a binlog file (bad magic bytes)".into(),
            });
        }
        Ok(EventReader {
            input,
            file,
            offset: 4,
            checksum: ChecksumAlg::None,
            log_pos_mismatches: 0,
        })
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> StreamError {
        StreamError::Corrupt {
            file: self.file.clone(),
            offset,
            reason: reason.into(),
        }
    }

    /// Events whose header `log_pos` is not the low 32 bits of their end here: 0 for a binlog
    /// the server wrote, the relayed events' count for a relay log.
    pub fn log_pos_mismatches(&self) -> u64 {
        self.log_pos_mismatches
    }

    /// The checksum setting read from the file's FORMAT_DESCRIPTION event.
    pub fn checksum(&self) -> ChecksumAlg {
        self.checksum
    }

    /// The next event, `None` at a clean end of file. A file cut inside an event is an error
    /// naming the offset where that event starts.
    pub fn next_event(&mut self) -> Result<Option<Event>, StreamError> {
        let start = self.offset;
        let mut head = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match self.input.read(&mut head[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(self.corrupt(start, "the file ends inside an event header")),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.corrupt(start, e.to_string())),
            }
        }
        let header = EventHeader::parse(&head);
        let size = header.event_size as usize;
        if size < HEADER_LEN {
            return Err(self.corrupt(
                start,
                format!("event size {size} is smaller than its header"),
            ));
        }
        let mut rest = vec![0u8; size - HEADER_LEN];
        self.input
            .read_exact(&mut rest)
            .map_err(|_| self.corrupt(start, "the file ends inside an event"))?;
        let end = start + size as u64;
        // log_pos holds the low 32 bits of the end offset (0 for artificial events). A relay
        // log keeps the source's log_pos, so a difference is counted, not an error: the CRC
        // is the corruption check, and the offset comes from the sizes.
        if header.log_pos != 0 && u64::from(header.log_pos) != end & 0xFFFF_FFFF {
            self.log_pos_mismatches += 1;
        }
        if header.event_type == event_type::FORMAT_DESCRIPTION {
            self.checksum = format_description_checksum(&rest);
        }
        if self.checksum == ChecksumAlg::Crc32 {
            if rest.len() < 4 {
                return Err(self.corrupt(start, "event too short for its CRC32"));
            }
            let (body, crc) = rest.split_at(rest.len() - 4);
            let mut h = crc32fast::Hasher::new();
            if header.event_type == event_type::FORMAT_DESCRIPTION {
                // The server computes the FDE's CRC with LOG_EVENT_BINLOG_IN_USE_F (0x01)
                // clear and sets the flag in the file while it writes to it, so a file that was
                // never closed cleanly still verifies.
                let mut clean = head;
                clean[17] &= !0x01;
                h.update(&clean);
            } else {
                h.update(&head);
            }
            h.update(body);
            let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
            if h.finalize() != want {
                return Err(self.corrupt(start, "CRC32 mismatch"));
            }
            rest.truncate(rest.len() - 4);
        }
        self.offset = end;
        Ok(Some(Event {
            offset: start,
            header,
            body: rest,
        }))
    }
}

/// The checksum algorithm a FORMAT_DESCRIPTION body declares. Layout: binlog_version u16,
/// server_version [50], create_timestamp u32, header_length u8, post-header lengths…, then
/// (servers since MySQL 5.6.1 / MariaDB 5.3) checksum_alg u8 and the event's own CRC32.
fn format_description_checksum(body: &[u8]) -> ChecksumAlg {
    let version = String::from_utf8_lossy(body.get(2..52).unwrap_or_default());
    let numbers: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(3)
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    let v = (
        numbers.first().copied().unwrap_or(0),
        numbers.get(1).copied().unwrap_or(0),
        numbers.get(2).copied().unwrap_or(0),
    );
    let has_alg = version.contains("MariaDB") && v >= (5, 3, 0) || v >= (5, 6, 1);
    if !has_alg || body.len() < 5 {
        return ChecksumAlg::None;
    }
    match body[body.len() - 5] {
        1 => ChecksumAlg::Crc32,
        _ => ChecksumAlg::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: u8, offset: u64, body: &[u8], crc: bool) -> Vec<u8> {
        let size = (HEADER_LEN + body.len() + if crc { 4 } else { 0 }) as u32;
        let end = offset + u64::from(size);
        let mut out = Vec::new();
        out.extend_from_slice(&1u32.to_le_bytes());
        out.push(event_type);
        out.extend_from_slice(&7u32.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&((end & 0xFFFF_FFFF) as u32).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(body);
        if crc {
            let c = crc32fast::hash(&out);
            out.extend_from_slice(&c.to_le_bytes());
        }
        out
    }

    #[test]
    fn offsets_are_sums_of_sizes_and_a_cut_event_is_an_error() {
        let mut file = MAGIC.to_vec();
        file.extend(event(event_type::QUERY, 4, b"abc", false));
        file.extend(event(event_type::XID, 4 + 22, &[0; 8], false));
        let mut r = EventReader::new(&file[..], "f").unwrap();
        let a = r.next_event().unwrap().unwrap();
        let b = r.next_event().unwrap().unwrap();
        assert_eq!((a.offset, a.end(), b.offset, b.end()), (4, 26, 26, 53));
        assert!(r.next_event().unwrap().is_none());
        let cut = &file[..file.len() - 3];
        let mut r = EventReader::new(cut, "f").unwrap();
        r.next_event().unwrap();
        assert!(
            r.next_event()
                .unwrap_err()
                .to_string()
                .contains("offset 26")
        );
    }

    #[test]
    fn log_pos_is_compared_modulo_four_gib() {
        // An event starting past 4 GiB: its log_pos holds only the low 32 bits of the end.
        let start = (5u64 << 30) + 100;
        let bytes = event(event_type::QUERY, start, b"x", false);
        let mut r = EventReader {
            input: &bytes[..],
            file: "big".into(),
            offset: start,
            checksum: ChecksumAlg::None,
            log_pos_mismatches: 0,
        };
        let e = r.next_event().unwrap().unwrap();
        assert_eq!(e.offset, start);
        assert_eq!(e.end(), start + 20);
        assert!(e.end() > u64::from(u32::MAX));
        assert_eq!(r.log_pos_mismatches(), 0);
    }

    #[test]
    fn bad_magic_is_refused() {
        assert!(EventReader::new(&b"nope"[..], "f").is_err());
    }
}
