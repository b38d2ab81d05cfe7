//! The dumper's errors, split by what the user can do about them.

use sluice_core::CoreError;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("the filter {patterns:?} matches no table on {source_endpoint}")]
    NothingMatched {
        patterns: Vec<String>,
        source_endpoint: String,
    },
    #[error(
        "output {url} is not empty ({objects} objects, e.g. `{example}`); pass --overwrite to replace it"
    )]
    OutputNotEmpty {
        url: String,
        objects: usize,
        example: String,
    },
    #[error("{user} on {endpoint} lacks {}: grant them, or {hint}", missing.join(", "))]
    MissingPrivileges {
        user: String,
        endpoint: String,
        missing: Vec<String>,
        hint: String,
    },
    /// The consistent snapshot could not be established as asked.
    #[error("consistent snapshot on {endpoint}: {reason}")]
    Snapshot { endpoint: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
    /// A value the chosen output format cannot hold without loss.
    #[error(
        "table {table}, column {column}: value `{value}`: {reason}; dump this table as sql or csv"
    )]
    Value {
        table: String,
        column: String,
        value: String,
        reason: String,
    },
    #[error(
        "--resume: cannot resume the unfinished dump in {url}: {reason}; pass --overwrite to dump everything again"
    )]
    CannotResume { url: String, reason: String },
    #[error(
        "--resume: the dump in {url} is complete (it has metadata.json); pass --overwrite to take it again"
    )]
    AlreadyComplete { url: String },
    #[error("a dump worker failed: {0}")]
    Worker(String),
}

impl DumpError {
    /// True when the same command may succeed later (exit code 3), false for input errors
    /// (exit code 2).
    pub fn is_transient(&self) -> bool {
        match self {
            DumpError::Core(e) => {
                e.is_transient()
                    || matches!(e, CoreError::Server { .. } | CoreError::Storage { .. })
            }
            DumpError::Snapshot { .. } | DumpError::Worker(_) => true,
            _ => false,
        }
    }
}
