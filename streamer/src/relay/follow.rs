//! Reading the relay log as a task: records in order from a position, across segments, waiting
//! at the end for the puller to append more.

use std::time::Duration;

use sluice_core::BinlogPosition;

use super::dir::RelayDir;
use super::segment::{Next, Record, SegmentReader};
use crate::StreamError;

pub struct Follower {
    dir: RelayDir,
    seq: u64,
    reader: SegmentReader,
}

impl Follower {
    /// Opens the segment holding `position`, waiting while the puller has not reached it yet
    /// (a fresh relay, or a position past its end); an error naming the relay's range when the
    /// relay does not reach back that far.
    pub async fn open(dir: &RelayDir, position: &BinlogPosition) -> Result<Follower, StreamError> {
        let index = loop {
            let index = dir.load_index()?;
            if index.find(position).is_some()
                || !(index.segments.is_empty() || index.covers(position))
            {
                break index;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let Some(segment) = index.find(position) else {
            return Err(dir.lacks(&index, position));
        };
        Ok(Follower {
            dir: dir.clone(),
            seq: segment.seq,
            reader: SegmentReader::open(&dir.segment_path(segment.seq))?,
        })
    }

    /// The upstream binlog file of the record last returned.
    pub fn upstream_file(&self) -> &str {
        &self.reader.upstream_file
    }

    /// The next record, waiting while the relay has nothing newer.
    pub async fn next(&mut self) -> Result<Record, StreamError> {
        loop {
            if let Next::Record(r) = self.reader.next_record()? {
                return Ok(r);
            }
            let next = self.dir.segment_path(self.seq + 1);
            if next.exists() {
                // The puller syncs a segment before it creates the next one: whatever was
                // appended to this one is there now.
                if let Next::Record(r) = self.reader.next_record()? {
                    return Ok(r);
                }
                self.seq += 1;
                self.reader = SegmentReader::open(&next)?;
                continue;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
