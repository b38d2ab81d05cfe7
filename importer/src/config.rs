//! What an import is asked to do.

use std::path::PathBuf;
use std::str::FromStr;

use sluice_core::{CoreError, Endpoint, TableFilter};

/// What to do when two rows share a primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDuplicate {
    /// Stop and list the first conflicting keys with their files and lines.
    Error,
    /// Keep the row that comes last (by file, then line).
    Replace,
    /// Keep the row that comes first.
    Ignore,
}

impl FromStr for OnDuplicate {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "error" => Ok(OnDuplicate::Error),
            "replace" => Ok(OnDuplicate::Replace),
            "ignore" => Ok(OnDuplicate::Ignore),
            _ => Err(CoreError::invalid(
                "on-duplicate policy",
                s,
                "expected error, replace or ignore",
            )),
        }
    }
}

/// Which secondary indexes of a table the import creates after the data rather than with the
/// table. Inserting into a secondary index row by row costs the target far more than building
/// it sorted afterwards (measured on MariaDB 10.11, 250k sysbench rows with `KEY (k)`: 2.1
/// CPU-s loaded with the index, 1.1 + 0.2 for the load and the `ALTER TABLE … ADD INDEX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferIndexes {
    /// Plain `KEY`/`INDEX` definitions of tables without foreign keys: a unique index stays,
    /// so that duplicates meet it row by row under `--on-duplicate`; with foreign keys InnoDB
    /// would make an index of its own for a removed one; a FULLTEXT index added later rebuilds
    /// the table.
    Auto,
    /// Every secondary index (but the one an AUTO_INCREMENT column needs).
    All,
    /// None: every index is created with the table.
    None,
}

impl FromStr for DeferIndexes {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DeferIndexes::Auto),
            "all" => Ok(DeferIndexes::All),
            "none" => Ok(DeferIndexes::None),
            _ => Err(CoreError::invalid(
                "--defer-indexes",
                s,
                "expected auto, all or none",
            )),
        }
    }
}

/// How the loaders send rows (`--load-method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMethod {
    /// MariaDB's bulk execution where the target has it, else LOAD DATA; a table with a row too
    /// big for one bulk execution is loaded again with LOAD DATA.
    Auto,
    /// MariaDB's bulk execution for every table (the target must be MariaDB; a row too big for
    /// one bulk execution fails the import).
    BulkInsert,
    /// `LOAD DATA LOCAL INFILE` for every table.
    LoadData,
}

impl FromStr for LoadMethod {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(LoadMethod::Auto),
            "bulk-insert" => Ok(LoadMethod::BulkInsert),
            "load-data" => Ok(LoadMethod::LoadData),
            _ => Err(CoreError::invalid(
                "--load-method",
                s,
                "expected auto, bulk-insert or load-data",
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImportConfig {
    /// A path, `file:///dir` or `s3://bucket/prefix` holding a dump.
    pub input: String,
    pub target: Endpoint,
    /// Files parsed at once, and loader connections.
    pub threads: usize,
    /// Where sorted runs spill (a temporary folder is made inside).
    pub sort_dir: PathBuf,
    /// Bytes of key/value pairs kept in memory before a sorted run is spilled.
    pub sort_memory: usize,
    pub on_duplicate: OnDuplicate,
    /// Which secondary indexes are created after the data.
    pub defer_indexes: DeferIndexes,
    /// Do not create databases and tables: load into what exists.
    pub no_schema: bool,
    /// Forget earlier checkpoints of this dump and load everything again.
    pub restart: bool,
    pub filter: TableFilter,
    /// Target names for the dump's tables (`--route`); applied after the filter.
    pub routes: sluice_core::Routes,
    /// The schema on the target that holds the checkpoints.
    pub meta_schema: String,
    /// Who hears about progress (log lines by default; the CLI's bars on a terminal).
    pub observer: std::sync::Arc<dyn crate::ImportObserver>,
    /// Raise the target's redo log settings for the import (see `import_mode.rs`).
    pub import_mode: bool,
    /// The CSV dialect of a Dumpling or mydumper folder (Sluice dumps carry their own).
    pub csv: Option<sluice_core::layout::CsvDialect>,
    /// How rows go to the target.
    pub load_method: LoadMethod,
    /// What the target offers, found when the import is built (see `method::probe`).
    pub(crate) wire: crate::method::Wire,
    /// LOAD DATA batch buffers, reused from table to table (see [`crate::load::BufferPool`]).
    pub(crate) buffers: crate::load::BufferPool,
}

impl ImportConfig {
    pub fn new(input: impl Into<String>, target: Endpoint) -> ImportConfig {
        ImportConfig {
            input: input.into(),
            target,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            sort_dir: std::env::temp_dir(),
            sort_memory: 512 << 20,
            on_duplicate: OnDuplicate::Error,
            defer_indexes: DeferIndexes::Auto,
            no_schema: false,
            restart: false,
            filter: TableFilter::default(),
            routes: sluice_core::Routes::default(),
            meta_schema: "sluice_meta".to_owned(),
            csv: None,
            import_mode: false,
            load_method: LoadMethod::Auto,
            wire: crate::method::Wire::default(),
            observer: std::sync::Arc::new(crate::ImportLog::default()),
            buffers: crate::load::BufferPool::default(),
        }
    }
}

/// Parses a size such as `512MiB`, `2GiB`, `64MB` or a plain number of bytes.
pub fn parse_size(text: &str) -> Result<usize, CoreError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: usize = number.parse().map_err(|_| {
        CoreError::invalid("size", text, "expected a number with a unit, e.g. 2GiB")
    })?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => {
            return Err(CoreError::invalid(
                "size",
                text,
                "unknown unit; use B, KiB, MiB, GiB, KB, MB or GB",
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| CoreError::invalid("size", text, "too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("64MB").unwrap(), 64_000_000);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("2 parsecs").is_err());
        assert!(parse_size("GiB").is_err());
    }
}
