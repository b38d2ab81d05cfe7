//! `sluice import`: the importer's command line.

use std::path::PathBuf;

use sluice_core::layout::CsvDialect;
use sluice_core::{Routes, TableFilter};
use sluice_importer::{
    DeferIndexes, ImportConfig, Importer, LoadMethod, OnDuplicate, parse_size,
    restore_target_settings,
};

use crate::ExitCode;
use crate::commands::until_interrupted;
use crate::password::endpoint_arg;
use crate::progress::ImportBars;
use std::io::IsTerminal;

/// Bulk-import a dump (Sluice, Dumpling, mydumper) in primary-key order.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The dump: a path, file:///dir, s3://bucket/prefix, or one .sql file (mysqldump).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "restore_target_settings"
    )]
    input: Option<String>,
    /// Target server: mysql://user[:password]@host:port
    #[arg(long, value_name = "URL")]
    target: String,
    /// Read the target password from this file (else SLUICE_TARGET_PASSWORD or the URL).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Files parsed at once and loader connections (default: number of cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Local folder for sorted runs that do not fit in memory.
    #[arg(long, value_name = "DIR")]
    sort_dir: Option<PathBuf>,
    /// Memory for sorting before runs spill, e.g. 512MiB or 2GiB.
    #[arg(long, default_value = "512MiB", value_name = "SIZE")]
    sort_memory: String,
    /// error, replace or ignore.
    #[arg(long, default_value = "error")]
    on_duplicate: OnDuplicate,
    /// Secondary indexes created after the data: auto (plain KEY/INDEX ones, in tables
    /// without foreign keys), all, or none; a bare --defer-indexes means all.
    #[arg(long, default_value = "auto", num_args = 0..=1, default_missing_value = "all")]
    defer_indexes: DeferIndexes,
    /// Load into existing tables; create nothing.
    #[arg(long)]
    no_schema: bool,
    /// Continue from the checkpoints of an earlier run (the default when they exist).
    #[arg(long, conflicts_with = "restart")]
    resume: bool,
    /// Ignore earlier checkpoints and load everything again.
    #[arg(long)]
    restart: bool,
    /// Tables to import: db.*, db.tbl, !db.tbl; * and ? glob. Repeatable.
    #[arg(long = "filter", value_name = "PATTERN")]
    filters: Vec<String>,
    /// Target names for source tables: FROM=TO, as in shop=shop_v2 (a database),
    /// shop.orders=archive.orders_2026 (one table), shop.*=archive (names kept). First match
    /// wins; repeatable. Merging two tables into one is refused.
    #[arg(long = "route", value_name = "FROM=TO")]
    routes: Vec<String>,
    /// CSV of a Dumpling or mydumper folder: field delimiter (one byte; `\t` for tab).
    #[arg(long, value_name = "CHAR")]
    csv_delimiter: Option<String>,
    /// CSV: the unquoted marker for NULL.
    #[arg(long, value_name = "TEXT")]
    csv_null: Option<String>,
    /// CSV: whether the first line names the columns (true, false).
    #[arg(long, value_name = "BOOL")]
    csv_header: Option<bool>,
    /// CSV: backslash escapes (\n, \t, \0, \N) inside fields (true, the default for Dumpling and
    /// mydumper folders as in Lightning, or false).
    #[arg(long, value_name = "BOOL")]
    csv_backslash_escape: Option<bool>,
    /// Raise the target's redo log settings during the import (innodb_flush_log_at_trx_commit=2,
    /// innodb_log_file_size >= 2GiB) and restore them afterwards; needs the privilege to SET
    /// GLOBAL (else a warning and a normal import).
    #[arg(long)]
    import_mode: bool,
    /// How rows go to the target: auto (MariaDB's bulk execution of a prepared INSERT when the
    /// target is MariaDB, LOAD DATA LOCAL INFILE for MySQL and for a table with a row too big
    /// for one bulk execution), bulk-insert (MariaDB only; such a row fails) or load-data.
    #[arg(long, default_value = "auto", value_name = "METHOD")]
    load_method: LoadMethod,
    /// Only restore target settings that an interrupted --import-mode run left changed.
    #[arg(long)]
    restore_target_settings: bool,
    /// Print one JSON summary line at the end.
    #[arg(long)]
    json: bool,
}

