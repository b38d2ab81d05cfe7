//! Online exactness: a source and a target snapshot of the same logical moment.
//!
//! The checker holds the running stream where it is (through [`SyncPoints`]), opens
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT` on a source connection and reads the snapshot's
//! binlog position P (MariaDB's `Binlog_snapshot_file/position`, exact for the snapshot), and
//! asks the stream to move on to P and hold there: it applies every transaction up to P and
//! none after. Holding first means a fast stream cannot pass P meanwhile. The checker opens its
//! target snapshot and releases the hold at once, so replication pauses for milliseconds. Both
//! snapshots then show the moment P and a difference between them is real: no recheck needed.
//! Nothing is written to the source.
//!
//! The stream is a separate stage: the job runner implements [`SyncPoints`] (for `sluice
//! checksum --sync-with URL`, over the stream's control API).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{BinlogPosition, Endpoint};
use tokio::sync::Mutex;

use crate::ChecksumError;
use crate::config::ChecksumConfig;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a hold request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// The stream is held at the position.
    Held,
    /// Not now (the stream passed the position, or is busy with another hold): try again with
    /// a new source snapshot.
    Retry,
}

/// A running stream that can be held at a binlog position.
pub trait SyncPoints: Send + Sync {
    /// Holds the stream at `at`, or where it is now (`None`); a held stream may be moved on
    /// to a later position.
    fn hold<'a>(&'a self, at: Option<&'a BinlogPosition>) -> BoxFuture<'a, Result<Hold, String>>;
    fn release(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// A stream to synchronise with, as the checker's config holds it.
#[derive(Clone)]
pub struct SyncHandle(pub std::sync::Arc<dyn SyncPoints>);

impl std::fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncPoints")
    }
}

/// Gives out snapshot pairs one hold at a time (a stream holds at one position at once).
pub struct Synchronizer {
    points: std::sync::Arc<dyn SyncPoints>,
    turn: Mutex<()>,
}

const ATTEMPTS: usize = 200;

impl Synchronizer {
    pub fn new(points: std::sync::Arc<dyn SyncPoints>) -> Synchronizer {
        Synchronizer {
            points,
            turn: Mutex::new(()),
        }
    }

    /// Opens snapshots on `src` and `dst` that show the same moment.
    pub async fn pair(
        &self,
        config: &ChecksumConfig,
        src: &mut Conn,
        dst: &mut Conn,
    ) -> Result<BinlogPosition, ChecksumError> {
        for attempt in 0..ATTEMPTS {
            // One hold at a time: take the turn before the source snapshot, so the position
            // asked for is as fresh as it can be.
            let turn = self.turn.lock().await;
            // Hold where the stream is, so that it cannot race past the source snapshot taken
            // next; then move it on to that snapshot's position.
            if self.points.hold(None).await.map_err(ChecksumError::Sync)? == Hold::Retry {
                drop(turn);
                tokio::time::sleep(Duration::from_millis(2 + attempt as u64)).await;
                continue;
            }
            let at = match source_snapshot(src, &config.source).await {
                Ok(at) => at,
                Err(e) => {
                    let _ = self.points.release().await;
                    return Err(e);
                }
            };
            match self.points.hold(Some(&at)).await {
                Ok(Hold::Held) => {
                    let opened = snapshot(dst, &config.target).await;
                    // Release before anything else: the stream must not wait on our errors.
                    let released = self.points.release().await;
                    drop(turn);
                    opened?;
                    released.map_err(ChecksumError::Sync)?;
                    return Ok(at);
                }
                other => {
                    let _ = self.points.release().await;
                    drop(turn);
                    end(src).await;
                    other.map_err(ChecksumError::Sync)?;
                    tokio::time::sleep(Duration::from_millis(2 + attempt as u64)).await;
                }
            }
        }
        Err(ChecksumError::Sync(format!(
            "the stream could not be held at a source snapshot position in {ATTEMPTS} attempts"
        )))
    }
}

async fn snapshot(conn: &mut Conn, endpoint: &Endpoint) -> Result<(), ChecksumError> {
    conn.query_drop(
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
         START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
    )
    .await
    .map_err(|e| endpoint.error("open a consistent snapshot", e).into())
}

/// A snapshot on the source and the binlog position it shows.
async fn source_snapshot(
    conn: &mut Conn,
    endpoint: &Endpoint,
) -> Result<BinlogPosition, ChecksumError> {
    snapshot(conn, endpoint).await?;
    let rows: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(|e| endpoint.error("read the snapshot's binlog position", e))?;
    let get = |n: &str| {
        rows.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    match (get("Binlog_snapshot_file"), get("Binlog_snapshot_position")) {
        (Some(file), Some(pos)) if !file.is_empty() => {
            Ok(BinlogPosition::new(file, pos.parse().unwrap_or(0)))
        }
        _ => Err(ChecksumError::Sync(format!(
            "{endpoint} reports no binlog snapshot position (online checks need a MariaDB source with log_bin on)"
        ))),
    }
}

/// Ends a snapshot transaction.
pub async fn end(conn: &mut Conn) {
    let _ = conn.query_drop("COMMIT").await;
}
