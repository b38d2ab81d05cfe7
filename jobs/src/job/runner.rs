//! `sluice run`: the phases of a job, resumable.
//!
//! The job's phase lives in the target's `sluice_meta.jobs`, written after each phase ends, so
//! a killed job rerun with the same command continues: a finished dump (its `metadata.json`
//! is written last) is not taken again, the import continues from its table checkpoints, the
//! stream from its checkpoint (task = the job's name). An unfinished dump resumes: the chunks
//! it finished are kept, the others are read in a new snapshot (see `sluice_dumper`'s
//! `resume.rs`), and the stream replays the gap between the snapshots in safe mode.
//!
//! One-shot mode streams from the dump's position until the target has caught up with the
//! source's binlog end as it was when the stream started, then checks every table online at
//! sync points of the running stream (so writes may go on), stops the stream at a transaction
//! boundary and exits 0 when equal, 1 when not. Continuous mode streams until stopped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde::Serialize;
use sluice_checksum::{Checker, ChecksumConfig, Hold, SyncHandle, SyncPoints, sync::BoxFuture};
use sluice_core::layout::{Compression, DataFormat, METADATA_FILE};
use sluice_core::{BinlogPosition, Endpoint, Storage, quote_string};
use sluice_dumper::{DumpConfig, Dumper, LogObserver};

use crate::control::meter::PhaseMeter;
use sluice_importer::{ImportConfig, ImportLog, Importer, LoadMethod};
use sluice_streamer::{Control, StartPoint, StreamConfig, Streamer};
use tokio::sync::watch;

use super::file::Job;
use crate::ExitCode;

/// Why a job stopped short, with the exit code it deserves.
#[derive(Debug)]
pub struct JobFailed {
    pub code: ExitCode,
    pub message: String,
}

fn fail(code: ExitCode, message: impl std::fmt::Display) -> JobFailed {
    JobFailed {
        code,
        message: message.to_string(),
    }
}

fn transient_or_input(transient: bool) -> ExitCode {
    if transient {
        ExitCode::Transient
    } else {
        ExitCode::UsageOrInput
    }
}

/// What a finished job reports.
#[derive(Debug, Default, Serialize)]
pub struct JobSummary {
    pub name: String,
    pub phases: Vec<String>,
    pub dumped_rows: u64,
    pub imported_rows: u64,
    pub streamed_transactions: u64,
    pub position: String,
    pub checksum_equal: Option<bool>,
    pub seconds: f64,
}

/// Pulls the source into the job's relay log from the dump's position until told to stop.
fn start_relay(
    job: &Job,
    dir: &std::path::Path,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<Result<(), sluice_streamer::StreamError>>,
) {
    let mut cfg = sluice_streamer::relay::PullerConfig::new(
        job.source.clone(),
        sluice_core::Flavor::MariaDb,
        job.server_id
            .unwrap_or_else(|| crate::commands::stream::default_server_id(&job.name)),
    );
    if job.relay_retention.is_some() {
        cfg.retention = job.relay_retention;
    }
    cfg.max_bytes = job.relay_max_bytes;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (dir, start) = (dir.to_owned(), StartPoint::Dump(job.storage.clone()));
    let pulling =
        tokio::spawn(async move { sluice_streamer::run_relay(cfg, &dir, &start, stop_rx).await });
    (stop_tx, pulling)
}

/// The job's phase on the target.
struct State {
    target: Endpoint,
    name: String,
}

impl State {
    async fn phase(&self) -> Result<String, JobFailed> {
        let mut c = self
            .target
            .connect()
            .await
            .map_err(|e| fail(transient_or_input(e.is_transient()), e))?;
        let q = |e| {
            fail(
                ExitCode::Transient,
                self.target.error("read the job state", e),
            )
        };
        c.query_drop(
            "CREATE DATABASE IF NOT EXISTS sluice_meta; \
             CREATE TABLE IF NOT EXISTS sluice_meta.jobs (name VARCHAR(100) PRIMARY KEY, phase VARCHAR(20) NOT NULL, \
             updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))",
        )
        .await
        .map_err(q)?;
        let phase: Option<String> = c
            .query_first(format!(
                "SELECT phase FROM sluice_meta.jobs WHERE name = {}",
                quote_string(&self.name)
            ))
            .await
            .map_err(q)?;
        Ok(phase.unwrap_or_else(|| "dump".to_owned()))
    }

