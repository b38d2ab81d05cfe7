//! The importer's errors, split by what the user can do about them.

use sluice_core::CoreError;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The dump itself is malformed, incomplete or unsafe.
    #[error("{0}")]
    Input(String),
    /// The target refuses the import as asked (a table with other data or another schema).
    #[error("{0}")]
    Target(String),
    /// Duplicate primary keys with `--on-duplicate error`.
    #[error("duplicate primary keys in {table}: {}", examples.join("; "))]
    Duplicates {
        table: String,
        examples: Vec<String>,
    },
    /// The loaded table does not match what the dump recorded.
    #[error("verification failed for {table}: {reason}")]
    Verification { table: String, reason: String },
    #[error("an import worker failed: {0}")]
    Worker(String),
    /// One row's bulk parameters would not fit a bulk execution within the target's
    /// `max_allowed_packet`: the table is loaded again with LOAD DATA (see `table_load::import_table`).
    #[error(
        "a row of {table} takes {bytes} bytes as bulk INSERT parameters, too many for one bulk execution within the target's max_allowed_packet; use --load-method load-data"
    )]
    RowTooBigForBulk { table: String, bytes: usize },
    /// The target refused a bulk execution where LOAD DATA only warns (MariaDB 10.11 fails a
    /// bulk `INSERT IGNORE` on a CHECK constraint, such as JSON validity, instead of skipping
    /// the row): the table is loaded again with LOAD DATA, whose warnings say what was refused.
    #[error("bulk INSERT into {table}: ERROR {code}: {message}")]
    BulkRefused {
        table: String,
        code: u16,
        message: String,
    },
}

impl ImportError {
    /// True when the same command may succeed later (exit code 3).
    pub fn is_transient(&self) -> bool {
        match self {
            ImportError::Core(e) => {
                e.is_transient()
                    || matches!(e, CoreError::Server { .. } | CoreError::Storage { .. })
            }
            ImportError::Worker(_) => true,
            _ => false,
        }
    }
}
