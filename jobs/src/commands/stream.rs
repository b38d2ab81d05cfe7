//! `sluice stream`: the streamer's command line.
//!
//! SIGINT and SIGTERM stop at a transaction boundary: the reader drops the transaction it was
//! reading, the appliers commit what they hold with its checkpoint, and the process exits 0.

use std::path::PathBuf;
use std::time::Duration;

use sluice_core::{BinlogPosition, GtidSet, Routes, Secret, TableFilter};
use sluice_streamer::{Control, StartPoint, StreamConfig, Streamer, Summary, Until};
use tokio::sync::watch;

use crate::ExitCode;
use crate::commands::until_interrupted;
use crate::job::file::{parse_duration, parse_size};
use crate::password::{endpoint_arg, resolve_password};

/// Stream the binlog from a position or GTID set into the target, exactly once.
#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    /// Source server (binlog on, ROW, FULL images): mysql://user[:password]@host:port
    #[arg(long, value_name = "URL")]
    source: String,
    /// Target server: mysql://user[:password]@host:port
    #[arg(long, value_name = "URL")]
    target: String,
    /// Read the source password from this file (else SLUICE_SOURCE_PASSWORD or the URL).
    #[arg(long, value_name = "FILE")]
    source_password_file: Option<PathBuf>,
    /// Read the target password from this file (else SLUICE_TARGET_PASSWORD or the URL).
    #[arg(long, value_name = "FILE")]
    target_password_file: Option<PathBuf>,
    /// Start at the snapshot position of this Sluice dump (path, file:// or s3://).
    #[arg(long, value_name = "URL", group = "start")]
    from_dump: Option<String>,
    /// Start at this binlog position.
    #[arg(long, value_name = "FILE:OFFSET", group = "start")]
    from: Option<String>,
    /// Start after this GTID set (MariaDB: domain-server-seq list).
    #[arg(long, value_name = "SET", group = "start")]
    from_gtid: Option<String>,
    /// Stop after the transaction that ends at or past FILE:OFFSET, or once a GTID set is
    /// applied; then record the checkpoint and exit 0.
    #[arg(long, value_name = "FILE:OFFSET|GTID-SET")]
    until: Option<String>,
    /// Parallel appliers; transactions touching the same key stay in order on one.
    #[arg(long, default_value_t = 1, value_name = "N")]
    workers: usize,
    /// Tables to stream: db.*, db.tbl, !db.tbl; * and ? glob. Repeatable.
    #[arg(long = "filter", value_name = "PATTERN")]
    filters: Vec<String>,
    /// Target names for source tables: FROM=TO, as in shop=shop_v2 (a database),
    /// shop.orders=archive.orders_2026 (one table), shop.*=archive (names kept). First match
    /// wins; repeatable. Merging two tables into one is refused.
    #[arg(long = "route", value_name = "FROM=TO")]
    routes: Vec<String>,
    /// The replica id to register with (unique among the source's replicas; default derived
    /// from the task name).
    #[arg(long, value_name = "ID")]
    server_id: Option<u32>,
    /// Names this stream's checkpoint on the target.
    #[arg(long, default_value = "default", value_name = "NAME")]
    task: String,
    /// The target's schema for checkpoints.
    #[arg(long, default_value = "sluice_meta", value_name = "NAME")]
    meta_schema: String,
    /// Forget the task's checkpoint and start from the given start point.
    #[arg(long)]
    restart: bool,
    /// Go on past a DDL the target rejects (logged), instead of stopping.
    #[arg(long)]
    skip_ddl_errors: bool,
    /// Apply each group of upstream transactions statement by statement instead of as its
    /// net effect (one DELETE and one REPLACE per table); slower, for comparison.
    #[arg(long)]
    no_compact: bool,
    /// Benchmarks only: leave the checkpoint out of the apply transactions (it is written
    /// once at the end), to show what recording it costs. A stream run so cannot resume
    /// exactly after a crash.
    #[arg(long, hide = true)]
    bench_without_checkpoints: bool,
    /// Print a status line (position, lag, rates) this often.
    #[arg(long, value_name = "SECS")]
    status_every: Option<f64>,
    /// Serve the control API (status, pause, resume, stop, sync points) on this address,
    /// e.g. 127.0.0.1:7300.
    #[arg(long, value_name = "ADDR")]
    control: Option<String>,
    /// Guard the control API's mutating calls with the token in this file (else
    /// SLUICE_CONTROL_TOKEN; required for a non-loopback address).
    #[arg(long, value_name = "FILE")]
    control_token_file: Option<PathBuf>,
    /// Read the binlog through a relay log in this folder: the first process on a source pulls
    /// its events to disk for every task (see `sluice relay`), so a purge on the source does
    /// not stop the stream.
    #[arg(long, value_name = "DIR")]
    relay_dir: Option<PathBuf>,
    /// Purge relay segments older than this once no task needs them ("7d", "12h").
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    relay_retention: String,
    /// Keep the relay log below this size, oldest segments first, never one a task needs.
    #[arg(long, value_name = "SIZE")]
    relay_max_size: Option<String>,
    /// After a stop request (signal, `sluice stop`), how long the target transactions being
    /// applied may take; then they are rolled back and the stream ends at its last committed
    /// checkpoint (a second SIGINT/SIGTERM or `sluice stop --force` does that at once).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    stop_timeout: u64,
    /// Print one JSON summary line at the end.
    #[arg(long)]
    json: bool,
}

