//! The stage: `StreamConfig → Streamer::build → run`.
//!
//! `build` does everything that can fail early: it checks that the source writes a binlog
//! Sluice can apply exactly (log_bin, ROW, FULL images), prepares the checkpoint table on the
//! target, decides where to start (the task's checkpoint wins over a given start point, so
//! rerunning the same command after a crash continues instead of re-applying), and checks that
//! the source still has the binlog file it needs. `run` connects reader, dispatcher and
//! appliers and coordinates them: DDL drains every applier and runs alone; when nothing is in
//! flight the checkpoint rows are brought up to the reader's position (transactions the filter
//! skipped move it too); a stop request ends at a transaction boundary.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::Serialize;
use sluice_core::layout::{DumpMetadata, METADATA_FILE};
use sluice_core::{BinlogPosition, Endpoint, Flavor, GtidSet, ServerInfo, Storage, TableFilter};
use tokio::sync::{mpsc, watch};

use crate::StreamError;
use crate::apply::{Applier, GROUP_ROWS};
use crate::checkpoint::Checkpoints;
use crate::dispatch::Dispatcher;
use crate::error::is_connection_error;
use crate::progress::Progress;
use crate::reader::{Reader, ReaderConfig, ReaderEnd, ReaderStatus, Until};
use crate::schema_view::SchemaView;
use crate::transaction::{Ddl, Item, Mark};

/// Where a stream starts when the task has no checkpoint yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPoint {
    /// Only from the task's checkpoint (an error when there is none).
    Checkpoint,
    /// The snapshot position of a Sluice dump (its `metadata.json`), at a storage URL.
    Dump(String),
    Position(BinlogPosition),
    Gtid(GtidSet),
}

#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub source: Endpoint,
    pub target: Endpoint,
    pub start: StartPoint,
    pub until: Option<Until>,
    pub workers: usize,
    pub filter: TableFilter,
    /// Names this stream's checkpoint rows; two streams into one target need two names.
    pub task: String,
    /// The replica id the reader registers with (unique among the source's replicas).
    pub server_id: u32,
    pub meta_schema: String,
    pub status_every: Option<Duration>,
    pub skip_ddl_errors: bool,
    /// Forget the task's checkpoint and start from `start`.
    pub restart: bool,
    pub group_rows: usize,
    /// Apply each group of transactions as its net effect (see [`crate::compact`]).
    pub compact: bool,
}

impl StreamConfig {
    pub fn new(source: Endpoint, target: Endpoint, start: StartPoint) -> StreamConfig {
        StreamConfig {
            source,
            target,
            start,
            until: None,
            workers: 1,
            filter: TableFilter::default(),
            task: "default".into(),
            server_id: 0,
            meta_schema: "sluice_meta".into(),
            status_every: None,
            skip_ddl_errors: false,
            restart: false,
            group_rows: GROUP_ROWS,
            compact: true,
        }
    }
}

/// What a finished stream reports (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub task: String,
    pub started_at: String,
    pub started_gtid: String,
    /// The position every change before which is applied and checkpointed.
    pub position: String,
    pub gtid: String,
    pub transactions: u64,
    pub rows: u64,
    pub ddl: u64,
    pub events: u64,
    pub binlog_bytes: u64,
    pub reconnects: u64,
    pub drains: u64,
    pub safe_mode_until: Option<String>,
    /// `until` or `stopped`.
    pub ended: String,
    pub seconds: f64,
}

pub struct Streamer {
    config: StreamConfig,
    flavor: Flavor,
    start: Mark,
    safe_until: Option<BinlogPosition>,
    checkpoints: Checkpoints,
    control: Conn,
}

