//! An applier: one target connection that commits upstream transactions in groups.
//!
//! A group is what is queued for this applier when it becomes free, up to a row budget: many
//! small upstream transactions share one target commit (one fsync instead of many), which is
//! how a SQL-level applier keeps up with a row-level replica. The whole group, its checkpoint
//! row included, goes to the target as one multi-statement request
//! `START TRANSACTION; …; <checkpoint upsert>; COMMIT`, so it lands atomically with one round
//! trip.
//!
//! A lost connection during the group: reconnect, then read this applier's checkpoint row. If
//! it already names the group's end, the COMMIT made it and the group is done; otherwise the
//! group was rolled back with the connection and is sent again.

use std::sync::Arc;
use std::time::Duration;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{BinlogPosition, Endpoint};
use tokio::sync::mpsc;

use crate::StreamError;
use crate::checkpoint::Checkpoints;
use crate::compact::append_group;
use crate::error::is_connection_error;
use crate::progress::Progress;
use crate::sql::append_changes;
use crate::transaction::Transaction;

/// Rows per target transaction; a single larger upstream transaction still goes in one.
pub const GROUP_ROWS: usize = 4_000;
/// How long an applier keeps trying to reach a target that went away.
const RECONNECT_FOR: Duration = Duration::from_secs(300);

pub struct Applier {
    pub id: usize,
    pub target: Endpoint,
    pub conn: Conn,
    pub queue: mpsc::Receiver<Arc<Transaction>>,
    pub progress: Arc<Progress>,
    pub checkpoints: Checkpoints,
    /// Transactions ending at or before this run in safe mode.
    pub safe_until: Option<BinlogPosition>,
    pub group_rows: usize,
    /// Apply each group as its net effect ([`crate::compact`]) instead of statement by
    /// statement.
    pub compact: bool,
    /// Turns true on a forced stop: the transaction being applied is abandoned (its
    /// connection killed, so the target rolls it back) and the applier ends.
    pub abort: tokio::sync::watch::Receiver<bool>,
}

/// Resolves once `abort` is true (never, if its sender is gone).
async fn aborted(abort: &mut tokio::sync::watch::Receiver<bool>) {
    while !*abort.borrow_and_update() {
        if abort.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Applier {
    /// Applies until the dispatcher closes the queue.
    pub async fn run(mut self) -> Result<(), StreamError> {
        loop {
            let next = tokio::select! {
                t = self.queue.recv() => t,
                _ = aborted(&mut self.abort) => return Ok(()),
            };
            let Some(first) = next else { break };
            let mut group = vec![first];
            let mut rows = group[0].rows();
            while rows < self.group_rows {
                match self.queue.try_recv() {
                    Ok(t) => {
                        rows += t.rows();
                        group.push(t);
                    }
                    Err(_) => break,
                }
            }
            match self.apply(&group).await {
                Ok(true) => {}
                Ok(false) => return Ok(()), // aborted: rolled back, nothing recorded
                Err(e) => {
                    self.progress.fail();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn is_safe(&self, t: &Transaction) -> bool {
        self.safe_until
            .as_ref()
            .is_some_and(|s| t.end.position <= *s)
    }

    /// Applies a group in one target transaction; `false` when a forced stop abandoned it.
    async fn apply(&mut self, group: &[Arc<Transaction>]) -> Result<bool, StreamError> {
        let seqs: Vec<u64> = group.iter().map(|t| t.seq).collect();
        let Some(last) = group.last().map(|t| t.end.clone()) else {
            return Ok(true);
        };
        let mut sql = b"START TRANSACTION;\n".to_vec();
        if self.compact {
            // The net effect is idempotent by construction (DELETE + REPLACE of final rows),
            // so it also serves the safe-mode window.
            append_group(&mut sql, group);
        } else {
            for t in group {
                append_changes(&mut sql, &t.changes, self.is_safe(t));
            }
        }
        let low = self.progress.low_with(&seqs);
        sql.extend_from_slice(
            self.checkpoints
                .upsert(self.id, &last, &low, None)
                .as_bytes(),
        );
        sql.extend_from_slice(b"COMMIT");
        // Sent as bytes: a character cell holds the source's bytes as they are (valid UTF-8 or
        // not), and no validation pass runs over every group.
        let started = std::time::Instant::now();
        loop {
            let id = self.conn.id();
            let result = tokio::select! {
                r = self.conn.query_drop(&sql) => r,
                _ = aborted(&mut self.abort) => {
                    // The server rolls back a killed connection's open transaction (a COMMIT
                    // already under way may still finish: the checkpoint row inside it tells).
                    if let Ok(mut killer) = self.target.connect().await {
                        let _ = killer.query_drop(format!("KILL CONNECTION {id}")).await;
                    }
                    tracing::warn!(worker = self.id, "forced stop: the target transaction being applied was rolled back");
                    return Ok(false);
                }
            };
            match result {
                Ok(()) => break,
                Err(e) if is_connection_error(&e) && started.elapsed() < RECONNECT_FOR => {
                    tracing::warn!(worker = self.id, error = %e, "target connection lost while applying; reconnecting");
                    self.progress.recovered_error();
                    if self.reconnect_and_check(&last.position).await? {
                        break;
                    }
                }
                Err(e) => {
                    let _ = self.conn.query_drop("ROLLBACK").await;
                    return Err(StreamError::Apply {
                        target: self.target.to_string(),
                        position: last.position.clone(),
                        cause: e,
                    });
                }
            }
        }
        let rows: usize = group.iter().map(|t| t.rows()).sum();
        let ts = group.iter().map(|t| t.timestamp).max().unwrap_or(0);
        self.progress.committed(&seqs, rows as u64, ts);
        Ok(true)
    }

    /// Reconnects (with backoff); true when the group's COMMIT turns out to have made it.
    async fn reconnect_and_check(&mut self, end: &BinlogPosition) -> Result<bool, StreamError> {
        let mut delay = Duration::from_millis(200);
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(delay).await;
            match self.target.connect().await {
                Ok(mut conn) => {
                    let applied = self
                        .checkpoints
                        .applied(&mut conn, &self.target, self.id)
                        .await;
                    self.conn = conn;
                    match applied {
                        Ok(applied) => return Ok(applied.as_ref() == Some(end)),
                        Err(e) if e.is_transient() && started.elapsed() < RECONNECT_FOR => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) if e.is_transient() && started.elapsed() < RECONNECT_FOR => {
                    tracing::debug!(error = %e, "target still unreachable");
                }
                Err(e) => return Err(e.into()),
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
