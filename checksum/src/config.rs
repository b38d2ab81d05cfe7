//! What a checksum run is asked to do.

use std::path::PathBuf;
use std::time::Duration;

use sluice_core::{Endpoint, Routes, TableFilter};

use crate::sync::SyncHandle;

#[derive(Debug, Clone)]
pub struct ChecksumConfig {
    /// Only read, never written.
    pub source: Endpoint,
    pub target: Endpoint,
    pub filter: TableFilter,
    /// The target's name for each source table (`--route`).
    pub routes: Routes,
    /// Rows per chunk (the dumper's planner).
    pub chunk_rows: u64,
    /// Chunks compared at once (each uses one connection per side).
    pub threads: usize,
    /// Cap on rows checked per second across all workers; `None` for no cap.
    pub max_rows_per_sec: Option<u64>,
    /// Pause before each chunk while the source's `Threads_running` is above this.
    pub max_threads_running: Option<u64>,
    /// How often a mismatching chunk is compared again before it counts as different.
    pub rechecks: u32,
    /// Wait before each recheck (lets in-flight replication land).
    pub recheck_delay: Duration,
    /// Where to write the statements that repair the target.
    pub fix_sql: Option<PathBuf>,
    /// Execute the fix statements on the target.
    pub apply_fix: bool,
    /// At most this many differing rows are reported (and fixed) per table.
    pub max_rows_reported: usize,
    /// A running stream into the target: compare every chunk at a sync point (online
    /// exactness, no rechecks) instead of rechecking mismatches.
    pub sync: Option<SyncHandle>,
}

impl ChecksumConfig {
    pub fn new(source: Endpoint, target: Endpoint) -> ChecksumConfig {
        ChecksumConfig {
            source,
            target,
            filter: TableFilter::default(),
            routes: Routes::default(),
            chunk_rows: 100_000,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            max_rows_per_sec: None,
            max_threads_running: None,
            rechecks: 3,
            recheck_delay: Duration::from_secs(2),
            fix_sql: None,
            apply_fix: false,
            max_rows_reported: 10_000,
            sync: None,
        }
    }
}