    async fn set(&self, phase: &str) -> Result<(), JobFailed> {
        let mut c = self
            .target
            .connect()
            .await
            .map_err(|e| fail(transient_or_input(e.is_transient()), e))?;
        c.query_drop(format!(
            "REPLACE INTO sluice_meta.jobs (name, phase) VALUES ({}, {})",
            quote_string(&self.name),
            quote_string(phase)
        ))
        .await
        .map_err(|e| {
            fail(
                ExitCode::Transient,
                self.target.error("record the job state", e),
            )
        })
    }
}

const ORDER: [&str; 4] = ["dump", "import", "stream", "done"];

fn set_phase(phase: &crate::control::server::Phase, name: &str) {
    if let Ok(mut p) = phase.lock() {
        *p = name.to_owned();
    }
}

fn at_or_before(phase: &str, current: &str) -> bool {
    let i = |p: &str| ORDER.iter().position(|x| *x == p).unwrap_or(0);
    i(current) <= i(phase)
}

/// Runs `job`; `path` is its file, read again on SIGHUP while streaming (a changed
/// `[source] url` switches the stream to that source at its GTID position).
pub async fn run(
    job: Job,
    path: std::path::PathBuf,
    mut stop: watch::Receiver<bool>,
) -> Result<JobSummary, JobFailed> {
    let started = Instant::now();
    let mut summary = JobSummary {
        name: job.name.clone(),
        ..JobSummary::default()
    };
    let state = State {
        target: job.target.clone(),
        name: job.name.clone(),
    };
    // SIGHUP must never end the job (its default action): from here on it is caught, and one
    // that arrives before streaming begins is handled when it does.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let (control, commands) = Control::new();
    let view = crate::control::server::JobView::default();
    let (checks, shown_phase, meter) =
        (view.checks.clone(), view.phase.clone(), view.meter.clone());
    set_phase(&shown_phase, "dump");
    let server = match job.control_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                fail(
                    ExitCode::UsageOrInput,
                    format!("[control] listen {addr}: {e}"),
                )
            })?;
            eprintln!("sluice run: control API on http://{addr}");
            Some(tokio::spawn(crate::control::server::serve(
                listener,
                control.clone(),
                job.control_token.clone(),
                view,
            )))
        }
        None => None,
    };
    let controls = Controls {
        control,
        commands,
        checks,
        phase: shown_phase,
    };
    let mut phase = state.phase().await?;
    if phase == "done" && job.continuous {
        phase = "stream".into();
    }
    if phase == "done" {
        tracing::info!("job `{}` is done already", job.name);
        summary.phases.push("done".into());
        return Ok(summary);
    }
    if at_or_before("dump", &phase) {
        dump(&job, &meter, &mut summary).await?;
        state.set("import").await?;
    }
    // With a relay log the source's binlog is kept from the dump's position on while the
    // import runs (managed servers purge quickly); the stream then reads it from there.
    let relay = job.relay_dir.as_ref().map(|dir| start_relay(&job, dir));
    if at_or_before("import", &phase) {
        set_phase(&controls.phase, "import");
        import(&job, &meter, &mut summary).await?;
        state.set("stream").await?;
    }
    let equal = stream(&job, &path, hangups, controls, &mut summary, &mut stop).await;
    if let Some((stop_relay, pulling)) = relay {
        let _ = stop_relay.send(true);
        if let Ok(Err(e)) = pulling.await {
            tracing::warn!(error = %e, "the relay puller ended with an error");
        }
    }
    if let Some(s) = server {
        crate::control::server::drain(std::time::Duration::from_secs(2)).await;
        s.abort();
    }
    let equal = equal?;
    if !job.continuous {
        state.set("done").await?;
    }
    summary.checksum_equal = equal;
    summary.seconds = started.elapsed().as_secs_f64();
    if equal == Some(false) {
        return Err(fail(
            ExitCode::Differences,
            format!(
                "job `{}`: the final checksum found differences (see above)",
                job.name
            ),
        ));
    }
    Ok(summary)
}

