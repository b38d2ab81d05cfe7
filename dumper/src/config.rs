//! What a dump is asked to do.

use std::fmt;
use std::str::FromStr;

use sluice_core::layout::{Compression, CsvDialect, DataFormat};
use sluice_core::{CoreError, Endpoint, TableFilter};

/// How the N worker connections get one consistent view (see `snapshot.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// `flush`, falling back to `lock` where the global lock is denied.
    Auto,
    /// A global lock (MariaDB `BACKUP STAGE BLOCK_COMMIT`, else `FLUSH TABLES WITH READ LOCK`)
    /// held only while every worker opens its snapshot.
    Flush,
    /// `LOCK TABLES … READ` on the dumped tables, held only while the snapshots open.
    Lock,
    /// No lock: every worker's snapshot position is read and must agree (MariaDB).
    Snapshot,
    /// No consistency at all: each chunk sees whatever is committed when it is read. The
    /// recorded position is only where the dump started; streaming from it is not exact.
    None,
}

impl FromStr for Consistency {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Consistency::Auto,
            "flush" => Consistency::Flush,
            "lock" => Consistency::Lock,
            "snapshot" => Consistency::Snapshot,
            "none" => Consistency::None,
            _ => {
                return Err(CoreError::invalid(
                    "consistency",
                    s,
                    "expected auto, flush, lock, snapshot or none",
                ));
            }
        })
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Consistency::Auto => "auto",
            Consistency::Flush => "flush",
            Consistency::Lock => "lock",
            Consistency::Snapshot => "snapshot",
            Consistency::None => "none",
        })
    }
}

#[derive(Debug, Clone)]
pub struct DumpConfig {
    pub source: Endpoint,
    /// A path, `file:///dir` or `s3://bucket/prefix`.
    pub output: String,
    /// Worker connections, each reading one chunk at a time.
    pub threads: usize,
    pub filter: TableFilter,
    pub format: DataFormat,
    pub compression: Compression,
    /// Target rows per chunk (one chunk = one file).
    pub chunk_rows: u64,
    pub consistency: Consistency,
    pub csv: CsvDialect,
    /// Replace a non-empty output.
    pub overwrite: bool,
    /// Continue an unfinished dump in the output (its `dump-progress.json`): only the chunks
    /// it lacks are dumped. Without a progress file the dump starts from scratch.
    pub resume: bool,
    /// Longest wait for the global or table lock before giving up.
    pub lock_wait_secs: u64,
    /// Upper bound of one INSERT statement in SQL output.
    pub statement_bytes: usize,
    /// Split a chunk into several files of about this many bytes each (before compression).
    pub file_size: Option<u64>,
    /// Also dump the tables' triggers, the databases' stored routines and events (mydumper's
    /// `-G`, `-R`, `-E`; see `objects.rs`).
    pub triggers: bool,
    pub routines: bool,
    pub events: bool,
}

impl DumpConfig {
    pub fn new(source: Endpoint, output: impl Into<String>) -> DumpConfig {
        DumpConfig {
            source,
            output: output.into(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            filter: TableFilter::default(),
            format: DataFormat::Sql,
            compression: Compression::None,
            chunk_rows: 100_000,
            consistency: Consistency::Auto,
            csv: CsvDialect::default(),
            overwrite: false,
            resume: false,
            lock_wait_secs: 30,
            statement_bytes: 1 << 20,
            file_size: None,
            triggers: false,
            routines: false,
            events: false,
        }
    }
}
