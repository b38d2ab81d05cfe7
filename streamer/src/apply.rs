//! An applier: one target connection that commits upstream transactions in groups.
//!
//! A group is what is queued for this applier when it becomes free, up to a row budget: many
//! small upstream transactions share one target commit (one fsync instead of many), which is
//! how a SQL-level applier keeps up with a row-level replica. The whole group, its checkpoint
//! row included, goes to the target as one multi-statement request
//! `START TRANSACTION; …; <checkpoint upsert>; COMMIT`, so it lands atomically with one round
//! trip.
//!
//! A group too large for one request (the target's `max_allowed_packet`) goes as several in
//! the same open transaction ([`crate::requests`]).
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
use crate::error::is_connection_error;
use crate::progress::Progress;
use crate::requests::{GroupRequests, request_budget};
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
    /// Record the checkpoint inside each group (always, but in the streamer benchmark).
    pub checkpoint_every_group: bool,
    /// Turns true on a forced stop: the transaction being applied is abandoned (its
    /// connection killed, so the target rolls it back) and the applier ends.
    pub abort: tokio::sync::watch::Receiver<bool>,
    /// True while a forced pause holds the appliers: the group being applied is rolled back
    /// (its connection killed) and sent again once it turns false.
    pub suspend: tokio::sync::watch::Receiver<bool>,
    /// How many appliers are sending a group right now (a forced pause waits for zero).
    pub busy: Arc<std::sync::atomic::AtomicUsize>,
    /// The most bytes one request may carry ([`request_budget`] of the target's
    /// `max_allowed_packet`).
    pub request_bytes: usize,
}

/// How sending a group's requests ended.
enum Sent {
    Committed,
    /// A forced stop abandoned it: the connection was killed, the target rolled it back.
    Aborted,
    /// A forced pause: the connection was killed, the group is to be sent again on resume.
    Suspended,
}

/// Counts an applier as busy for as long as it lives.
struct Busy<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Busy<'a> {
    fn new(count: &'a std::sync::atomic::AtomicUsize) -> Busy<'a> {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(count)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A connection for an applier: foreign keys off (the source already checked them, and the
/// order between tables inside a group is not the source's), and the request budget.
pub async fn applier_conn(target: &Endpoint) -> Result<(Conn, usize), StreamError> {
    let mut conn = target.connect().await?;
    conn.query_drop("SET SESSION foreign_key_checks = 0")
        .await
        .map_err(|e| target.error("prepare an applier session", e))?;
    let packet: Option<u64> = conn
        .query_first("SELECT @@max_allowed_packet")
        .await
        .map_err(|e| target.error("read max_allowed_packet", e))?;
    Ok((conn, request_budget(packet.unwrap_or(16 << 20))))
}

/// Resolves once `flag` is true (never, if its sender is gone): a forced stop's abort, a
/// forced pause's suspend.
async fn aborted(flag: &mut tokio::sync::watch::Receiver<bool>) {
    while !*flag.borrow_and_update() {
        if flag.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves once `flag` is false.
async fn cleared(flag: &mut tokio::sync::watch::Receiver<bool>) {
    while *flag.borrow_and_update() {
        if flag.changed().await.is_err() {
            return;
        }
    }
}

impl Applier {
    /// Applies until the dispatcher closes the queue.
    pub async fn run(mut self) -> Result<(), StreamError> {
        loop {
            if !self.wait_while_suspended().await {
                return Ok(());
            }
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

    /// Waits out a forced pause; false when a forced stop came instead.
    async fn wait_while_suspended(&mut self) -> bool {
        tokio::select! {
            _ = cleared(&mut self.suspend) => true,
            _ = aborted(&mut self.abort) => false,
        }
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
        let low = self.progress.low_with(&seqs);
        let checkpoint = if self.checkpoint_every_group {
            self.checkpoints.upsert(self.id, &last, &low, None)
        } else {
            String::new()
        };
        let safe: Vec<bool> = group.iter().map(|t| self.is_safe(t)).collect();
        let started = std::time::Instant::now();
        loop {
            let requests = GroupRequests::new(
                group,
                safe.clone(),
                self.compact,
                self.request_bytes,
                &checkpoint,
            );
            match self.send(requests).await {
                Ok(Sent::Committed) => break,
                Ok(Sent::Aborted) => return Ok(false),
                Ok(Sent::Suspended) => {
                    // A COMMIT already under way may have finished: the checkpoint tells.
                    if self.reconnect_and_check(&last.position).await? {
                        break;
                    }
                    if !self.wait_while_suspended().await {
                        return Ok(false);
                    }
                }
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

    /// Sends a group's requests in order on this applier's connection.
    async fn send(&mut self, mut requests: GroupRequests<'_>) -> Result<Sent, mysql_async::Error> {
        let busy = self.busy.clone();
        let _busy = Busy::new(&busy);
        while let Some(request) = requests.next_request() {
            let id = self.conn.id();
            // Sent as bytes: a character cell holds the source's bytes as they are (valid
            // UTF-8 or not), and no validation pass runs over every group.
            tokio::select! {
                r = self.conn.query_drop(&request) => r?,
                _ = aborted(&mut self.abort) => {
                    // The server rolls back a killed connection's open transaction (a COMMIT
                    // already under way may still finish: the checkpoint row inside it tells).
                    if let Ok(mut killer) = self.target.connect().await {
                        let _ = killer.query_drop(format!("KILL CONNECTION {id}")).await;
                    }
                    tracing::warn!(worker = self.id, "forced stop: the target transaction being applied was rolled back");
                    return Ok(Sent::Aborted);
                }
                _ = aborted(&mut self.suspend) => {
                    if let Ok(mut killer) = self.target.connect().await {
                        let _ = killer.query_drop(format!("KILL CONNECTION {id}")).await;
                    }
                    tracing::warn!(worker = self.id, "forced pause: the target transaction being applied was rolled back; it is applied again on resume");
                    return Ok(Sent::Suspended);
                }
            }
        }
        Ok(Sent::Committed)
    }

    /// Reconnects (with backoff); true when the group's COMMIT turns out to have made it.
    async fn reconnect_and_check(&mut self, end: &BinlogPosition) -> Result<bool, StreamError> {
        let mut delay = Duration::from_millis(200);
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(delay).await;
            match applier_conn(&self.target).await {
                Ok((mut conn, request_bytes)) => {
                    self.request_bytes = request_bytes;
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
                Err(e) => return Err(e),
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
