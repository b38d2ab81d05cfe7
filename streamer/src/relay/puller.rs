//! The puller: one binlog connection to the source, every event appended to the relay log.
//!
//! It keeps the 64-bit upstream position exactly as the reader does (same `advance` and ROTATE
//! rules), opens a segment at each connection start and each upstream file, and splits long
//! files into segments of about `segment_bytes` at transaction starts (the FORMAT_DESCRIPTION
//! copied at the head, so a reader can start there). After a lost connection it reconnects
//! with backoff and asks for the binlog from the end of the last stored event.

use std::fs::File;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mysql_async::binlog::BinlogChecksumAlg;
use mysql_async::binlog::BinlogVersion;
use sluice_core::{BinlogPosition, Endpoint, Flavor, GtidSet};
use tokio::sync::watch;

use super::dir::{Index, RelayDir, SegmentInfo};
use super::segment::{self, FLAG_COPIED_FDE, Record, SegmentWriter};
use crate::StreamError;
use crate::binlog_conn::{OpenError, open_stream};
use crate::cursor::{Cursor, advance, rotate_body};
use crate::event::event_type as et;
use crate::reader::{LOG_EVENT_ARTIFICIAL_F, RECONNECT_FOR, SILENCE};
use crate::transaction::Mark;

#[derive(Debug, Clone)]
pub struct PullerConfig {
    pub source: Endpoint,
    pub flavor: Flavor,
    pub server_id: u32,
    /// Closed segments older than this are purged (unless a task still needs them).
    pub retention: Option<Duration>,
    /// Oldest closed segments are purged while the relay is larger than this.
    pub max_bytes: Option<u64>,
    /// A segment is closed at the next transaction start past this size.
    pub segment_bytes: u64,
}

impl PullerConfig {
    pub fn new(source: Endpoint, flavor: Flavor, server_id: u32) -> PullerConfig {
        PullerConfig {
            source,
            flavor,
            server_id,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            max_bytes: None,
            segment_bytes: 64 << 20,
        }
    }
}

/// The one process pulling a source's binlog into a relay folder (it holds the lock).
pub struct Puller {
    cfg: PullerConfig,
    dir: RelayDir,
    _lock: File,
    index: Index,
    writer: Option<SegmentWriter>,
    cursor: Cursor,
    /// The last FORMAT_DESCRIPTION, copied at the head of segments that start mid-file.
    fde: Option<Vec<u8>>,
    /// Records appended to the open segment.
    records: u64,
}

impl Puller {
    /// Takes the relay's puller lock; `None` when another process pulls already.
    pub fn lock(cfg: PullerConfig, dir: RelayDir) -> Result<Option<Puller>, StreamError> {
        let Some(lock) = dir.try_lock_puller()? else {
            return Ok(None);
        };
        let index = dir.load_index()?;
        Ok(Some(Puller {
            cfg,
            dir,
            _lock: lock,
            index,
            writer: None,
            cursor: Cursor::default(),
            fde: None,
            records: 0,
        }))
    }

    /// Where pulling resumes: after the last whole stored event (a torn tail is cut first), or
    /// `start` for an empty relay.
    fn resume_point(&mut self, start: Option<&Mark>) -> Result<Mark, StreamError> {
        let Some(last) = self.index.segments.last_mut() else {
            return start.cloned().ok_or_else(|| {
                StreamError::Config(format!(
                    "the relay log at {} is empty: give a start point (--from-dump, --from or --from-gtid)",
                    self.dir.path().display()
                ))
            });
        };
        let path = self.dir.segment_path(last.seq);
        let (record, cut) = segment::repair(&path)?;
        if cut > 0 {
            tracing::warn!(segment = %path.display(), bytes = cut, "cut a torn record at the end of the relay log (a crash while writing); pulling it again");
        }
        let offset = record.map_or(last.first_offset, |r| r.after);
        last.end_offset = offset;
        // The next connection starts a segment of its own.
        last.closed = true;
        // Past 4 GiB of a file the pull resumes by reading that file again from its start
        // (the relay records no GTID position): see `open_stream`.
        let position = BinlogPosition::new(last.file.clone(), offset);
        tracing::info!(%position, "relay log: resuming the pull");
        Ok(Mark {
            position,
            gtid: GtidSet::default(),
        })
    }