impl StreamArgs {
    fn into_config(self) -> Result<(StreamConfig, bool, Option<ControlSetup>), String> {
        let source = endpoint_arg(
            &self.source,
            "source",
            self.source_password_file.as_deref(),
            "SLUICE_SOURCE_PASSWORD",
        )?;
        let target = endpoint_arg(
            &self.target,
            "target",
            self.target_password_file.as_deref(),
            "SLUICE_TARGET_PASSWORD",
        )?;
        let start = if let Some(url) = self.from_dump {
            StartPoint::Dump(url)
        } else if let Some(p) = self.from {
            StartPoint::Position(p.parse().map_err(|e| format!("--from: {e}"))?)
        } else if let Some(g) = self.from_gtid {
            StartPoint::Gtid(g.parse().map_err(|e| format!("--from-gtid: {e}"))?)
        } else {
            StartPoint::Checkpoint
        };
        if self.restart && start == StartPoint::Checkpoint {
            return Err("--restart needs a start point: --from-dump, --from or --from-gtid".into());
        }
        let until = self.until.as_deref().map(parse_until).transpose()?;
        if !(1..=64).contains(&self.workers) {
            return Err(format!(
                "--workers {}: must be between 1 and 64",
                self.workers
            ));
        }
        let status_every = match self.status_every {
            Some(s) if !(0.1..=86_400.0).contains(&s) => {
                return Err(format!(
                    "--status-every {s}: must be between 0.1 and 86400 seconds"
                ));
            }
            Some(s) => Some(Duration::from_secs_f64(s)),
            None => None,
        };
        let mut config = StreamConfig::new(source, target, start);
        config.until = until;
        config.workers = self.workers;
        config.filter = TableFilter::new(&self.filters).map_err(|e| format!("--filter: {e}"))?;
        config.routes = Routes::new(&self.routes).map_err(|e| format!("--route: {e}"))?;
        config.server_id = self
            .server_id
            .unwrap_or_else(|| default_server_id(&self.task));
        config.task = self.task;
        config.meta_schema = self.meta_schema;
        config.restart = self.restart;
        config.skip_ddl_errors = self.skip_ddl_errors;
        config.compact = !self.no_compact;
        config.checkpoint_every_group = !self.bench_without_checkpoints;
        config.status_every = status_every;
        config.relay_dir = self.relay_dir;
        config.stop_timeout = Duration::from_secs(self.stop_timeout);
        config.relay_retention = Some(
            parse_duration(&self.relay_retention).map_err(|e| format!("--relay-retention: {e}"))?,
        );
        config.relay_max_bytes = self
            .relay_max_size
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(|e| format!("--relay-max-size: {e}"))?;
        let control = match self.control {
            None => None,
            Some(address) => {
                let addr: std::net::SocketAddr = address.parse().map_err(|_| {
                    format!("--control {address}: expected IP:PORT, e.g. 127.0.0.1:7300")
                })?;
                let token =
                    resolve_password(self.control_token_file.as_deref(), "SLUICE_CONTROL_TOKEN")?
                        .map(Secret::new);
                if !addr.ip().is_loopback() && token.is_none() {
                    return Err(format!(
                        "--control {address} is not a loopback address: give --control-token-file so that only holders of the token can pause or stop the stream"
                    ));
                }
                Some(ControlSetup { addr, token })
            }
        };
        Ok((config, self.json, control))
    }
}

