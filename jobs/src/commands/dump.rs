//! `sluice dump`: the dumper's command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use sluice_core::TableFilter;
use sluice_core::layout::{Compression, CsvDialect, DataFormat};
use sluice_dumper::{Consistency, DumpConfig, DumpError, DumpObserver, Dumper, LogObserver};

use crate::ExitCode;
use crate::commands::until_interrupted;
use crate::password::endpoint_arg;
use crate::progress::DumpBars;

/// Dump databases and tables consistently to local disk or S3 (SQL, CSV or Parquet).
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// Source server: mysql://user[:password]@host:port
    #[arg(long, value_name = "URL")]
    source: String,
    /// Read the source password from this file (first line) instead of the URL.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Output: a path, file:///dir, or s3://bucket/prefix (S3 settings from AWS_* variables).
    #[arg(long, value_name = "URL")]
    output: String,
    /// Worker connections (default: number of cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Tables to dump: db.*, db.tbl, !db.tbl to exclude; * and ? glob. Repeatable.
    #[arg(long = "filter", value_name = "PATTERN")]
    filters: Vec<String>,
    /// sql, csv or parquet.
    #[arg(long, default_value = "sql")]
    format: DataFormat,
    /// none, gzip or zstd (parquet: none or zstd, applied per page).
    #[arg(long = "compress", default_value = "none")]
    compression: Compression,
    /// Target rows per chunk file.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    chunk_rows: u64,
    /// Split a chunk's output into files of about this size (before compression), e.g. 256MiB.
    #[arg(long, value_name = "SIZE")]
    file_size: Option<String>,
    /// auto, flush, lock, snapshot or none (see the README).
    #[arg(long, default_value = "auto")]
    consistency: Consistency,
    /// Longest wait for the snapshot lock, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    lock_wait: u64,
    /// CSV field delimiter (one byte).
    #[arg(long, default_value = ",", value_name = "CHAR")]
    csv_delimiter: String,
    /// CSV marker for NULL, written unquoted.
    #[arg(long, default_value = "\\N", value_name = "TEXT")]
    csv_null: String,
    /// Write a header line with the column names in CSV files.
    #[arg(long)]
    csv_header: bool,
    /// Replace the dump files in a non-empty output.
    #[arg(long)]
    overwrite: bool,
    /// Continue an unfinished dump in the output (killed, or failed): only the chunks its
    /// dump-progress.json lacks are dumped, in a new snapshot, with the same settings; a stream
    /// from the dump replays the gap in safe mode. With --overwrite, a dump that cannot be
    /// resumed (other settings, a changed table) is taken again instead of refused.
    #[arg(long)]
    resume: bool,
    /// Also dump each table's triggers (as mydumper -G; the import makes them after the rows).
    #[arg(long)]
    triggers: bool,
    /// Also dump each database's functions and procedures (as mydumper -R).
    #[arg(long)]
    routines: bool,
    /// Also dump each database's events (as mydumper -E).
    #[arg(long)]
    events: bool,
    /// Print one JSON summary line at the end.
    #[arg(long)]
    json: bool,
}

impl DumpArgs {
    fn into_config(self) -> Result<(DumpConfig, bool), String> {
        let source = endpoint_arg(
            &self.source,
            "source",
            self.password_file.as_deref(),
            "SLUICE_SOURCE_PASSWORD",
        )?;
        let delimiter = match self.csv_delimiter.as_bytes() {
            [b] => *b,
            b"\\t" => b'\t',
            _ => {
                return Err(format!(
                    "--csv-delimiter `{}`: must be one byte",
                    self.csv_delimiter
                ));
            }
        };
        let filter = TableFilter::new(&self.filters).map_err(|e| format!("--filter: {e}"))?;
        let mut config = DumpConfig::new(source, self.output);
        if let Some(t) = self.threads {
            config.threads = t;
        }
        config.filter = filter;
        config.format = self.format;
        config.compression = self.compression;
        config.chunk_rows = self.chunk_rows;
        if let Some(size) = &self.file_size {
            let bytes =
                sluice_importer::parse_size(size).map_err(|e| format!("--file-size: {e}"))?;
            config.file_size = Some(bytes as u64);
        }
        config.consistency = self.consistency;
        config.lock_wait_secs = self.lock_wait;
        config.csv = CsvDialect {
            delimiter,
            null: self.csv_null,
            header: self.csv_header,
            ..CsvDialect::default()
        };
        config.overwrite = self.overwrite;
        config.resume = self.resume;
        config.triggers = self.triggers;
        config.routines = self.routines;
        config.events = self.events;
        Ok((config, self.json))
    }
}

pub async fn run(args: DumpArgs) -> ExitCode {
    let (config, json) = match args.into_config() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("sluice dump: {message}");
            return ExitCode::UsageOrInput;
        }
    };
    let output = config.output.clone();
    let observer: Arc<dyn DumpObserver> = if !json && std::io::stderr().is_terminal() {
        Arc::new(DumpBars::new())
    } else {
        Arc::new(LogObserver::default())
    };
    let work = async {
        let dumper = Dumper::build(config).await?;
        dumper.run(observer).await
    };
    let result = tokio::select! {
        r = work => r,
        signal = until_interrupted() => {
            eprintln!("sluice dump: interrupted by {signal}; {output} is incomplete (no metadata.json was written)");
            return ExitCode::Transient;
        }
    };
    match result {
        Ok(summary) => {
            if json {
                println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            } else {
                let position = match (&summary.binlog_file, summary.binlog_offset) {
                    (Some(f), Some(o)) => format!(
                        "{f}:{o} (GTID {})",
                        summary.gtid_set.as_deref().unwrap_or("")
                    ),
                    _ => "none".to_owned(),
                };
                eprintln!(
                    "sluice dump: {} tables, {} rows, {} chunks, {} bytes in {:.2} s to {}; snapshot {} at {}",
                    summary.tables,
                    summary.rows,
                    summary.chunks,
                    summary.bytes,
                    summary.seconds,
                    summary.output,
                    summary.consistency,
                    position
                );
            }
            ExitCode::Success
        }
        Err(e) => {
            eprintln!("sluice dump: {e}");
            if is_transient(&e) {
                ExitCode::Transient
            } else {
                ExitCode::UsageOrInput
            }
        }
    }
}

fn is_transient(e: &DumpError) -> bool {
    e.is_transient()
}
