//! How a running import reports progress without knowing who listens: the CLI draws bars on a
//! terminal, [`ImportLog`] writes a log line every few seconds elsewhere. Called per loaded
//! batch and per table, never per row.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sluice_core::TableName;

pub trait ImportObserver: Send + Sync + std::fmt::Debug {
    /// The tables to import and the rows each is expected to hold (0 when unknown).
    fn planned(&self, tables: &[(TableName, u64)]);
    /// A batch of `rows` reached the target.
    fn rows_loaded(&self, table: &TableName, rows: u64);
    /// A table is loaded, verified and checkpointed (or was skipped as done earlier).
    fn table_done(&self, table: &TableName, rows: u64);
    fn finished(&self);
}

/// Progress as `tracing` lines, at most one every five seconds.
#[derive(Debug)]
pub struct ImportLog {
    started: Instant,
    last: Mutex<Instant>,
    expected: AtomicU64,
    rows: AtomicU64,
    tables: AtomicU64,
}

impl Default for ImportLog {
    fn default() -> Self {
        ImportLog {
            started: Instant::now(),
            last: Mutex::new(Instant::now()),
            expected: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            tables: AtomicU64::new(0),
        }
    }
}

impl ImportObserver for ImportLog {
    fn planned(&self, tables: &[(TableName, u64)]) {
        self.expected
            .store(tables.iter().map(|(_, r)| r).sum(), Ordering::Relaxed);
    }

    fn rows_loaded(&self, _table: &TableName, rows: u64) {
        let total = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if last.elapsed().as_secs() >= 5 {
            *last = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            tracing::info!(
                rows = total,
                expected_rows = self.expected.load(Ordering::Relaxed),
                tables_done = self.tables.load(Ordering::Relaxed),
                rows_per_sec = (total as f64 / secs) as u64,
                "import progress"
            );
        }
    }

    fn table_done(&self, _table: &TableName, _rows: u64) {
        self.tables.fetch_add(1, Ordering::Relaxed);
    }

    fn finished(&self) {}
}