/// Where and how the control API is served.
struct ControlSetup {
    addr: std::net::SocketAddr,
    token: Option<Secret>,
}

/// `FILE:OFFSET` or a GTID set: MariaDB sets have no `:`, MySQL ones a UUID before it.
fn parse_until(text: &str) -> Result<Until, String> {
    let looks_like_uuid = |s: &str| {
        let s = s.rsplit(',').next().unwrap_or(s).trim();
        s.len() >= 36 && s[..36].chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    };
    match text.split_once(':') {
        Some((head, _)) if !looks_like_uuid(head) => text
            .parse::<BinlogPosition>()
            .map(Until::Position)
            .map_err(|e| format!("--until: {e}")),
        _ => text
            .parse::<GtidSet>()
            .map(Until::Gtid)
            .map_err(|e| format!("--until `{text}`: neither FILE:OFFSET nor a GTID set ({e})")),
    }
}

/// A replica id from the task name, far from the small ids servers usually have.
pub(crate) fn default_server_id(task: &str) -> u32 {
    let h = task.bytes().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    });
    1_000_000 + h % 1_000_000_000
}

pub async fn run(args: StreamArgs) -> ExitCode {
    let (config, json, control) = match args.into_config() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("sluice stream: {message}");
            return ExitCode::UsageOrInput;
        }
    };
    let streamer = tokio::select! {
        s = Streamer::build(config) => s,
        signal = until_interrupted() => {
            eprintln!("sluice stream: interrupted by {signal} before streaming began");
            return ExitCode::Transient;
        }
    };
    let streamer = match streamer {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    tracing::info!(
        "streaming from {} ({})",
        streamer.start().position,
        streamer.start().gtid
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let (handle, commands_rx) = Control::new();
    let commands = Some(commands_rx);
    let signal_handle = handle.clone();
    let signals = tokio::spawn(async move {
        let signal = until_interrupted().await;
        eprintln!(
            "sluice stream: {signal}: stopping at the next transaction boundary (again to abandon the transactions being applied)"
        );
        let _ = stop_tx.send(true);
        let signal = until_interrupted().await;
        eprintln!("sluice stream: {signal} again: rolling back the transactions being applied");
        let _ = signal_handle.force_stop().await;
    });
    let mut server = None;
    if let Some(setup) = control {
        let listener = match tokio::net::TcpListener::bind(setup.addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("sluice stream: --control {}: {e}", setup.addr);
                return ExitCode::UsageOrInput;
            }
        };
        tracing::info!("control API on http://{}", setup.addr);
        server = Some(tokio::spawn(crate::control::server::serve(
            listener,
            handle,
            setup.token,
            Default::default(),
        )));
    }
    let result = streamer.run(stop_rx, commands).await;
    signals.abort();
    if let Some(s) = server {
        crate::control::server::drain(Duration::from_secs(2)).await;
        s.abort();
    }
    match result {
        Ok(summary) => {
            report(&summary, json);
            ExitCode::Success
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &sluice_streamer::StreamError) -> ExitCode {
    eprintln!("sluice stream: {e}");
    if e.is_transient() {
        ExitCode::Transient
    } else {
        ExitCode::UsageOrInput
    }
}

fn report(s: &Summary, json: bool) {
    if json {
        println!("{}", serde_json::to_string(s).unwrap_or_default());
    }
    eprintln!(
        "sluice stream: {} at {} ({}): {} transactions, {} rows, {} DDL applied in {:.2} s",
        if s.ended == "until" {
            "reached --until"
        } else {
            "stopped"
        },
        s.position,
        s.gtid,
        s.transactions,
        s.rows,
        s.ddl,
        s.seconds
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_positions_and_gtid_sets() {
        assert!(matches!(
            parse_until("mysql-bin.000002:1234"),
            Ok(Until::Position(_))
        ));
        assert!(matches!(parse_until("0-1-100"), Ok(Until::Gtid(_))));
        assert!(matches!(parse_until("0-1-100,1-2-5"), Ok(Until::Gtid(_))));
        assert!(parse_until("nonsense").is_err());
        assert!(matches!(
            parse_until("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"),
            Ok(Until::Gtid(_))
        ));
        assert_ne!(default_server_id("a"), default_server_id("b"));
        assert!(default_server_id("default") >= 1_000_000);
    }
}
