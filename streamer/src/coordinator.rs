//! The running stream: reader → dispatcher → appliers, coordinated by one loop.
//!
//! The loop takes items from the reader and commands from the control handle. Transactions go
//! to the dispatcher; a DDL drains every applier and runs alone on the control connection;
//! when nothing is in flight the checkpoint rows are brought up to the reader's position
//! (filtered transactions move it too). Dispatching stops while an operator has paused the
//! stream or a sync point holds it: the next item waits in `pending` until it may go, so the
//! held position is exactly a transaction boundary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{BinlogPosition, Endpoint, Flavor, TableName};
use tokio::sync::{mpsc, oneshot, watch};

use crate::StreamError;
use crate::apply::{Applier, applier_conn};
use crate::checkpoint::Checkpoints;
use crate::control::{Command, Commands, HOLD_LIMIT, HoldRefused, Status};
use crate::dispatch::Dispatcher;
use crate::error::is_connection_error;
use crate::progress::Progress;
use crate::reader::{Reader, ReaderConfig, ReaderEnd, ReaderStatus};
use crate::relay::{Puller, PullerConfig, RelayDir};
use crate::schema_view::SchemaView;
use crate::stream::{StreamConfig, Summary};
use crate::transaction::{Ddl, Item, Mark, XaStep};
use crate::xa::{self, PendingXa};

/// What `Streamer::build` prepared.
pub(crate) struct Setup {
    pub config: StreamConfig,
    pub flavor: Flavor,
    pub start: Mark,
    pub safe_until: Option<BinlogPosition>,
    pub skip_before: HashMap<TableName, BinlogPosition>,
    pub checkpoints: Checkpoints,
    pub pending_xa: PendingXa,
    pub control: Conn,
}

struct Coordinator {
    setup: Setup,
    workers: usize,
    progress: Arc<Progress>,
    dispatcher: Dispatcher,
    reader_status: Arc<Mutex<ReaderStatus>>,
    halt: watch::Sender<bool>,
    flushed: BinlogPosition,
    ddl_count: u64,
    /// An operator paused the stream.
    paused: bool,
    /// A sync point was reached and holds the stream (since when).
    held: Option<Instant>,
    /// A sync point not reached yet.
    hold_at: Option<(BinlogPosition, oneshot::Sender<Result<String, HoldRefused>>)>,
    /// The next item, kept back while paused or held.
    pending: Option<Item>,
    /// The appliers are gone: stop.
    broken: bool,
    /// Tells the reader to switch sources.
    sources: watch::Sender<Endpoint>,
    failure: Option<StreamError>,
    /// The relay log this task reads, and when its task mark was last written.
    relay_mark: Option<(RelayDir, Option<Instant>)>,
    /// The relay puller this process runs, if it holds the source's puller lock.
    puller: Option<tokio::task::JoinHandle<Result<(), StreamError>>>,
    halted_for_puller: watch::Receiver<bool>,
    /// Abandons the appliers' open target transactions (a forced stop).
    abort: watch::Sender<bool>,
    forced: bool,
    /// Holds the appliers with their groups rolled back (a forced pause).
    suspend: watch::Sender<bool>,
    /// Appliers sending a group right now.
    busy: Arc<std::sync::atomic::AtomicUsize>,
}

type PullerTask = tokio::task::JoinHandle<Result<(), StreamError>>;

/// Starts pulling into the relay when no other process does: `None` when one does.
fn start_puller(
    setup: &Setup,
    dir: &RelayDir,
    start: Option<Mark>,
    halted: &watch::Receiver<bool>,
    halt: &watch::Sender<bool>,
) -> Result<Option<PullerTask>, StreamError> {
    let mut cfg = PullerConfig::new(
        setup.config.source.clone(),
        setup.flavor,
        setup.config.server_id,
    );
    cfg.retention = setup.config.relay_retention;
    cfg.max_bytes = setup.config.relay_max_bytes;
    let Some(p) = Puller::lock(cfg, dir.clone())? else {
        return Ok(None);
    };
    let (stop, halt) = (halted.clone(), halt.clone());
    Ok(Some(tokio::spawn(async move {
        let result = p.run(start, stop).await;
        if result.is_err() {
            let _ = halt.send(true);
        }
        result
    })))
}

