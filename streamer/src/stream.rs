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

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::Serialize;
use sluice_core::layout::{DumpMetadata, METADATA_FILE};
use sluice_core::{
    BinlogPosition, Endpoint, Flavor, GtidSet, Routes, ServerInfo, Storage, TableFilter, TableName,
    select_tables,
};
use tokio::sync::watch;

use crate::StreamError;
use crate::apply::GROUP_ROWS;
use crate::checkpoint::Checkpoints;
use crate::control::Commands;
use crate::reader::Until;
use crate::relay::RelayDir;
use crate::transaction::Mark;
use crate::xa::PendingXa;

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
    /// Target names for source tables (`--route`); DDL is rewritten to match.
    pub routes: Routes,
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
    /// Record the checkpoint in every apply transaction. Off only to measure what it costs
    /// (the streamer benchmark): a stream without it cannot resume exactly.
    pub checkpoint_every_group: bool,
    /// After a stop request, how long the transactions being applied may take before they
    /// are abandoned (rolled back) as with a forced stop.
    pub stop_timeout: Duration,
    /// Read the binlog through a relay log in this folder (see [`crate::relay`]); the first
    /// process on a source pulls for every task.
    pub relay_dir: Option<PathBuf>,
    /// Relay segments older than this are purged once no task needs them.
    pub relay_retention: Option<Duration>,
    /// The relay is kept below this size (oldest segments first, never one a task needs).
    pub relay_max_bytes: Option<u64>,
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
            routes: Routes::default(),
            task: "default".into(),
            server_id: 0,
            meta_schema: "sluice_meta".into(),
            status_every: None,
            skip_ddl_errors: false,
            restart: false,
            group_rows: GROUP_ROWS,
            compact: true,
            checkpoint_every_group: true,
            stop_timeout: Duration::from_secs(300),
            relay_dir: None,
            relay_retention: Some(Duration::from_secs(7 * 24 * 3600)),
            relay_max_bytes: None,
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
    /// Per source table: its changes before this position are in the dump already.
    skip_before: HashMap<TableName, BinlogPosition>,
    checkpoints: Checkpoints,
    pending_xa: PendingXa,
    control: Conn,
}

impl Streamer {
    pub async fn build(config: StreamConfig) -> Result<Streamer, StreamError> {
        let mut source = config.source.connect().await?;
        let info = ServerInfo::detect(&mut source, &config.source).await?;
        check_source(&mut source, &config.source).await?;
        if !config.routes.is_empty() {
            let selection = select_tables(&mut source, &config.source, &config.filter).await?;
            config
                .routes
                .check_distinct(selection.tables.iter().map(|t| &t.name))
                .map_err(|e| StreamError::Config(e.to_string()))?;
        }
        let mut control = config.target.connect().await?;
        let checkpoints = Checkpoints::new(&config.meta_schema, &config.task);
        checkpoints
            .ensure(&mut control, &config.target, &config.meta_schema)
            .await?;
        let pending_xa = PendingXa::new(&config.meta_schema, &config.task);
        pending_xa.ensure(&mut control, &config.target).await?;
        if config.restart {
            checkpoints.clear(&mut control, &config.target).await?;
            pending_xa.clear(&mut control, &config.target).await?;
        }
        let resume = checkpoints.read(&mut control, &config.target).await?;
        let resuming = resume.is_some();
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
                let mariadb_set = matches!(g, GtidSet::MariaDb(_));
                if mariadb_set != (info.flavor == Flavor::MariaDb) {
                    return Err(StreamError::Config(format!(
                        "--from-gtid {g}: a {} GTID set, but the source is {info}",
                        if mariadb_set {
                            "MariaDB (domain-server-sequence)"
                        } else {
                            "MySQL (uuid:interval)"
                        }
                    )));
                }
                (
                    Mark {
                        position: BinlogPosition::new("", 0),
                        gtid: g.clone(),
                    },
                    None,
                )
            }
            (None, StartPoint::Dump(url)) => (dump_start(url).await?.mark, None),
        };
        // A resumed dump read its chunks in several snapshots: replay up to the last one in
        // safe mode, and skip each table's changes that its chunks hold already. A stream
        // resuming from its checkpoint keeps these windows as long as it is given the dump.
        let mut safe_until = safe_until;
        let mut skip_before = HashMap::new();
        if let StartPoint::Dump(url) = &config.start {
            match dump_start(url).await {
                Ok(dump) => {
                    if let Some(until) = dump.safe_until.filter(|u| *u > start.position) {
                        tracing::info!(
                            "the dump was resumed: its chunks come from snapshots up to {until}; applying in safe mode up to there"
                        );
                        if safe_until.as_ref().is_none_or(|s| until > *s) {
                            safe_until = Some(until);
                        }
                    }
                    skip_before = dump.skip_before;
                }
                Err(e) if resuming => {
                    tracing::warn!(
                        "{e}: continuing from the checkpoint without the dump's snapshot windows"
                    )
                }
                Err(e) => return Err(e),
            }
        }
        let relay = match &config.relay_dir {
            Some(dir) => Some(RelayDir::for_source(dir, &config.source)?),
            None => None,
        };
        // A relay that holds the start (or will: its puller goes on from its end) stands in
        // for the source's binlog files.
        match &relay {
            Some(dir) => {
                let index = dir.load_index()?;
                if index.segments.is_empty() {
                    check_available(&mut source, &config.source, &start.position).await?;
                } else if !index.covers(&start.position) {
                    return Err(dir.lacks(&index, &start.position));
                }
            }
            None => check_available(&mut source, &config.source, &start.position).await?,
        }
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
            skip_before,
            checkpoints,
            pending_xa,
            control,
        })
    }

    /// The mark the stream starts from.
    pub fn start(&self) -> &Mark {
        &self.start
    }

    /// Streams until `--until` is reached, `stop` turns true or a Stop command arrives, then
    /// records the checkpoint. `commands` (see [`crate::control`]) lets a caller pause,
    /// resume, stop, read the status and hold the stream at sync points while it runs.
    pub async fn run(
        self,
        stop: watch::Receiver<bool>,
        commands: Option<Commands>,
    ) -> Result<Summary, StreamError> {
        crate::coordinator::run(
            crate::coordinator::Setup {
                config: self.config,
                flavor: self.flavor,
                start: self.start,
                safe_until: self.safe_until,
                skip_before: self.skip_before,
                checkpoints: self.checkpoints,
                pending_xa: self.pending_xa,
                control: self.control,
            },
            stop,
            commands,
        )
        .await
    }
}