    /// Pulls until `stop` turns true. `start` is used only when the relay is empty.
    pub async fn run(
        mut self,
        start: Option<Mark>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), StreamError> {
        let mut mark = self.resume_point(start.as_ref())?;
        self.index.source = self.cfg.source.address();
        let mut failing_since: Option<Instant> = None;
        let mut delay = Duration::from_millis(250);
        loop {
            let before = self.cursor.offset;
            match self.session(&mark, &mut stop).await {
                Ok(()) => {
                    self.close()?;
                    return Ok(());
                }
                Err(e) if e.is_transient() => {
                    if self.cursor.offset != before {
                        failing_since = None;
                        delay = Duration::from_millis(250);
                    }
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > RECONNECT_FOR {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, "relay log: binlog connection lost; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => {
                            self.close()?;
                            return Ok(());
                        }
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                    // Resume after the last stored event (still the old mark while a file
                    // was being read over up to it). No GTID set: the cursor may be inside a
                    // transaction, and a GTID start can only be at a transaction's beginning.
                    if !self.cursor.file.is_empty()
                        && !self.cursor.resync
                        && self.cursor.skip_to == 0
                    {
                        mark = Mark {
                            position: BinlogPosition::new(
                                self.cursor.file.clone(),
                                self.cursor.offset,
                            ),
                            gtid: GtidSet::default(),
                        };
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn error(&self, cause: mysql_async::Error) -> StreamError {
        let position = BinlogPosition::new(self.cursor.file.clone(), self.cursor.offset);
        StreamError::binlog(self.cfg.source.address(), position, cause)
    }

    async fn session(
        &mut self,
        mark: &Mark,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), StreamError> {
        let (mut stream, cursor) =
            open_stream(&self.cfg.source, self.cfg.flavor, self.cfg.server_id, mark)
                .await
                .map_err(|e| match e {
                    OpenError::Server(e) => self.error(e),
                    OpenError::Config(e) => e,
                })?;
        self.cursor = cursor;
        let mut first_event = true;
        let mut sync_tick = tokio::time::interval(Duration::from_secs(1));
        let mut purge_tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            let next = tokio::select! {
                n = tokio::time::timeout(SILENCE, stream.next()) => n,
                _ = stop.changed() => return Ok(()),
                _ = sync_tick.tick() => {
                    self.sync()?;
                    continue;
                }
                _ = purge_tick.tick() => {
                    self.purge()?;
                    continue;
                }
            };
            let ev = match next {
                Err(_) | Ok(None) => {
                    return Err(self.error(mysql_async::Error::Io(mysql_async::IoError::Io(
                        std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no event or heartbeat for 20 s, or the stream ended",
                        ),
                    ))));
                }
                Ok(Some(Err(e))) => return Err(self.error(e)),
                Ok(Some(Ok(ev))) => ev,
            };
            self.store(&ev, first_event)?;
            first_event = false;
        }
    }

    /// Appends one event and moves the upstream position past it.
    fn store(
        &mut self,
        ev: &mysql_async::binlog::events::Event,
        first_event: bool,
    ) -> Result<(), StreamError> {
        let h = ev.header();
        let kind = h.event_type_raw();
        if kind == et::HEARTBEAT {
            return Ok(());
        }
        if let Some(crc) = ev.checksum()
            && ev.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32)
                != u32::from_le_bytes(crc)
        {
            return Err(StreamError::Corrupt {
                file: self.cursor.file.clone(),
                offset: self.cursor.offset,
                reason: format!("CRC32 mismatch in a type {kind} event from the source"),
            });
        }
        let mut bytes = Vec::with_capacity(h.event_size() as usize);
        ev.write(BinlogVersion::Version4, &mut bytes)
            .map_err(|e| StreamError::Config(format!("relay log: re-encode an event: {e}")))?;
        let artificial = h.flags_raw() & LOG_EVENT_ARTIFICIAL_F != 0 || h.log_pos() == 0;
        let size = h.event_size();
        if kind == et::ROTATE {
            let (pos, name) = rotate_body(ev, first_event);
            if artificial && self.cursor.skip_to > 0 && name == self.cursor.file {
                // Re-reading the file up to where the relay ends: the segment starts there.
                self.cursor.rotate(name, pos);
                return Ok(());
            }
            if artificial {
                // A connection start: a new segment for the file the server names.
                self.open_segment(&name, pos, false)?;
                self.append(Record {
                    before: pos,
                    after: pos,
                    flags: 0,
                    event: bytes,
                })?;
                self.cursor.resync = self.cursor.resync && artificial;
            } else {
                let before = self.cursor.offset;
                self.append(Record {
                    before,
                    after: before + u64::from(size),
                    flags: 0,
                    event: bytes,
                })?;
                self.open_segment(&name, pos, false)?;
            }
            self.cursor.rotate(name, pos);
            return Ok(());
        }
        let resync = self.cursor.resync;
        let mut before = self.cursor.offset;
        if !artificial {
            advance(&mut self.cursor, size, h.log_pos());
            if resync {
                before = self.cursor.offset.saturating_sub(u64::from(size));
            }
        }
        if kind == et::FORMAT_DESCRIPTION {
            self.fde = Some(bytes.clone());
        }
        let skipping = self.cursor.skip_to > 0;
        if self.cursor.skips(before) {
            return Ok(()); // the relay holds it already
        }
        if skipping {
            // The first event past the re-read part: a segment of its own, with the file's
            // format description copied in front so that readers can decode it alone.
            let file = self.cursor.file.clone();
            self.open_segment(&file, before, true)?;
        }
        let starts_transaction = matches!(
            kind,
            et::GTID_MARIADB | et::GTID_MYSQL | et::ANONYMOUS_GTID | et::GTID_TAGGED_MYSQL
        );
        if starts_transaction
            && self
                .writer
                .as_ref()
                .is_some_and(|w| w.bytes >= self.cfg.segment_bytes)
        {
            let file = self.cursor.file.clone();
            self.open_segment(&file, before, true)?;
        }
        self.append(Record {
            before,
            after: self.cursor.offset,
            flags: 0,
            event: bytes,
        })?;
        // Readers follow closely: whole transactions are handed to the file at once.
        if matches!(
            kind,
            et::XID | et::QUERY | et::QUERY_COMPRESSED | et::XA_PREPARE
        ) && let Some(w) = self.writer.as_mut()
        {
            w.flush()?;
        }
        Ok(())
    }

    fn append(&mut self, record: Record) -> Result<(), StreamError> {
        if self.writer.is_none() {
            let (file, offset) = (self.cursor.file.clone(), record.before);
            self.open_segment(&file, offset, false)?;
        }
        if let Some(w) = self.writer.as_mut() {
            w.append(&record)?;
            self.records += 1;
        }
        Ok(())
    }

    /// Closes the current segment (durably) and starts the next one.
    fn open_segment(
        &mut self,
        file: &str,
        first_offset: u64,
        copy_fde: bool,
    ) -> Result<(), StreamError> {
        // After a real ROTATE the server also sends an artificial one for the new file: the
        // segment just opened for it serves.
        if self.records == 0
            && self.writer.is_some()
            && self
                .index
                .segments
                .last()
                .is_some_and(|s| s.file == file && s.first_offset == first_offset)
        {
            return Ok(());
        }
        self.close()?;
        self.records = 0;
        let seq = self.index.segments.last().map_or(1, |s| s.seq + 1);
        let path = self.dir.segment_path(seq);
        let mut w = SegmentWriter::create(&path, file, first_offset)?;
        if copy_fde && let Some(fde) = &self.fde {
            w.append(&Record {
                before: first_offset,
                after: first_offset,
                flags: FLAG_COPIED_FDE,
                event: fde.clone(),
            })?;
        }
        self.index.segments.push(SegmentInfo {
            seq,
            file: file.to_owned(),
            first_offset,
            end_offset: first_offset,
            bytes: w.bytes,
            created: RelayDir::now(),
            closed: false,
        });
        self.writer = Some(w);
        self.dir.save_index(&self.index)
    }

    /// Syncs the open segment and marks it closed in the index.
    fn close(&mut self) -> Result<(), StreamError> {
        self.sync()?;
        if let Some(last) = self.index.segments.last_mut()
            && self.writer.take().is_some()
        {
            last.closed = true;
            self.dir.save_index(&self.index)?;
        }
        Ok(())
    }

    /// Makes the open segment durable and records its end in the index.
    fn sync(&mut self) -> Result<(), StreamError> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        w.sync()?;
        let bytes = w.bytes;
        if let Some(last) = self.index.segments.last_mut() {
            if last.file == self.cursor.file && !self.cursor.resync {
                last.end_offset = self.cursor.offset.max(last.first_offset);
            }
            last.bytes = bytes;
        }
        self.dir.save_index(&self.index)
    }

    /// Deletes old closed segments that no task needs any more.
    fn purge(&mut self) -> Result<(), StreamError> {
        let needed = self.dir.needed();
        let now = RelayDir::now();
        let mut total: u64 = self.index.segments.iter().map(|s| s.bytes).sum();
        let mut removed = 0;
        while self.index.segments.len() > 1 {
            let (first, next) = (&self.index.segments[0], &self.index.segments[1]);
            let next_start = BinlogPosition::new(next.file.clone(), next.first_offset);
            if needed.as_ref().is_some_and(|n| next_start > *n) {
                break; // a task still needs events of this segment
            }
            let old = self
                .cfg
                .retention
                .is_some_and(|r| now.saturating_sub(first.created) > r.as_secs());
            let big = self.cfg.max_bytes.is_some_and(|m| total > m);
            if !(old || big) {
                break;
            }
            let path = self.dir.segment_path(first.seq);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(StreamError::Config(format!(
                    "relay log: delete {}: {e}",
                    path.display()
                )));
            }
            total -= first.bytes;
            self.index.segments.remove(0);
            removed += 1;
        }
        if removed > 0 {
            tracing::info!(
                segments = removed,
                "relay log: purged segments no task needs"
            );
            self.dir.save_index(&self.index)?;
        }
        Ok(())
    }
}
