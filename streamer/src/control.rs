//! Commands a running stream takes while it runs: status, pause, resume, stop, and sync points
//! for the online checksum. Transport-free: the job runner serves them over HTTP.
//!
//! Sync points. The checker first holds the stream where it is (position Q), then opens a
//! consistent snapshot on the source and reads its binlog position P (P ≥ Q: the stream cannot
//! be ahead of the source), then asks the stream to move on to P and hold there: the stream
//! applies every transaction that ends at or before P, none after, waits until its appliers
//! have committed, and answers. Holding first means the stream cannot race past P while the
//! request travels. The checker opens its target snapshot, then releases the hold. Both snapshots show the moment P,
//! so any difference between them is real. A hold the checker forgets is released after
//! [`HOLD_LIMIT`], so a crashed checker cannot stop replication.

use std::time::Duration;

use serde::Serialize;
use sluice_core::BinlogPosition;
use tokio::sync::{mpsc, oneshot};

/// The longest a sync point may hold the stream.
pub const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `running`, `paused` or `held`.
    pub state: String,
    /// Everything before this position is applied and checkpointed (or about to be).
    pub position: String,
    pub gtid: String,
    pub transactions: u64,
    pub rows: u64,
    pub in_flight: usize,
    pub lag_seconds: u64,
    /// Source binlog bytes not applied yet, from the last heartbeat (0 across a file change).
    pub lag_bytes: u64,
    pub events: u64,
    pub binlog_bytes: u64,
    pub reconnects: u64,
    /// Errors the stream recovered from: source reconnects and target reconnects.
    pub errors: u64,
    pub safe_mode_until: Option<String>,
}

/// Why a hold was not granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum HoldRefused {
    /// The stream has applied past the requested position: take a new source snapshot.
    Passed { at: String },
    /// Another hold is active or pending.
    Busy,
    /// The stream is paused by an operator.
    Paused,
}

#[derive(Debug)]
pub enum Command {
    Status(oneshot::Sender<Status>),
    /// Stop dispatching; answers once everything dispatched is committed, with the position.
    /// `force`: do not wait: the target transactions being applied are rolled back (their
    /// connections killed) and sent again on resume; answers with the last committed position.
    Pause {
        force: bool,
        reply: oneshot::Sender<String>,
    },
    Resume(oneshot::Sender<()>),
    /// End at the next transaction boundary (like SIGTERM). `force`: do not wait for the
    /// target transactions being applied; kill their connections, so that the target rolls
    /// them back, and end at the last committed checkpoint.
    Stop {
        force: bool,
        reply: oneshot::Sender<()>,
    },
    /// Hold at `at` (`None`: at the next transaction boundary). A stream already held may
    /// be asked to move on to a later position and hold there.
    Hold {
        at: Option<BinlogPosition>,
        reply: oneshot::Sender<Result<String, HoldRefused>>,
    },
    Release(oneshot::Sender<()>),
    /// Read from another source (e.g. another replica of the same replication group) from
    /// the current GTID position on; refused, keeping the old source, when the new one cannot
    /// serve that position (the reason names the gap).
    UpdateSource {
        source: sluice_core::Endpoint,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// The sending side, cloned into whatever serves the commands.
#[derive(Debug, Clone)]
pub struct Control {
    tx: mpsc::Sender<Command>,
}

/// The stream's side: hand it to [`crate::Streamer::run`].
pub type Commands = mpsc::Receiver<Command>;

/// The stream is gone.
#[derive(Debug, Clone, Copy)]
pub struct Gone;

impl Control {
    pub fn new() -> (Control, Commands) {
        let (tx, rx) = mpsc::channel(16);
        (Control { tx }, rx)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Gone> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| Gone)?;
        answer.await.map_err(|_| Gone)
    }

    pub async fn status(&self) -> Result<Status, Gone> {
        self.ask(Command::Status).await
    }

    pub async fn pause(&self) -> Result<String, Gone> {
        self.ask(|reply| Command::Pause {
            force: false,
            reply,
        })
        .await
    }

    /// Pauses without waiting for the target transactions in flight: they are rolled back and
    /// applied again on resume.
    pub async fn force_pause(&self) -> Result<String, Gone> {
        self.ask(|reply| Command::Pause { force: true, reply })
            .await
    }

    pub async fn resume(&self) -> Result<(), Gone> {
        self.ask(Command::Resume).await
    }

    pub async fn stop(&self) -> Result<(), Gone> {
        self.ask(|reply| Command::Stop {
            force: false,
            reply,
        })
        .await
    }

    /// Stops without waiting for the target transactions in flight: they are rolled back.
    pub async fn force_stop(&self) -> Result<(), Gone> {
        self.ask(|reply| Command::Stop { force: true, reply }).await
    }

    pub async fn hold(
        &self,
        at: Option<BinlogPosition>,
    ) -> Result<Result<String, HoldRefused>, Gone> {
        self.ask(|reply| Command::Hold { at, reply }).await
    }

    pub async fn release(&self) -> Result<(), Gone> {
        self.ask(Command::Release).await
    }

    pub async fn update_source(
        &self,
        source: sluice_core::Endpoint,
    ) -> Result<Result<(), String>, Gone> {
        self.ask(|reply| Command::UpdateSource { source, reply })
            .await
    }
}
