//! How a running dump reports progress, without knowing who listens: the CLI draws progress
//! bars on a terminal, [`LogObserver`] writes periodic log lines everywhere else. Called per
//! chunk, never per row.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sluice_core::TableName;

pub trait DumpObserver: Send + Sync {
    /// The plan: every table with its number of chunks, in dump order.
    fn planned(&self, tables: &[(TableName, usize)]);
    /// A worker starts a chunk of `table`.
    fn chunk_started(&self, table: &TableName);
    /// A chunk of `table` is committed to storage.
    fn chunk_done(&self, table: &TableName, rows: u64, bytes: u64);
    /// Every chunk is done (metadata.json is next).
    fn finished(&self);
}

/// Progress as `tracing` lines, at most one every five seconds.
pub struct LogObserver {
    started: Instant,
    last: Mutex<Instant>,
    planned: AtomicU64,
    chunks: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
}

impl Default for LogObserver {
    fn default() -> Self {
        LogObserver {
            started: Instant::now(),
            last: Mutex::new(Instant::now()),
            planned: AtomicU64::new(0),
            chunks: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }
}

impl DumpObserver for LogObserver {
    fn planned(&self, tables: &[(TableName, usize)]) {
        let chunks: usize = tables.iter().map(|(_, c)| c).sum();
        self.planned.store(chunks as u64, Ordering::Relaxed);
        tracing::info!(tables = tables.len(), chunks, "dump planned");
    }

    fn chunk_started(&self, _table: &TableName) {}

    fn chunk_done(&self, table: &TableName, rows: u64, bytes: u64) {
        let total_rows = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let total_bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let chunks = self.chunks.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(table = %table.plain(), rows, bytes, "chunk done");
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if last.elapsed().as_secs() >= 5 {
            *last = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            tracing::info!(
                chunks_done = chunks,
                chunks = self.planned.load(Ordering::Relaxed),
                rows = total_rows,
                bytes = total_bytes,
                rows_per_sec = (total_rows as f64 / secs) as u64,
                "dump progress"
            );
        }
    }

    fn finished(&self) {}
}