async fn dump(
    job: &Job,
    meter: &Arc<PhaseMeter>,
    summary: &mut JobSummary,
) -> Result<(), JobFailed> {
    summary.phases.push("dump".into());
    let storage = Storage::open(&job.storage).map_err(|e| fail(ExitCode::UsageOrInput, e))?;
    if storage
        .get_if_exists(METADATA_FILE)
        .await
        .map_err(|e| fail(ExitCode::Transient, e))?
        .is_some()
    {
        tracing::info!(
            "{}: a finished dump is there already; not dumping again",
            job.storage
        );
        return Ok(());
    }
    let mut config = DumpConfig::new(job.source.clone(), job.storage.clone());
    config.filter = job.filter.clone();
    // A dump that did not finish goes on with the chunks it lacks; one that cannot (other
    // settings, a changed table) is taken again whole.
    config.overwrite = true;
    config.resume = true;
    if let Some(t) = job.dump_threads {
        config.threads = t;
    }
    config.file_size = job.dump_file_size;
    if let Some(n) = job.dump_chunk_rows {
        config.chunk_rows = n;
    }
    config.format = match job.dump_format.as_deref() {
        Some("csv") => DataFormat::Csv,
        Some("parquet") => DataFormat::Parquet,
        _ => DataFormat::Sql,
    };
    config.compression = match job.dump_compress.as_deref() {
        Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        _ => Compression::None,
    };
    tracing::info!("phase dump: {} → {}", job.source, job.storage);
    let dumper = Dumper::build(config)
        .await
        .map_err(|e| fail(transient_or_input(e.is_transient()), format!("dump: {e}")))?;
    let shown: Arc<dyn sluice_dumper::DumpObserver> =
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Arc::new(crate::progress::DumpBars::new())
        } else {
            Arc::new(LogObserver::default())
        };
    let s = dumper
        .run(meter.dump(shown))
        .await
        .map_err(|e| fail(transient_or_input(e.is_transient()), format!("dump: {e}")))?;
    summary.dumped_rows = s.rows;
    eprintln!(
        "sluice run: dump: {} tables, {} rows in {:.2} s",
        s.tables, s.rows, s.seconds
    );
    Ok(())
}

async fn import(
    job: &Job,
    meter: &Arc<PhaseMeter>,
    summary: &mut JobSummary,
) -> Result<(), JobFailed> {
    summary.phases.push("import".into());
    let mut config = ImportConfig::new(job.storage.clone(), job.target.clone());
    config.filter = job.filter.clone();
    config.routes = job.routes.clone();
    config.observer = meter.import(if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Arc::new(crate::progress::ImportBars::new())
    } else {
        Arc::new(ImportLog::default())
    });
    if let Some(t) = job.import_threads {
        config.threads = t;
    }
    if let Some(d) = &job.sort_dir {
        config.sort_dir = d.into();
    }
    if let Some(m) = job.sort_memory {
        config.sort_memory = m as usize;
    }
    if let Some(method) = &job.load_method {
        // The job file's reader has checked it is one of the choices.
        config.load_method = method.parse().unwrap_or(LoadMethod::Auto);
    }
    tracing::info!("phase import: {} → {}", job.storage, job.target);
    let importer = Importer::build(config)
        .await
        .map_err(|e| fail(transient_or_input(e.is_transient()), format!("import: {e}")))?;
    let s = importer.run().await.map_err(|e| {
        let code = if matches!(e, sluice_importer::ImportError::Verification { .. }) {
            ExitCode::Differences
        } else {
            transient_or_input(e.is_transient())
        };
        fail(code, format!("import: {e}"))
    })?;
    summary.imported_rows = s.rows;
    eprintln!(
        "sluice run: import: {} tables ({} done before), {} rows in {:.2} s",
        s.tables, s.tables_skipped, s.rows, s.seconds
    );
    Ok(())
}

/// The stream phase; in one-shot mode also the final online checksum (its verdict).
/// The control API's side of a job: the stream's handle and what `/status` adds to it.
struct Controls {
    control: Control,
    commands: sluice_streamer::control::Commands,
    checks: crate::control::server::Checks,
    phase: crate::control::server::Phase,
}

