//! `sluice relay`: pull a source's binlog into a relay log folder until stopped, so that the
//! streams reading it (`sluice stream --relay-dir`) survive a purge on the source and share
//! one binlog connection.

use std::path::PathBuf;

use sluice_streamer::relay::PullerConfig;
use sluice_streamer::{StartPoint, run_relay};
use tokio::sync::watch;

use crate::ExitCode;
use crate::commands::stream::default_server_id;
use crate::commands::until_interrupted;
use crate::job::file::{parse_duration, parse_size};
use crate::password::endpoint_arg;

/// Pull a source's binlog into a relay log folder (read by `sluice stream --relay-dir`).
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Source server (binlog on, ROW, FULL images): mysql://user[:password]@host:port
    #[arg(long, value_name = "URL")]
    source: String,
    /// Read the source password from this file (else SLUICE_SOURCE_PASSWORD or the URL).
    #[arg(long, value_name = "FILE")]
    source_password_file: Option<PathBuf>,
    /// The relay folder (one sub-folder per source).
    #[arg(long, value_name = "DIR")]
    relay_dir: PathBuf,
    /// Where an empty relay starts: the snapshot position of this Sluice dump.
    #[arg(long, value_name = "URL", group = "start")]
    from_dump: Option<String>,
    /// Where an empty relay starts: this binlog position.
    #[arg(long, value_name = "FILE:OFFSET", group = "start")]
    from: Option<String>,
    /// Where an empty relay starts: after this GTID set (MariaDB).
    #[arg(long, value_name = "SET", group = "start")]
    from_gtid: Option<String>,
    /// The replica id to register with (default derived from the relay folder).
    #[arg(long, value_name = "ID")]
    server_id: Option<u32>,
    /// Purge segments older than this once no task needs them.
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    retention: String,
    /// Keep the relay below this size, oldest segments first, never one a task needs.
    #[arg(long, value_name = "SIZE")]
    max_size: Option<String>,
}

pub async fn run(args: RelayArgs) -> ExitCode {
    let parsed = (|| -> Result<(PullerConfig, StartPoint), String> {
        let source = endpoint_arg(
            &args.source,
            "source",
            args.source_password_file.as_deref(),
            "SLUICE_SOURCE_PASSWORD",
        )?;
        let start = if let Some(url) = &args.from_dump {
            StartPoint::Dump(url.clone())
        } else if let Some(p) = &args.from {
            StartPoint::Position(p.parse().map_err(|e| format!("--from: {e}"))?)
        } else if let Some(g) = &args.from_gtid {
            StartPoint::Gtid(g.parse().map_err(|e| format!("--from-gtid: {e}"))?)
        } else {
            StartPoint::Checkpoint
        };
        let server_id = args
            .server_id
            .unwrap_or_else(|| default_server_id(&format!("relay {}", args.relay_dir.display())));
        let mut cfg = PullerConfig::new(source, sluice_core::Flavor::MariaDb, server_id);
        cfg.retention =
            Some(parse_duration(&args.retention).map_err(|e| format!("--retention: {e}"))?);
        cfg.max_bytes = args
            .max_size
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(|e| format!("--max-size: {e}"))?;
        Ok((cfg, start))
    })();
    let (cfg, start) = match parsed {
        Ok(p) => p,
        Err(message) => {
            eprintln!("sluice relay: {message}");
            return ExitCode::UsageOrInput;
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let signals = tokio::spawn(async move {
        let signal = until_interrupted().await;
        eprintln!("sluice relay: {signal}: stopping");
        let _ = stop_tx.send(true);
    });
    let result = run_relay(cfg, &args.relay_dir, &start, stop_rx).await;
    signals.abort();
    match result {
        Ok(()) => ExitCode::Success,
        Err(e) => {
            eprintln!("sluice relay: {e}");
            if e.is_transient() {
                ExitCode::Transient
            } else {
                ExitCode::UsageOrInput
            }
        }
    }
}
