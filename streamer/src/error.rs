//! The streamer's errors.

use sluice_core::CoreError;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A binlog that is not what it must be: bad magic, a cut event, a wrong checksum.
    #[error("binlog {file} at offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
}