impl ImportArgs {
    fn into_config(self) -> Result<(ImportConfig, bool), String> {
        let target = endpoint_arg(
            &self.target,
            "target",
            self.password_file.as_deref(),
            "SLUICE_TARGET_PASSWORD",
        )?;
        let mut config = ImportConfig::new(self.input.unwrap_or_default(), target);
        config.import_mode = self.import_mode;
        if let Some(t) = self.threads {
            config.threads = t.max(1);
        }
        if let Some(d) = self.sort_dir {
            config.sort_dir = d;
        }
        config.sort_memory =
            parse_size(&self.sort_memory).map_err(|e| format!("--sort-memory: {e}"))?;
        config.on_duplicate = self.on_duplicate;
        config.defer_indexes = self.defer_indexes;
        config.load_method = self.load_method;
        config.no_schema = self.no_schema;
        config.restart = self.restart;
        config.filter = TableFilter::new(&self.filters).map_err(|e| format!("--filter: {e}"))?;
        config.routes = Routes::new(&self.routes).map_err(|e| format!("--route: {e}"))?;
        if self.csv_delimiter.is_some()
            || self.csv_null.is_some()
            || self.csv_header.is_some()
            || self.csv_backslash_escape.is_some()
        {
            let mut dialect = CsvDialect {
                header: true,
                escape: Some(b'\\'),
                ..CsvDialect::default()
            };
            if let Some(d) = &self.csv_delimiter {
                dialect.delimiter = match d.as_bytes() {
                    [b] => *b,
                    b"\\t" => b'\t',
                    _ => return Err(format!("--csv-delimiter `{d}`: must be one byte")),
                };
            }
            if let Some(n) = self.csv_null {
                dialect.null = n;
            }
            if let Some(h) = self.csv_header {
                dialect.header = h;
            }
            if let Some(e) = self.csv_backslash_escape {
                dialect.escape = e.then_some(b'\\');
            }
            dialect.validate().map_err(|e| format!("--csv-*: {e}"))?;
            config.csv = Some(dialect);
        }
        Ok((config, self.json))
    }
}

pub async fn run(args: ImportArgs) -> ExitCode {
    let restore_only = args.restore_target_settings;
    let (config, json) = match args.into_config() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("sluice import: {message}");
            return ExitCode::UsageOrInput;
        }
    };
    if restore_only {
        return match restore_target_settings(&config.target, &config.meta_schema).await {
            Ok(n) => {
                eprintln!("sluice import: {n} target settings restored");
                ExitCode::Success
            }
            Err(e) => {
                eprintln!("sluice import: {e}");
                if e.is_transient() {
                    ExitCode::Transient
                } else {
                    ExitCode::UsageOrInput
                }
            }
        };
    }
    let mut config = config;
    if !json && std::io::stderr().is_terminal() {
        config.observer = std::sync::Arc::new(ImportBars::new());
    }
    let (target, meta_schema) = (config.target.clone(), config.meta_schema.clone());
    let work = async {
        let importer = Importer::build(config).await?;
        importer.run().await
    };
    let result = tokio::select! {
        r = work => r,
        signal = until_interrupted() => {
            // Whatever --import-mode changed goes back now, not only at the next run.
            let _ = restore_target_settings(&target, &meta_schema).await;
            eprintln!("sluice import: interrupted by {signal}; finished tables are checkpointed, run the same command to continue");
            return ExitCode::Transient;
        }
    };
    match result {
        Ok(summary) => {
            if json {
                println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            } else {
                eprintln!(
                    "sluice import: {} tables ({} done earlier), {} rows in {:.2} s from a {} dump; {} duplicates dropped, {} sort runs spilled; {} tables loaded by bulk INSERT, the rest by LOAD DATA; {} views",
                    summary.tables,
                    summary.tables_skipped,
                    summary.rows,
                    summary.seconds,
                    summary.layout,
                    summary.duplicates_dropped,
                    summary.sort_runs_spilled,
                    summary.tables_bulk_inserted,
                    summary.views
                );
            }
            ExitCode::Success
        }
        Err(e) => {
            eprintln!("sluice import: {e}");
            match e {
                sluice_importer::ImportError::Verification { .. } => ExitCode::Differences,
                e if e.is_transient() => ExitCode::Transient,
                _ => ExitCode::UsageOrInput,
            }
        }
    }
}