impl Streamer {
    pub async fn build(config: StreamConfig) -> Result<Streamer, StreamError> {
        let mut source = config.source.connect().await?;
        let info = ServerInfo::detect(&mut source, &config.source).await?;
        check_source(&mut source, &config.source).await?;
        let mut control = config.target.connect().await?;
        let checkpoints = Checkpoints::new(&config.meta_schema, &config.task);
        checkpoints
            .ensure(&mut control, &config.target, &config.meta_schema)
            .await?;
        if config.restart {
            checkpoints.clear(&mut control, &config.target).await?;
        }
        let resume = checkpoints.read(&mut control, &config.target).await?;
        let (start, safe_until) = match (resume, &config.start) {
            (Some(r), given) => {
                if *given != StartPoint::Checkpoint {
                    tracing::info!(
                        "task `{}` has a checkpoint at {}: continuing there (--restart starts from the given point instead)",
                        config.task,
                        r.start.position
                    );
                }
                (r.start, r.safe_until)
            }
            (None, StartPoint::Checkpoint) => {
                return Err(StreamError::Config(format!(
                    "task `{}` has no checkpoint on {}; give a start point: --from-dump URL, --from FILE:OFFSET or --from-gtid SET",
                    config.task, config.target
                )));
            }
            (None, StartPoint::Position(p)) => {
                let gtid = gtid_at(&mut source, &config.source, info.flavor, p).await?;
                (
                    Mark {
                        position: p.clone(),
                        gtid,
                    },
                    None,
                )
            }
            (None, StartPoint::Gtid(g)) => {
                if info.flavor != Flavor::MariaDb {
                    return Err(StreamError::Config(
                        "--from-gtid is supported for MariaDB sources only so far; give --from FILE:OFFSET".into(),
                    ));
                }
                (
                    Mark {
                        position: BinlogPosition::new("", 0),
                        gtid: g.clone(),
                    },
                    None,
                )
            }
            (None, StartPoint::Dump(url)) => (dump_start(url).await?, None),
        };
        check_available(&mut source, &config.source, &start.position).await?;
        if let Some(s) = &safe_until {
            tracing::warn!(
                "resuming at {} in safe mode up to {s}: several appliers were in flight when the last run ended",
                start.position
            );
        }
        Ok(Streamer {
            config,
            flavor: info.flavor,
            start,
            safe_until,
            checkpoints,
            control,
        })
    }

    /// The mark the stream starts from.
    pub fn start(&self) -> &Mark {
        &self.start
    }