pub(crate) async fn run(
    setup: Setup,
    mut stop: watch::Receiver<bool>,
    commands: Option<Commands>,
) -> Result<Summary, StreamError> {
    let started = Instant::now();
    // The reader stops on the caller's request, on a Stop command, and when an applier has
    // failed (an idle source would otherwise keep it waiting for an event that never comes).
    let (halt, halted) = watch::channel(false);
    let forward = {
        let halt = halt.clone();
        tokio::spawn(async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    return;
                }
            }
            let _ = halt.send(true);
        })
    };
    let workers = setup.config.workers.max(1);
    let progress = Arc::new(Progress::new(setup.start.clone()));
    let (abort, abort_rx) = watch::channel(false);
    let (suspend, suspend_rx) = watch::channel(false);
    let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut queues = Vec::new();
    let mut appliers = Vec::new();
    for id in 0..workers {
        let (conn, request_bytes) = applier_conn(&setup.config.target).await?;
        let (tx, rx) = mpsc::channel(256);
        queues.push(tx);
        let applier = Applier {
            id,
            target: setup.config.target.clone(),
            conn,
            queue: rx,
            progress: progress.clone(),
            checkpoints: setup.checkpoints.clone(),
            safe_until: setup.safe_until.clone(),
            group_rows: setup.config.group_rows,
            compact: setup.config.compact,
            checkpoint_every_group: setup.config.checkpoint_every_group,
            abort: abort_rx.clone(),
            suspend: suspend_rx.clone(),
            busy: busy.clone(),
            request_bytes,
        };
        appliers.push(tokio::spawn(applier.run()));
    }
    let relay = match &setup.config.relay_dir {
        Some(dir) => Some(RelayDir::for_source(dir, &setup.config.source)?),
        None => None,
    };
    // The first process on a source pulls its binlog into the relay for every task.
    let puller = match &relay {
        Some(dir) => {
            let p = start_puller(&setup, dir, Some(setup.start.clone()), &halted, &halt)?;
            if p.is_none() {
                tracing::info!(relay = %dir.path().display(), "another process pulls this source into the relay log: reading from it");
            }
            p
        }
        None => None,
    };
    let reader_status = Arc::new(Mutex::new(ReaderStatus::default()));
    let (items_tx, mut items) = mpsc::channel(1024);
    let (sources, sources_rx) = watch::channel(setup.config.source.clone());
    let halted_copy = halted.clone();
    let reader = Reader::new(
        ReaderConfig {
            source: setup.config.source.clone(),
            flavor: setup.flavor,
            server_id: setup.config.server_id,
            filter: setup.config.filter.clone(),
            routes: setup.config.routes.clone(),
            until: setup.config.until.clone(),
            relay: relay.clone(),
            skip_before: setup.skip_before.clone(),
        },
        SchemaView::new(setup.config.target.clone()),
        setup.start.clone(),
        items_tx,
        halted,
        reader_status.clone(),
        sources_rx,
    );
    let reader = tokio::spawn(reader.run());
    let mut c = Coordinator {
        flushed: setup.start.position.clone(),
        dispatcher: Dispatcher::new(queues, progress.clone()),
        setup,
        workers,
        progress,
        reader_status,
        halt,
        ddl_count: 0,
        paused: false,
        held: None,
        hold_at: None,
        pending: None,
        broken: false,
        sources,
        failure: None,
        relay_mark: relay.map(|r| (r, None)),
        puller,
        halted_for_puller: halted_copy.clone(),
        abort,
        forced: false,
        suspend,
        busy,
    };
    let mut commands = commands.unwrap_or_else(|| mpsc::channel(1).1);
    let mut commands_open = true;
    let mut flush_tick = tokio::time::interval(Duration::from_secs(1));
    let status_every = c.setup.config.status_every;
    let mut status_tick = tokio::time::interval(status_every.unwrap_or(Duration::from_secs(3600)));
    status_tick.tick().await;
    let mut rates = Rates::new(&c.reader_status);
    while !c.broken {
        let may_take = c.pending.is_none() && !c.paused && c.held.is_none();
        tokio::select! {
            item = items.recv(), if may_take => match item {
                None => break,
                Some(item) => c.take(item).await,
            },
            cmd = commands.recv(), if commands_open => match cmd {
                None => commands_open = false,
                Some(cmd) => c.command(cmd).await,
            },
            _ = flush_tick.tick() => {
                if let Some(since) = c.held
                    && since.elapsed() > HOLD_LIMIT
                {
                    tracing::warn!("a sync point held the stream for {HOLD_LIMIT:?} without release; releasing it");
                    c.release().await;
                }
                if let Err(e) = c.flush_if_idle().await {
                    c.fail(e);
                }
                c.mark_relay(false);
                if let Err(e) = c.take_over_pulling() {
                    c.fail(e);
                }
            }
            _ = status_tick.tick(), if status_every.is_some() => {
                rates.print(&c.progress, &c.reader_status, items.len());
            }
        }
    }
    // The reader is done (or must stop), and so is this process's relay puller; appliers a
    // forced pause held finish (or abandon) what they hold.
    let _ = c.halt.send(true);
    let _ = c.suspend.send(false);
    forward.abort();
    // A hold that was never reached is refused: the stream is ending.
    if let Some((_, reply)) = c.hold_at.take() {
        let _ = reply.send(Err(HoldRefused::Busy));
    }
    // Closing the queues lets every applier finish what it holds, then end.
    c.mark_relay(true);
    let drains = c.dispatcher.drains;
    let Coordinator {
        mut setup,
        progress,
        reader_status,
        mut flushed,
        ddl_count,
        failure,
        dispatcher,
        workers,
        puller: puller_task,
        abort,
        mut forced,
        ..
    } = c;
    drop(dispatcher);
    drop(items);
    // The appliers finish what they hold, within the stop timeout; a forced stop (asked for
    // now, or the timeout passed) abandons it instead.
    let deadline = tokio::time::Instant::now() + setup.config.stop_timeout;
    let joined = futures::future::join_all(appliers);
    tokio::pin!(joined);
    let results = loop {
        tokio::select! {
            r = &mut joined => break r,
            _ = tokio::time::sleep_until(deadline), if !forced => {
                tracing::warn!("the transactions being applied did not finish within {:?} of the stop request", setup.config.stop_timeout);
                forced = true;
                let _ = abort.send(true);
            }
            cmd = commands.recv(), if commands_open => match cmd {
                Some(Command::Stop { force: true, reply }) => {
                    tracing::warn!("forced stop: abandoning the target transactions in flight");
                    forced = true;
                    let _ = abort.send(true);
                    let _ = reply.send(());
                }
                Some(_) => {} // the stream is ending: other calls are dropped (the caller sees it gone)
                None => commands_open = false,
            },
        }
    };
    let mut applier_error = None;
    for r in results {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => applier_error = applier_error.or(Some(e)),
            Err(e) => {
                applier_error = applier_error.or(Some(StreamError::Config(format!(
                    "an applier panicked: {e}"
                ))))
            }
        }
    }
    let reader_end = match reader.await {
        Ok(r) => r,
        Err(e) => Err(StreamError::Config(format!("the reader panicked: {e}"))),
    };
    let puller_error = match puller_task {
        Some(p) => match p.await {
            Ok(r) => r.err(),
            Err(e) => Some(StreamError::Config(format!(
                "the relay puller panicked: {e}"
            ))),
        },
        None => None,
    };
    if let Some(e) = puller_error {
        return Err(e);
    }
    if let Some(e) = failure.or(applier_error) {
        return Err(e);
    }
    let end = reader_end?;
    // Everything handed on is committed: bring every checkpoint row up to the end. After a
    // forced stop some of it was rolled back: the rows already say what was committed.
    if !forced && progress.wait_idle().await {
        flush(&mut setup, &progress, workers, &mut flushed).await?;
    }
    let snap = progress.snapshot();
    let status = reader_status.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(Summary {
        task: setup.config.task.clone(),
        started_at: setup.start.position.to_string(),
        started_gtid: setup.start.gtid.to_string(),
        position: snap.low.position.to_string(),
        gtid: snap.low.gtid.to_string(),
        transactions: snap.transactions,
        rows: snap.rows,
        ddl: ddl_count,
        events: status.events,
        binlog_bytes: status.bytes,
        reconnects: status.reconnects,
        drains,
        safe_mode_until: setup.safe_until.as_ref().map(ToString::to_string),
        ended: match end {
            ReaderEnd::Until => "until".into(),
            ReaderEnd::Stopped if forced => "forced".into(),
            ReaderEnd::Stopped => "stopped".into(),
        },
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl Coordinator {
    /// When the process that pulled into the relay has gone, this one takes over (from the
    /// relay's end), so that the tasks still reading never wait for nothing.
    fn take_over_pulling(&mut self) -> Result<(), StreamError> {
        if self.puller.is_some() {
            return Ok(());
        }
        let Some((dir, _)) = &self.relay_mark else {
            return Ok(());
        };
        let dir = dir.clone();
        self.puller = start_puller(&self.setup, &dir, None, &self.halted_for_puller, &self.halt)?;
        if self.puller.is_some() {
            tracing::info!(relay = %dir.path().display(), "took over pulling the source into the relay log");
        }
        Ok(())
    }

    /// Abandons what the appliers are applying: their connections are killed, the target
    /// rolls those transactions back, and the stream ends at its last committed checkpoint.
    fn force_stop(&mut self) {
        if !self.forced {
            tracing::warn!("forced stop: abandoning the target transactions in flight");
        }
        self.forced = true;
        let _ = self.halt.send(true);
        let _ = self.abort.send(true);
        self.paused = false;
        self.held = None;
    }

    /// Tells the relay's purge what this task's checkpoint still needs.
    fn mark_relay(&mut self, now: bool) {
        let Some((dir, last)) = self.relay_mark.as_mut() else {
            return;
        };
        if now {
            *last = None;
        }
        let low = self.progress.snapshot().low.position;
        if let Err(e) = dir.mark_task(&self.setup.config.task, &low, last) {
            tracing::warn!(error = %e, "could not record the task's position in the relay log");
        }
    }

    fn fail(&mut self, e: StreamError) {
        self.failure = Some(e);
        self.broken = true;
    }

    /// An item from the reader: dispatched, or kept back when a sync point lies before it.
    async fn take(&mut self, item: Item) {
        let end = item_end(&item).position.clone();
        if let Some((at, _)) = &self.hold_at
            && end > *at
        {
            self.pending = Some(item);
            self.reach_hold().await;
            return;
        }
        self.handle(item).await;
        if self
            .hold_at
            .as_ref()
            .is_some_and(|(at, _)| self.progress.snapshot_last() >= *at)
        {
            self.reach_hold().await;
        }
    }

    async fn handle(&mut self, item: Item) {
        match item {
            Item::Transaction(t) => {
                if self.dispatcher.dispatch(t).await.is_err() {
                    self.broken = true;
                }
            }
            Item::Ddl(d) => {
                if self.dispatcher.drain().await.is_err() {
                    self.broken = true;
                    return;
                }
                let before = self.progress.snapshot().low;
                if let Err(e) = self.apply_ddl(&d, &before).await {
                    self.fail(e);
                    return;
                }
                self.progress.skipped(&d.end);
                self.flushed = d.end.position.clone();
                self.ddl_count += 1;
                let _ = d.applied.send(());
            }
            Item::Xa(x) => {
                if self.dispatcher.drain().await.is_err() {
                    self.broken = true;
                    return;
                }
                match self.apply_xa(&x).await {
                    Ok(rows) => {
                        self.progress.applied_alone(&x.end, rows, x.timestamp);
                        self.flushed = x.end.position.clone();
                    }
                    Err(e) => self.fail(e),
                }
            }
            Item::Progress(m) => self.progress.skipped(&m),
        }
    }

    /// Runs an XA step alone (every applier drained) on the control connection, once more on
    /// a new connection when the first is lost ([`xa::apply_step`] may run twice).
    async fn apply_xa(&mut self, x: &XaStep) -> Result<u64, StreamError> {
        let s = &mut self.setup;
        let checkpoint = s.checkpoints.all_rows(self.workers, &x.end, None);
        let target = &s.config.target;
        let (pending, checkpoints) = (&s.pending_xa, &s.checkpoints);
        match xa::apply_step(&mut s.control, target, pending, checkpoints, &checkpoint, x).await {
            Err(e) if e.is_transient() => {
                s.control = target.connect().await?;
                xa::apply_step(&mut s.control, target, pending, checkpoints, &checkpoint, x).await
            }
            result => result,
        }
    }

    /// Everything up to the sync point is dispatched: drain, then answer the checker.
    async fn reach_hold(&mut self) {
        if self.dispatcher.drain().await.is_err() {
            self.broken = true;
            return;
        }
        if let Some((at, reply)) = self.hold_at.take() {
            let _ = reply.send(Ok(at.to_string()));
            self.held = Some(Instant::now());
        }
    }

    async fn release(&mut self) {
        self.held = None;
        if !self.paused
            && let Some(item) = self.pending.take()
        {
            self.take(item).await;
        }
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Pause { force: true, reply } => {
                self.paused = true;
                let _ = self.suspend.send(true);
                // Wait until every applier has rolled back what it was applying.
                let since = Instant::now();
                while self.busy.load(std::sync::atomic::Ordering::SeqCst) > 0
                    && since.elapsed() < Duration::from_secs(30)
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let at = self.progress.snapshot().low.position;
                tracing::info!(
                    "paused (forced: the transactions in flight were rolled back) at {at}"
                );
                let _ = reply.send(at.to_string());
            }
            Command::Pause {
                force: false,
                reply,
            } => {
                self.paused = true;
                // Appliers held by a forced pause cannot drain: what they hold waits for resume.
                if !*self.suspend.borrow() && self.dispatcher.drain().await.is_err() {
                    self.broken = true;
                }
                if let Err(e) = self.flush_if_idle().await {
                    self.fail(e);
                }
                tracing::info!("paused at {}", self.progress.snapshot().low.position);
                let _ = reply.send(self.progress.snapshot().low.position.to_string());
            }
            Command::Resume(reply) => {
                self.paused = false;
                let _ = self.suspend.send(false);
                if self.held.is_none()
                    && let Some(item) = self.pending.take()
                {
                    self.take(item).await;
                }
                let _ = reply.send(());
            }
            Command::Stop { force, reply } => {
                let _ = self.halt.send(true);
                let _ = self.suspend.send(false);
                if force {
                    self.force_stop();
                }
                self.paused = false;
                self.held = None;
                if let Some(item) = self.pending.take() {
                    self.take(item).await;
                }
                let _ = reply.send(());
            }
            Command::Hold { at, reply } => {
                let last = self.progress.snapshot_last();
                if self.paused {
                    let _ = reply.send(Err(HoldRefused::Paused));
                } else if self.hold_at.is_some() {
                    let _ = reply.send(Err(HoldRefused::Busy));
                } else if let Some(at) = at {
                    if last > at {
                        let _ = reply.send(Err(HoldRefused::Passed {
                            at: last.to_string(),
                        }));
                    } else {
                        // Move on (from a hold, if any) up to `at`, and hold there.
                        self.held = None;
                        self.hold_at = Some((at.clone(), reply));
                        if last == at {
                            self.reach_hold().await;
                        } else if let Some(item) = self.pending.take() {
                            self.take(item).await;
                        }
                    }
                } else if self.held.is_some() {
                    let _ = reply.send(Err(HoldRefused::Busy));
                } else {
                    self.hold_at = Some((last, reply));
                    self.reach_hold().await;
                }
            }
            Command::Release(reply) => {
                self.release().await;
                let _ = reply.send(());
            }
            Command::UpdateSource { reply, .. } if self.relay_mark.is_some() => {
                let _ = reply.send(Err(
                    "this stream reads a relay log: switch the source of its puller instead \
                     (sluice relay), not of one task"
                        .into(),
                ));
            }
            Command::UpdateSource { mut source, reply } => {
                // The same account on another replica: keep the password unless a new one came.
                if source.password.is_none() && source.user == self.setup.config.source.user {
                    source.password = self.setup.config.source.password.clone();
                }
                // The GTID position the new source must be able to continue from: the oldest
                // one the reader may still need (it resumes at its last whole transaction).
                let gtid = self.progress.snapshot().low.gtid;
                let probe = crate::binlog_conn::probe_source(
                    &source,
                    &gtid,
                    self.setup.config.server_id.wrapping_add(1),
                )
                .await;
                match probe {
                    Ok(()) => {
                        self.setup.config.source = source.clone();
                        let _ = self.sources.send(source);
                        let _ = reply.send(Ok(()));
                    }
                    Err(why) => {
                        tracing::warn!(source = %source, "update-source refused: {why}");
                        let _ = reply.send(Err(format!(
                            "{source} cannot continue from GTID {gtid}: {why}; still reading from {}",
                            self.setup.config.source
                        )));
                    }
                }
            }
        }
    }

    fn status(&self) -> Status {
        let snap = self.progress.snapshot();
        let r = self
            .reader_status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Status {
            state: if self.paused {
                "paused"
            } else if self.held.is_some() {
                "held"
            } else {
                "running"
            }
            .into(),
            position: snap.low.position.to_string(),
            gtid: snap.low.gtid.to_string(),
            transactions: snap.transactions,
            rows: snap.rows,
            in_flight: snap.in_flight,
            lag_seconds: if snap.in_flight > 0 && snap.last_commit_timestamp > 0 {
                now.saturating_sub(u64::from(snap.last_commit_timestamp))
            } else {
                0
            },
            lag_bytes: r.lag_bytes(&snap.low.position),
            events: r.events,
            binlog_bytes: r.bytes,
            reconnects: r.reconnects,
            errors: r.reconnects + snap.recovered_errors,
            safe_mode_until: self.setup.safe_until.as_ref().map(ToString::to_string),
        }
    }

    async fn flush_if_idle(&mut self) -> Result<(), StreamError> {
        flush(
            &mut self.setup,
            &self.progress,
            self.workers,
            &mut self.flushed,
        )
        .await
    }

    /// Runs a DDL alone (every applier drained). It is recorded as pending first, so that a
    /// crash between the DDL and its checkpoint makes the rerun accept "already done" errors.
    async fn apply_ddl(&mut self, d: &Ddl, before: &Mark) -> Result<(), StreamError> {
        let s = &mut self.setup;
        let pending = s
            .checkpoints
            .all_rows(self.workers, before, Some(&d.end.position));
        control_query(s, &pending).await?;
        if !d.schema.is_empty() {
            let use_db = format!("USE {}", sluice_core::quote_ident(&d.schema));
            if let Err(e) = s.control.query_drop(&use_db).await
                && !matches!(&e, mysql_async::Error::Server(e) if e.code == 1049)
            {
                return Err(s.config.target.error("select the DDL's database", e).into());
            }
        }
        tracing::info!(position = %d.end.position, statement = %d.statement, "applying DDL");
        if let Err(e) = s.control.query_drop(&d.statement).await {
            let replayed = s.safe_until.as_ref().is_some_and(|u| d.end.position <= *u);
            let code = match &e {
                mysql_async::Error::Server(e) => e.code,
                _ => 0,
            };
            if replayed && ALREADY_DONE.contains(&code) {
                tracing::warn!(position = %d.end.position, error = %e, "DDL already applied before the restart; skipped");
            } else if s.config.skip_ddl_errors && code != 0 {
                tracing::warn!(position = %d.end.position, error = %e, statement = %d.statement, "the target rejected a DDL; skipped (--skip-ddl-errors)");
            } else {
                return Err(StreamError::Ddl {
                    position: d.end.position.clone(),
                    statement: d.statement.clone(),
                    cause: e,
                });
            }
        }
        let after = s.checkpoints.all_rows(self.workers, &d.end, None);
        control_query(s, &after).await
    }
}

fn item_end(item: &Item) -> &Mark {
    match item {
        Item::Transaction(t) => &t.end,
        Item::Ddl(d) => &d.end,
        Item::Xa(x) => &x.end,
        Item::Progress(m) => m,
    }
}

/// Writes every checkpoint row at the watermark when nothing is in flight and it moved.
async fn flush(
    setup: &mut Setup,
    progress: &Progress,
    workers: usize,
    flushed: &mut BinlogPosition,
) -> Result<(), StreamError> {
    let snap = progress.snapshot();
    if snap.in_flight > 0 || snap.low.position == *flushed {
        return Ok(());
    }
    let sql = setup.checkpoints.all_rows(workers, &snap.low, None);
    control_query(setup, &sql).await?;
    *flushed = snap.low.position;
    Ok(())
}

async fn control_query(setup: &mut Setup, sql: &str) -> Result<(), StreamError> {
    let target = &setup.config.target;
    match setup.control.query_drop(sql).await {
        Ok(()) => Ok(()),
        Err(e) if is_connection_error(&e) => {
            setup.control = target.connect().await?;
            setup
                .control
                .query_drop(sql)
                .await
                .map_err(|e| target.error("write the stream checkpoint", e).into())
        }
        Err(e) => Err(target.error("write the stream checkpoint", e).into()),
    }
}

/// Errors a DDL gives when it already ran: table/column/key/database exists or is gone.
const ALREADY_DONE: &[u16] = &[1007, 1008, 1050, 1051, 1054, 1060, 1061, 1091, 1146, 1826];

/// Status lines: position, lag, rates since the previous line.
struct Rates {
    at: Instant,
    events: u64,
    rows: u64,
}

impl Rates {
    fn new(status: &Mutex<ReaderStatus>) -> Rates {
        Rates {
            at: Instant::now(),
            events: status.lock().map(|s| s.events).unwrap_or(0),
            rows: 0,
        }
    }

    fn print(&mut self, progress: &Progress, status: &Mutex<ReaderStatus>, queued: usize) {
        let snap = progress.snapshot();
        let s = status.lock().map(|s| s.clone()).unwrap_or_default();
        let secs = self.at.elapsed().as_secs_f64().max(0.001);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let behind = snap.in_flight > 0 || queued > 0;
        let lag_secs = if behind && snap.last_commit_timestamp > 0 {
            now.saturating_sub(u64::from(snap.last_commit_timestamp))
        } else {
            0
        };
        let lag_bytes = s.lag_bytes(&snap.low.position);
        eprintln!(
            "sluice stream: at {} ({}); lag {lag_secs} s, {lag_bytes} bytes; {:.0} events/s, {:.0} rows/s; {} transactions, {} rows applied",
            snap.low.position,
            snap.low.gtid,
            (s.events - self.events) as f64 / secs,
            (snap.rows - self.rows) as f64 / secs,
            snap.transactions,
            snap.rows
        );
        self.at = Instant::now();
        self.events = s.events;
        self.rows = snap.rows;
    }
}
