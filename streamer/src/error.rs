//! The streamer's errors, split by consequence: [`StreamError::is_transient`] says whether
//! reconnecting and continuing from the last applied transaction may help (a lost connection,
//! a restarting server), or whether the user must act (a purged binlog, a corrupt event, a DDL
//! the target refuses).

use sluice_core::{BinlogPosition, CoreError};

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
    /// The source cannot serve a binlog stream Sluice can apply exactly (binlog off, not ROW,
    /// not FULL images), or cannot serve it from the requested point. The message says how to
    /// fix it.
    #[error("source {source_name}: {reason}")]
    SourceSetup { source_name: String, reason: String },
    /// The binlog connection failed; reconnecting may help.
    #[error("binlog stream from {source_name} at {position}: {cause}")]
    Stream {
        source_name: String,
        position: BinlogPosition,
        cause: mysql_async::Error,
    },
    /// The source refused the binlog request for good (e.g. the position was purged).
    #[error("source {source_name} refused the binlog from {position}: {reason}")]
    Refused {
        source_name: String,
        position: BinlogPosition,
        reason: String,
    },
    /// A row event that does not fit the table it names as the target knows it.
    #[error("{table} at {position}: {reason}")]
    Schema {
        table: String,
        position: BinlogPosition,
        reason: String,
    },
    /// An event Sluice does not know and may not skip.
    #[error(
        "binlog {position}: unknown event type {event_type} (not marked ignorable); cannot go on safely"
    )]
    UnknownEvent {
        position: BinlogPosition,
        event_type: u8,
    },
    /// A DDL statement the target rejected (`--skip-ddl-errors` goes on past it).
    #[error("target rejected the DDL at {position}: {statement}: {cause}")]
    Ddl {
        position: BinlogPosition,
        statement: String,
        cause: mysql_async::Error,
    },
    /// Applying row changes on the target failed for a reason a retry will not fix.
    #[error("target {target}: applying the transactions ending at {position}: {cause}")]
    Apply {
        target: String,
        position: BinlogPosition,
        cause: mysql_async::Error,
    },
    /// A start point or option that cannot be used.
    #[error("{0}")]
    Config(String),
}

impl StreamError {
    /// A failed binlog connection to `source_name` at `position`: refused for good (1236: the
    /// position is gone or invalid) or worth a reconnect.
    pub fn binlog(
        source_name: String,
        position: BinlogPosition,
        cause: mysql_async::Error,
    ) -> Self {
        if let mysql_async::Error::Server(s) = &cause
            && s.code == 1236
        {
            return StreamError::Refused {
                source_name,
                position,
                reason: s.message.clone(),
            };
        }
        StreamError::Stream {
            source_name,
            position,
            cause,
        }
    }

    /// True when reconnecting and resuming from the checkpoint may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            StreamError::Core(e) => e.is_transient(),
            StreamError::Stream { cause, .. } | StreamError::Apply { cause, .. } => {
                is_connection_error(cause)
            }
            _ => false,
        }
    }
}

/// A lost or refused connection, a server shutting down or restarting: worth a reconnect.
pub fn is_connection_error(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        // 1053 server shutdown, 2006/2013 gone away / lost (client codes sometimes relayed),
        // 1927 connection killed, 1317 query interrupted (KILL during shutdown), 1205 lock
        // wait timeout and 1213 deadlock (the transaction was rolled back: retry it).
        mysql_async::Error::Server(s) => {
            matches!(s.code, 1053 | 2006 | 2013 | 1927 | 1317 | 1205 | 1213)
        }
        _ => false,
    }
}