    /// Streams until `--until` is reached or `stop` turns true, then records the checkpoint.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<Summary, StreamError> {
        let started = Instant::now();
        // The reader stops on the caller's request, and also when an applier has failed (an
        // idle source would otherwise keep it waiting for an event that never comes).
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
        let workers = self.config.workers.max(1);
        let progress = Arc::new(Progress::new(self.start.clone()));
        let mut queues = Vec::new();
        let mut appliers = Vec::new();
        for id in 0..workers {
            let conn = applier_conn(&self.config.target).await?;
            let (tx, rx) = mpsc::channel(256);
            queues.push(tx);
            let applier = Applier {
                id,
                target: self.config.target.clone(),
                conn,
                queue: rx,
                progress: progress.clone(),
                checkpoints: self.checkpoints.clone(),
                safe_until: self.safe_until.clone(),
                group_rows: self.config.group_rows,
                compact: self.config.compact,
            };
            appliers.push(tokio::spawn(applier.run()));
        }
        let status = Arc::new(Mutex::new(ReaderStatus::default()));
        let (items_tx, mut items) = mpsc::channel(1024);
        let reader = Reader::new(
            ReaderConfig {
                source: self.config.source.clone(),
                flavor: self.flavor,
                server_id: self.config.server_id,
                filter: self.config.filter.clone(),
                until: self.config.until.clone(),
            },
            SchemaView::new(self.config.target.clone()),
            self.start.clone(),
            items_tx,
            halted,
            status.clone(),
        );
        let reader = tokio::spawn(reader.run());
        let mut dispatcher = Dispatcher::new(queues, progress.clone());
        let mut ddl_count = 0u64;
        let mut flushed = self.start.position.clone();
        let mut flush_tick = tokio::time::interval(Duration::from_secs(1));
        let status_every = self
            .config
            .status_every
            .unwrap_or(Duration::from_secs(3600));
        let mut status_tick = tokio::time::interval(status_every);
        status_tick.tick().await;
        let mut rates = Rates::new(&status);
        let mut failure: Option<StreamError> = None;
        loop {
            tokio::select! {
                item = items.recv() => match item {
                    None => break,
                    Some(Item::Transaction(t)) => {
                        if dispatcher.dispatch(t).await.is_err() {
                            break;
                        }
                    }
                    Some(Item::Ddl(d)) => {
                        if dispatcher.drain().await.is_err() {
                            break;
                        }
                        let before = progress.snapshot().low;
                        if let Err(e) = self.apply_ddl(&d, &before, workers).await {
                            failure = Some(e);
                            break;
                        }
                        progress.skipped(&d.end);
                        flushed = d.end.position.clone();
                        ddl_count += 1;
                        let _ = d.applied.send(());
                    }
                    Some(Item::Progress(m)) => progress.skipped(&m),
                },
                _ = flush_tick.tick() => {
                    if let Err(e) = self.flush_if_idle(&progress, workers, &mut flushed).await {
                        failure = Some(e);
                        break;
                    }
                }
                _ = status_tick.tick(), if self.config.status_every.is_some() => {
                    rates.print(&progress, &status, items.len());
                }
            }
        }
        if failure.is_some() || progress.has_failed() {
            let _ = halt.send(true);
        }
        forward.abort();
        // Closing the queues lets every applier finish what it holds, then end.
        let drains = dispatcher.drains;
        drop(dispatcher);
        drop(items);
        let mut applier_error = None;
        for a in appliers {
            match a.await {
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
        if let Some(e) = failure.or(applier_error) {
            return Err(e);
        }
        let end = reader_end?;
        // Everything handed on is committed: bring every checkpoint row up to the end.
        if progress.wait_idle().await {
            self.flush_if_idle(&progress, workers, &mut flushed).await?;
        }
        let snap = progress.snapshot();
        let reader_status = status.lock().map(|s| s.clone()).unwrap_or_default();
        Ok(Summary {
            task: self.config.task.clone(),
            started_at: self.start.position.to_string(),
            started_gtid: self.start.gtid.to_string(),
            position: snap.low.position.to_string(),
            gtid: snap.low.gtid.to_string(),
            transactions: snap.transactions,
            rows: snap.rows,
            ddl: ddl_count,
            events: reader_status.events,
            binlog_bytes: reader_status.bytes,
            reconnects: reader_status.reconnects,
            drains,
            safe_mode_until: self.safe_until.as_ref().map(ToString::to_string),
            ended: match end {
                ReaderEnd::Until => "until".into(),
                ReaderEnd::Stopped => "stopped".into(),
            },
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Writes every checkpoint row at the watermark when nothing is in flight and it moved.
    async fn flush_if_idle(
        &mut self,
        progress: &Progress,
        workers: usize,
        flushed: &mut BinlogPosition,
    ) -> Result<(), StreamError> {
        let snap = progress.snapshot();
        if snap.in_flight > 0 || snap.low.position == *flushed {
            return Ok(());
        }
        let sql = self.checkpoints.all_rows(workers, &snap.low, None);
        self.control_query(&sql).await?;
        *flushed = snap.low.position;
        Ok(())
    }

    async fn control_query(&mut self, sql: &str) -> Result<(), StreamError> {
        match self.control.query_drop(sql).await {
            Ok(()) => Ok(()),
            Err(e) if is_connection_error(&e) => {
                self.control = self.config.target.connect().await?;
                self.control.query_drop(sql).await.map_err(|e| {
                    self.config
                        .target
                        .error("write the stream checkpoint", e)
                        .into()
                })
            }
            Err(e) => Err(self
                .config
                .target
                .error("write the stream checkpoint", e)
                .into()),
        }
    }

    /// Runs a DDL alone (every applier drained). It is recorded as pending first, so that a
    /// crash between the DDL and its checkpoint makes the rerun accept "already done" errors.
    async fn apply_ddl(
        &mut self,
        d: &Ddl,
        before: &Mark,
        workers: usize,
    ) -> Result<(), StreamError> {
        let pending = self
            .checkpoints
            .all_rows(workers, before, Some(&d.end.position));
        self.control_query(&pending).await?;
        if !d.schema.is_empty() {
            let use_db = format!("USE {}", sluice_core::quote_ident(&d.schema));
            if let Err(e) = self.control.query_drop(&use_db).await
                && !matches!(&e, mysql_async::Error::Server(s) if s.code == 1049)
            {
                return Err(self
                    .config
                    .target
                    .error("select the DDL's database", e)
                    .into());
            }
        }
        tracing::info!(position = %d.end.position, statement = %d.statement, "applying DDL");
        if let Err(e) = self.control.query_drop(&d.statement).await {
            let replayed = self
                .safe_until
                .as_ref()
                .is_some_and(|s| d.end.position <= *s);
            let code = match &e {
                mysql_async::Error::Server(s) => s.code,
                _ => 0,
            };
            if replayed && ALREADY_DONE.contains(&code) {
                tracing::warn!(position = %d.end.position, error = %e, "DDL already applied before the restart; skipped");
            } else if self.config.skip_ddl_errors && code != 0 {
                tracing::warn!(position = %d.end.position, error = %e, statement = %d.statement, "the target rejected a DDL; skipped (--skip-ddl-errors)");
            } else {
                return Err(StreamError::Ddl {
                    position: d.end.position.clone(),
                    statement: d.statement.clone(),
                    cause: e,
                });
            }
        }
        let after = self.checkpoints.all_rows(workers, &d.end, None);
        self.control_query(&after).await
    }
}

/// Errors a DDL gives when it already ran: table/column/key/database exists or is gone.
const ALREADY_DONE: &[u16] = &[1007, 1008, 1050, 1051, 1054, 1060, 1061, 1091, 1146, 1826];

/// An applier's connection: foreign keys off, because appliers commit independent
/// transactions in any order (the source checked them already).
async fn applier_conn(target: &Endpoint) -> Result<Conn, StreamError> {
    let mut conn = target.connect().await?;
    conn.query_drop("SET SESSION foreign_key_checks = 0")
        .await
        .map_err(|e| target.error("prepare an applier session", e))?;
    Ok(conn)
}

/// log_bin ON, binlog_format ROW, binlog_row_image FULL: anything else cannot be applied
/// exactly. Every problem is named at once, with the statement that fixes it.
async fn check_source(conn: &mut Conn, source: &Endpoint) -> Result<(), StreamError> {
    let vars: Vec<(String, String)> = conn
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image')",
        )
        .await
        .map_err(|e| source.error("read the binlog settings", e))?;
    let get = |name: &str| {
        vars.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_uppercase())
            .unwrap_or_default()
    };
    let mut problems = Vec::new();
    if get("log_bin") != "ON" {
        problems
            .push("log_bin is OFF: start the server with --log-bin (it is not dynamic)".to_owned());
    }
    if get("binlog_format") != "ROW" {
        problems.push(format!(
            "binlog_format is {}; Sluice needs ROW: SET GLOBAL binlog_format = 'ROW' (and in the server's option file)",
            get("binlog_format")
        ));
    }
    if get("binlog_row_image") != "FULL" {
        problems.push(format!(
            "binlog_row_image is {}; Sluice needs FULL: SET GLOBAL binlog_row_image = 'FULL'",
            get("binlog_row_image")
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(StreamError::SourceSetup {
        source_name: source.address(),
        reason: problems.join("; "),
    })
}

/// The GTID set executed at a position (MariaDB `BINLOG_GTID_POS`); empty elsewhere.
async fn gtid_at(
    conn: &mut Conn,
    source: &Endpoint,
    flavor: Flavor,
    p: &BinlogPosition,
) -> Result<GtidSet, StreamError> {
    if flavor != Flavor::MariaDb || p.offset > u64::from(u32::MAX) {
        return Ok(GtidSet::default());
    }
    let pos: Option<Option<String>> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (p.file.clone(), p.offset))
        .await
        .map_err(|e| source.error("read BINLOG_GTID_POS", e))?;
    match pos.flatten().filter(|s| !s.is_empty()) {
        Some(text) => Ok(text.parse()?),
        None => Ok(GtidSet::default()),
    }
}

/// The snapshot point a Sluice dump recorded.
async fn dump_start(url: &str) -> Result<Mark, StreamError> {
    let storage = Storage::open(url)?;
    let Some(bytes) = storage.get_if_exists(METADATA_FILE).await? else {
        return Err(StreamError::Config(format!(
            "--from-dump {url}: no {METADATA_FILE} (not a Sluice dump, or the dump did not finish)"
        )));
    };
    let meta: DumpMetadata = serde_json::from_slice(&bytes)
        .map_err(|e| StreamError::Config(format!("--from-dump {url}/{METADATA_FILE}: {e}")))?;
    let Some(snapshot) = meta.snapshot else {
        return Err(StreamError::Config(format!(
            "--from-dump {url}: the dump recorded no binlog position (consistency `{}`); give --from or --from-gtid",
            meta.consistency
        )));
    };
    let gtid = if snapshot.gtid_set.trim().is_empty() {
        GtidSet::default()
    } else {
        snapshot.gtid_set.parse()?
    };
    Ok(Mark {
        position: BinlogPosition::new(snapshot.binlog_file, snapshot.binlog_offset),
        gtid,
    })
}

/// The start file must still be on the source, and the offset inside it.
async fn check_available(
    conn: &mut Conn,
    source: &Endpoint,
    start: &BinlogPosition,
) -> Result<(), StreamError> {
    if start.file.is_empty() {
        return Ok(());
    }
    let logs: Vec<mysql_async::Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(|e| source.error("list the binary logs", e))?;
    let files: Vec<(String, u64)> = logs
        .into_iter()
        .filter_map(|r| {
            let name: String = r.get(0)?;
            let size: u64 = r.get(1)?;
            Some((name, size))
        })
        .collect();
    match files.iter().find(|(n, _)| *n == start.file) {
        Some((_, size)) if start.offset > *size => Err(StreamError::Refused {
            source_name: source.address(),
            position: start.clone(),
            reason: format!("{} has only {size} bytes", start.file),
        }),
        Some(_) => Ok(()),
        None => Err(StreamError::Refused {
            source_name: source.address(),
            position: start.clone(),
            reason: format!(
                "{} is not on the source any more (purged?); the oldest binlog there is {}; \
                 take a new dump and stream from its position",
                start.file,
                files.first().map_or("none", |(n, _)| n.as_str())
            ),
        }),
    }
}

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
        let lag_bytes = match &s.source_end {
            Some((file, end)) if *file == snap.low.position.file => {
                u64::from(*end).saturating_sub(snap.low.position.offset & 0xFFFF_FFFF)
            }
            _ => 0,
        };
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
