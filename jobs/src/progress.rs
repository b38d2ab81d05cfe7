//! Progress bars for a terminal: one for the whole dump (chunks, rows, bytes, rate, ETA) and one
//! per table while it is being read. Off a terminal the stages' log lines are used instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sluice_core::TableName;
use sluice_dumper::DumpObserver;
use sluice_importer::ImportObserver;

#[derive(Debug)]
pub struct DumpBars {
    multi: MultiProgress,
    total: ProgressBar,
    chunks_per_table: Mutex<HashMap<TableName, usize>>,
    tables: Mutex<HashMap<TableName, ProgressBar>>,
    started: Instant,
    rows: AtomicU64,
    bytes: AtomicU64,
}

impl DumpBars {
    pub fn new() -> DumpBars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(5));
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {pos}/{len} chunks  {msg}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        total.enable_steady_tick(Duration::from_millis(200));
        DumpBars {
            multi,
            total,
            chunks_per_table: Mutex::new(HashMap::new()),
            tables: Mutex::new(HashMap::new()),
            started: Instant::now(),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }
}

impl DumpObserver for DumpBars {
    fn planned(&self, tables: &[(TableName, usize)]) {
        self.total
            .set_length(tables.iter().map(|(_, c)| *c as u64).sum());
        if let Ok(mut map) = self.chunks_per_table.lock() {
            map.extend(tables.iter().cloned());
        }
    }

    fn chunk_started(&self, table: &TableName) {
        let Ok(mut bars) = self.tables.lock() else {
            return;
        };
        if bars.contains_key(table) {
            return;
        }
        let len = self
            .chunks_per_table
            .lock()
            .ok()
            .and_then(|m| m.get(table).copied())
            .unwrap_or(1);
        let bar = self.multi.add(ProgressBar::new(len as u64));
        bar.set_style(
            ProgressStyle::with_template("  {prefix:30!} [{bar:30}] {pos}/{len} chunks  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(table.plain());
        bars.insert(table.clone(), bar);
    }

    fn chunk_done(&self, table: &TableName, rows: u64, bytes: u64) {
        let total_rows = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let total_bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let rate = total_rows as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        self.total.inc(1);
        self.total.set_message(format!(
            "{total_rows} rows, {:.1} MB, {rate:.0} rows/s",
            total_bytes as f64 / 1e6
        ));
        if let Ok(bars) = self.tables.lock()
            && let Some(bar) = bars.get(table)
        {
            bar.inc(1);
            if bar.position() >= bar.length().unwrap_or(0) {
                bar.finish_and_clear();
            }
        }
    }

    fn finished(&self) {
        self.total.finish_and_clear();
    }
}

/// One bar for an import: rows loaded (against the dump's row counts when it has them),
/// tables done, rate and ETA.
#[derive(Debug)]
pub struct ImportBars {
    bar: ProgressBar,
    started: Instant,
    tables: AtomicU64,
    total_tables: AtomicU64,
}

impl ImportBars {
    pub fn new() -> ImportBars {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(5));
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} rows  {msg}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        ImportBars {
            bar,
            started: Instant::now(),
            tables: AtomicU64::new(0),
            total_tables: AtomicU64::new(0),
        }
    }
}

impl ImportObserver for ImportBars {
    fn planned(&self, tables: &[(TableName, u64)]) {
        self.total_tables
            .store(tables.len() as u64, Ordering::Relaxed);
        self.bar.set_length(tables.iter().map(|(_, r)| r).sum());
    }

    fn rows_loaded(&self, _table: &TableName, rows: u64) {
        self.bar.inc(rows);
        if self.bar.position() > self.bar.length().unwrap_or(0) {
            self.bar.set_length(self.bar.position());
        }
        let rate = self.bar.position() as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        self.bar.set_message(format!(
            "{}/{} tables, {rate:.0} rows/s",
            self.tables.load(Ordering::Relaxed),
            self.total_tables.load(Ordering::Relaxed)
        ));
    }

    fn table_done(&self, _table: &TableName, _rows: u64) {
        self.tables.fetch_add(1, Ordering::Relaxed);
    }

    fn finished(&self) {
        self.bar.finish_and_clear();
    }
}