async fn stream(
    job: &Job,
    path: &std::path::Path,
    hangups: Option<tokio::signal::unix::Signal>,
    controls: Controls,
    summary: &mut JobSummary,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<bool>, JobFailed> {
    summary.phases.push("stream".into());
    let mut config = StreamConfig::new(
        job.source.clone(),
        job.target.clone(),
        StartPoint::Dump(job.storage.clone()),
    );
    config.filter = job.filter.clone();
    config.routes = job.routes.clone();
    config.task = job.name.clone();
    config.workers = job.stream_workers;
    config.server_id = job
        .server_id
        .unwrap_or_else(|| crate::commands::stream::default_server_id(&job.name));
    config.status_every = job.status_every;
    config.relay_dir = job.relay_dir.clone();
    if job.relay_retention.is_some() {
        config.relay_retention = job.relay_retention;
    }
    config.relay_max_bytes = job.relay_max_bytes;
    let streamer = Streamer::build(config)
        .await
        .map_err(|e| fail(transient_or_input(e.is_transient()), format!("stream: {e}")))?;
    let end = if job.continuous {
        None
    } else {
        Some(source_end(&job.source).await?)
    };
    tracing::info!(
        "phase stream: from the dump's position ({} appliers)",
        job.stream_workers
    );
    let Controls {
        control,
        commands,
        checks,
        phase,
    } = controls;
    set_phase(&phase, "stream");
    let running = tokio::spawn(streamer.run(stop.clone(), Some(commands)));
    let reload = tokio::spawn(reload_on_sighup(
        hangups,
        path.to_owned(),
        job.source.clone(),
        control.clone(),
    ));
    let scheduled = (job.continuous && !job.schedules.is_empty())
        .then(|| tokio::spawn(schedules(job.clone(), control.clone(), checks.clone())));
    let mut verdict = None;
    if let Some(end) = end {
        eprintln!("sluice run: stream: catching up to {end}");
        wait_until(&control, &end, stop).await?;
        if !*stop.borrow() {
            set_phase(&phase, "checksum");
            verdict = Some(final_checksum(job, &control).await?);
        }
        let _ = control.stop().await;
    }
    let result = running
        .await
        .map_err(|e| fail(ExitCode::Transient, format!("the stream task failed: {e}")))?;
    reload.abort();
    if let Some(s) = scheduled {
        s.abort();
    }
    let s =
        result.map_err(|e| fail(transient_or_input(e.is_transient()), format!("stream: {e}")))?;
    summary.streamed_transactions = s.transactions;
    summary.position = s.position.clone();
    eprintln!(
        "sluice run: stream: {} transactions, {} rows; at {} ({})",
        s.transactions, s.rows, s.position, s.gtid
    );
    Ok(verdict)
}

/// SIGHUP: read the job file again; a new `[source] url` is handed to the running stream,
/// which switches at its GTID position or refuses (and keeps the old source), saying why.
async fn reload_on_sighup(
    hangups: Option<tokio::signal::unix::Signal>,
    path: std::path::PathBuf,
    mut current: Endpoint,
    control: Control,
) {
    let Some(mut hup) = hangups else {
        return;
    };
    while hup.recv().await.is_some() {
        let job = match super::file::load(&path) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!("SIGHUP: {} not reloaded:\n{e}", path.display());
                continue;
            }
        };
        if job.source == current {
            tracing::info!(
                "SIGHUP: {} reloaded; the source is unchanged",
                path.display()
            );
            continue;
        }
        match control.update_source(job.source.clone()).await {
            Ok(Ok(())) => {
                tracing::info!("SIGHUP: the stream now reads from {}", job.source);
                current = job.source;
            }
            Ok(Err(why)) => tracing::warn!("SIGHUP: source not switched: {why}"),
            Err(_) => return,
        }
    }
}

async fn source_end(source: &Endpoint) -> Result<BinlogPosition, JobFailed> {
    let mut c = source
        .connect()
        .await
        .map_err(|e| fail(ExitCode::Transient, e))?;
    let row: Option<mysql_async::Row> = c.query_first("SHOW MASTER STATUS").await.map_err(|e| {
        fail(
            ExitCode::Transient,
            source.error("read the binlog position", e),
        )
    })?;
    let row = row.ok_or_else(|| {
        fail(
            ExitCode::UsageOrInput,
            format!("{source}: the binlog is off"),
        )
    })?;
    let file: String = row.get(0).unwrap_or_default();
    let offset: u64 = row.get(1).unwrap_or_default();
    Ok(BinlogPosition::new(file, offset))
}

/// Waits until the stream has applied everything up to `end`.
async fn wait_until(
    control: &Control,
    end: &BinlogPosition,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), JobFailed> {
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        match control.status().await {
            Ok(s) => {
                if s.position
                    .parse::<BinlogPosition>()
                    .is_ok_and(|p| p >= *end)
                {
                    return Ok(());
                }
            }
            // The stream ended (an error it will report): nothing to wait for.
            Err(_) => return Ok(()),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Sync points of the stream running in this process.
struct InProcess(Control);

impl SyncPoints for InProcess {
    fn hold<'a>(&'a self, at: Option<&'a BinlogPosition>) -> BoxFuture<'a, Result<Hold, String>> {
        Box::pin(async move {
            match self.0.hold(at.cloned()).await {
                Ok(Ok(_)) => Ok(Hold::Held),
                Ok(Err(_)) => Ok(Hold::Retry),
                Err(_) => Err("the stream has ended".to_owned()),
            }
        })
    }

    fn release(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.0
                .release()
                .await
                .map_err(|_| "the stream has ended".to_owned())
        })
    }
}

