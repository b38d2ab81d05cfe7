//! `sluice checksum`: the checker's command line.

use std::path::PathBuf;
use std::time::Duration;

use sluice_checksum::{Checker, ChecksumConfig, DifferenceKind, Report, SyncHandle};
use sluice_core::{Routes, TableFilter};

use crate::ExitCode;
use crate::commands::until_interrupted;
use crate::control::ControlClient;
use crate::password::{endpoint_arg, resolve_password};

/// Compare source and target chunk by chunk and locate differing rows.
#[derive(Debug, clap::Args)]
pub struct ChecksumArgs {
    /// Source server (only read): mysql://user[:password]@host:port
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
    /// Tables to check: db.*, db.tbl, !db.tbl; * and ? glob. Repeatable.
    #[arg(long = "filter", value_name = "PATTERN")]
    filters: Vec<String>,
    /// Target names for source tables: FROM=TO, as in shop=shop_v2 (a database),
    /// shop.orders=archive.orders_2026 (one table), shop.*=archive (names kept). First match
    /// wins; repeatable. Merging two tables into one is refused.
    #[arg(long = "route", value_name = "FROM=TO")]
    routes: Vec<String>,
    /// Rows per chunk.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    chunk_rows: u64,
    /// Chunks compared at once (default: number of cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Cap on rows checked per second.
    #[arg(long, value_name = "ROWS_PER_SEC")]
    max_load: Option<u64>,
    /// Pause while the source's Threads_running is above this.
    #[arg(long, value_name = "N")]
    max_threads_running: Option<u64>,
    /// Times a mismatching chunk is compared again before it counts.
    #[arg(long, default_value_t = 3, value_name = "N")]
    rechecks: u32,
    /// Seconds to wait before each recheck.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    recheck_delay: f64,
    /// Write the statements that repair the target to this file.
    #[arg(long, value_name = "FILE")]
    fix_sql: Option<PathBuf>,
    /// Execute the repair statements on the target.
    #[arg(long)]
    apply_fix: bool,
    /// Online mode: compare every chunk at a sync point of the stream serving its control API
    /// here (http://HOST:PORT, its --control); differences are then real, with no rechecks.
    #[arg(long, value_name = "URL")]
    sync_with: Option<String>,
    /// The stream's control token, from this file (else SLUICE_CONTROL_TOKEN).
    #[arg(long, value_name = "FILE")]
    sync_token_file: Option<PathBuf>,
    /// Print the whole report as one JSON line.
    #[arg(long)]
    json: bool,
}

impl ChecksumArgs {
    fn into_config(self) -> Result<(ChecksumConfig, bool), String> {
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
        if !(0.0..=3600.0).contains(&self.recheck_delay) {
            return Err(format!(
                "--recheck-delay {}: must be between 0 and 3600 seconds",
                self.recheck_delay
            ));
        }
        if self.chunk_rows == 0 {
            return Err("--chunk-rows must be at least 1".to_owned());
        }
        let mut config = ChecksumConfig::new(source, target);
        config.filter = TableFilter::new(&self.filters).map_err(|e| format!("--filter: {e}"))?;
        config.routes = Routes::new(&self.routes).map_err(|e| format!("--route: {e}"))?;
        config.chunk_rows = self.chunk_rows;
        if let Some(t) = self.threads {
            config.threads = t.max(1);
        }
        config.max_rows_per_sec = self.max_load;
        config.max_threads_running = self.max_threads_running;
        config.rechecks = self.rechecks;
        config.recheck_delay = Duration::from_secs_f64(self.recheck_delay);
        config.fix_sql = self.fix_sql;
        if let Some(url) = &self.sync_with {
            let token = resolve_password(self.sync_token_file.as_deref(), "SLUICE_CONTROL_TOKEN")?;
            let client = ControlClient::new(url, token)
                .map_err(|e| e.replace("--control", "--sync-with"))?;
            config.sync = Some(SyncHandle(std::sync::Arc::new(client)));
        }
        config.apply_fix = self.apply_fix;
        Ok((config, self.json))
    }
}

pub async fn run(args: ChecksumArgs) -> ExitCode {
    let (config, json) = match args.into_config() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("sluice checksum: {message}");
            return ExitCode::UsageOrInput;
        }
    };
    let work = async {
        let checker = Checker::build(config).await?;
        checker.run().await
    };
    let result = tokio::select! {
        r = work => r,
        signal = until_interrupted() => {
            eprintln!("sluice checksum: interrupted by {signal}; nothing was concluded");
            return ExitCode::Transient;
        }
    };
    match result {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            } else {
                print_report(&report);
            }
            if report.is_equal() {
                ExitCode::Success
            } else {
                ExitCode::Differences
            }
        }
        Err(e) => {
            eprintln!("sluice checksum: {e}");
            if e.is_transient() {
                ExitCode::Transient
            } else {
                ExitCode::UsageOrInput
            }
        }
    }
}

fn print_report(report: &Report) {
    for t in &report.tables {
        if t.missing_on_target {
            println!(
                "DIFF  {}: missing on the target ({} rows on the source)",
                t.table, t.source_rows
            );
            continue;
        }
        let state = if t.is_equal() { "OK  " } else { "DIFF" };
        println!(
            "{state}  {}: {} rows, {} chunks (target {} rows)",
            t.table, t.source_rows, t.chunks, t.target_rows
        );
        for d in &t.differences {
            let what = match &d.kind {
                DifferenceKind::MissingOnTarget => "missing on target".to_owned(),
                DifferenceKind::ExtraOnTarget => "extra on target".to_owned(),
                DifferenceKind::Changed { columns } => format!("differs in {}", columns.join(", ")),
            };
            println!("      {}: {what}", d.key);
        }
        if t.truncated {
            println!("      … more differing rows not listed");
        }
    }
    let verdict = if report.is_equal() {
        "equal"
    } else {
        "DIFFERENT"
    };
    eprintln!(
        "sluice checksum: {verdict}: {} rows in {} chunks checked in {:.2} s; {} fix statements{}",
        report.rows,
        report.chunks,
        report.seconds,
        report.fix_statements,
        if report.fix_applied {
            " applied to the target"
        } else {
            ""
        }
    );
}