/// log_bin ON, binlog_format ROW, binlog_row_image FULL: anything else cannot be applied
/// exactly. Every problem is named at once, with the statement that fixes it.
pub(crate) async fn check_source(conn: &mut Conn, source: &Endpoint) -> Result<(), StreamError> {
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

/// Where a stream from a Sluice dump starts, and how it treats the changes up to the last
/// snapshot a resumed dump read chunks in (see `sluice_core::layout::metadata`).
struct DumpStart {
    mark: Mark,
    safe_until: Option<BinlogPosition>,
    skip_before: HashMap<TableName, BinlogPosition>,
}

/// The snapshot point a Sluice dump recorded.
async fn dump_start(url: &str) -> Result<DumpStart, StreamError> {
    let storage = Storage::open(url)?;
    let Some(bytes) = storage.get_if_exists(METADATA_FILE).await? else {
        return Err(StreamError::Config(format!(
            "--from-dump {url}: no {METADATA_FILE} (not a Sluice dump, or the dump did not finish)"
        )));
    };
    let meta: DumpMetadata = serde_json::from_slice(&bytes)
        .map_err(|e| StreamError::Config(format!("--from-dump {url}/{METADATA_FILE}: {e}")))?;
    let Some(snapshot) = meta.snapshot.clone() else {
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
    let at = |s: &sluice_core::layout::SnapshotMeta| {
        BinlogPosition::new(s.binlog_file.clone(), s.binlog_offset)
    };
    let skip_before = meta
        .tables
        .iter()
        .filter_map(|t| {
            let position = meta.snapshot_at(t.snapshot).filter(|_| t.snapshot > 0)?;
            Some((TableName::new(&t.database, &t.table), at(position)))
        })
        .collect();
    Ok(DumpStart {
        mark: Mark {
            position: at(&snapshot),
            gtid,
        },
        safe_until: meta.safe_until().map(at),
        skip_before,
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

/// A standalone relay puller (`sluice relay`): pulls `source` into `relay_dir` from `start`
/// (used only when the relay is empty) until `stop` turns true.
pub async fn run_relay(
    mut cfg: crate::relay::PullerConfig,
    relay_dir: &std::path::Path,
    start: &StartPoint,
    stop: watch::Receiver<bool>,
) -> Result<(), StreamError> {
    let mut source = cfg.source.connect().await?;
    let info = ServerInfo::detect(&mut source, &cfg.source).await?;
    check_source(&mut source, &cfg.source).await?;
    cfg.flavor = info.flavor;
    let dir = RelayDir::for_source(relay_dir, &cfg.source)?;
    let mark = match start {
        StartPoint::Checkpoint => None,
        StartPoint::Position(p) => Some(Mark {
            position: p.clone(),
            gtid: gtid_at(&mut source, &cfg.source, info.flavor, p).await?,
        }),
        StartPoint::Gtid(g) => Some(Mark {
            position: BinlogPosition::new("", 0),
            gtid: g.clone(),
        }),
        StartPoint::Dump(url) => Some(dump_start(url).await?.mark),
    };
    drop(source);
    let Some(puller) = crate::relay::Puller::lock(cfg, dir.clone())? else {
        return Err(StreamError::Config(format!(
            "another process pulls into {} already (its puller.lock is held)",
            dir.path().display()
        )));
    };
    tracing::info!(relay = %dir.path().display(), "pulling the binlog into the relay log");
    puller.run(mark, stop).await
}