/// Runs the online checksums of `[[checksum.schedule]]` while the stream runs; each result is
/// kept (the last 20) for `status` and written to `sluice_meta.checksum_history` on the target.
async fn schedules(job: Job, control: Control, checks: crate::control::server::Checks) {
    loop {
        let now = std::time::SystemTime::now();
        let Some((when, cron)) = job
            .schedules
            .iter()
            .filter_map(|c| c.next_after(now).map(|t| (t, c)))
            .min_by_key(|(t, _)| *t)
        else {
            return;
        };
        tokio::time::sleep(when.duration_since(now).unwrap_or_default()).await;
        let started = Instant::now();
        let at = sluice_core::layout::utc_timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        tracing::info!(cron = %cron, "scheduled checksum starts");
        let outcome = checksum_report(&job, &control).await;
        let entry = match &outcome {
            Ok(report) => serde_json::json!({
                "at": at, "cron": cron.to_string(), "equal": report.is_equal(), "rows": report.rows,
                "chunks": report.chunks, "seconds": started.elapsed().as_secs_f64(),
                "differing_tables": report.tables.iter().filter(|t| !t.is_equal()).map(|t| t.table.clone()).collect::<Vec<_>>(),
            }),
            Err(e) => {
                serde_json::json!({"at": at, "cron": cron.to_string(), "equal": null, "error": e.message})
            }
        };
        match &outcome {
            Ok(r) if r.is_equal() => tracing::info!(rows = r.rows, "scheduled checksum: equal"),
            Ok(_) => tracing::warn!("scheduled checksum: DIFFERENCES: {entry}"),
            Err(e) => tracing::warn!("scheduled checksum failed: {}", e.message),
        }
        if let Ok(mut c) = job.target.connect().await {
            let _ = c
                .query_drop(format!(
                    "CREATE TABLE IF NOT EXISTS sluice_meta.checksum_history (job VARCHAR(100) NOT NULL, \
                     at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), result JSON NOT NULL, KEY (job, at)); \
                     INSERT INTO sluice_meta.checksum_history (job, result) VALUES ({}, {})",
                    quote_string(&job.name),
                    quote_string(&entry.to_string())
                ))
                .await;
        }
        if let Ok(mut c) = checks.lock() {
            c.push(entry);
            let excess = c.len().saturating_sub(20);
            c.drain(..excess);
        }
    }
}

async fn final_checksum(job: &Job, control: &Control) -> Result<bool, JobFailed> {
    let report = checksum_report(job, control).await?;
    for t in &report.tables {
        let state = if t.is_equal() { "equal" } else { "DIFFERENT" };
        eprintln!(
            "sluice run: checksum: {}: {state} ({} rows)",
            t.table, t.source_rows
        );
        for d in t.differences.iter().take(20) {
            eprintln!("      {}: {:?}", d.key, d.kind);
        }
    }
    eprintln!(
        "sluice run: checksum: {} rows in {} chunks, {:.2} s, at sync points of the running stream",
        report.rows, report.chunks, report.seconds
    );
    Ok(report.is_equal())
}

/// An online checksum of the job's tables at sync points of the stream running here.
async fn checksum_report(
    job: &Job,
    control: &Control,
) -> Result<sluice_checksum::Report, JobFailed> {
    let mut config = ChecksumConfig::new(job.source.clone(), job.target.clone());
    config.filter = job.filter.clone();
    config.routes = job.routes.clone();
    if let Some(t) = job.checksum_threads {
        config.threads = t;
    }
    if let Some(n) = job.checksum_chunk_rows {
        config.chunk_rows = n;
    }
    config.sync = Some(SyncHandle(Arc::new(InProcess(control.clone()))));
    let checker = Checker::build(config).await.map_err(|e| {
        fail(
            transient_or_input(e.is_transient()),
            format!("checksum: {e}"),
        )
    })?;
    checker.run().await.map_err(|e| {
        fail(
            transient_or_input(e.is_transient()),
            format!("checksum: {e}"),
        )
    })
}
