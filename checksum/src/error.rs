//! The checker's errors.

use sluice_core::CoreError;

#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("the filter {patterns:?} matches no table on {source_endpoint}")]
    NothingMatched {
        patterns: Vec<String>,
        source_endpoint: String,
    },
    #[error("{path}: {action}: {source}")]
    FixFile {
        path: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("a checksum worker failed: {0}")]
    Worker(String),
    /// The running stream could not be held at a sync point.
    #[error("sync point: {0}")]
    Sync(String),
}

impl ChecksumError {
    /// True when the same command may succeed later (exit code 3).
    pub fn is_transient(&self) -> bool {
        match self {
            ChecksumError::Core(e) => e.is_transient() || matches!(e, CoreError::Server { .. }),
            ChecksumError::Worker(_) | ChecksumError::Sync(_) => true,
            _ => false,
        }
    }
}
