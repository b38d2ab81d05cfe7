//! The one error type of sluice-core. Every variant names what failed and where, so the binary
//! can print it as one line; [`CoreError::is_transient`] tells callers whether a retry may help.

use std::fmt;

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A URL, position, GTID set or name given by the user does not parse.
    #[error("invalid {what} `{input}`: {reason}")]
    Invalid {
        what: &'static str,
        input: String,
        reason: String,
    },
    /// Connecting to or querying a MySQL-protocol server failed.
    #[error("{endpoint}: {action}: {source}")]
    Server {
        endpoint: String,
        action: String,
        #[source]
        source: mysql_async::Error,
    },
    /// Reading or writing the dump storage failed.
    #[error("storage {location}: {action}: {source}")]
    Storage {
        location: String,
        action: &'static str,
        #[source]
        source: object_store::Error,
    },
    /// Local file I/O failed (spill files, temporary folders).
    #[error("{path}: {action}: {source}")]
    Io {
        path: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl CoreError {
    pub fn invalid(
        what: &'static str,
        input: impl fmt::Display,
        reason: impl fmt::Display,
    ) -> Self {
        CoreError::Invalid {
            what,
            input: input.to_string(),
            reason: reason.to_string(),
        }
    }

    /// True when retrying the same operation later may succeed: a lost connection, a server
    /// restart, a storage endpoint that did not answer. False for anything the user must fix.
    pub fn is_transient(&self) -> bool {
        match self {
            CoreError::Invalid { .. } => false,
            CoreError::Server { source, .. } => matches!(
                source,
                mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)
            ),
            CoreError::Storage { source, .. } => matches!(
                source,
                object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }
            ),
            CoreError::Io { .. } => false,
        }
    }
}
