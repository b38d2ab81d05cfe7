//! What a job's dump and import phases have done so far, for `/status` and `/metrics`.
//!
//! The phases report to their observers (progress bars or log lines); [`PhaseMeter::dump`] and
//! [`PhaseMeter::import`] wrap those observers so that the same calls also count rows, bytes
//! and work units here. Counted per chunk or batch, never per row.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sluice_core::TableName;
use sluice_dumper::DumpObserver;
use sluice_importer::ImportObserver;

/// One phase's counters.
#[derive(Debug, Default)]
struct Counters {
    /// When the phase started and, once over, when it ended.
    span: Mutex<Option<(Instant, Option<Instant>)>>,
    rows: AtomicU64,
    bytes: AtomicU64,
    done: AtomicU64,
    planned: AtomicU64,
    /// Rows the phase expects in all (import: from the dump's metadata; 0 when unknown).
    expected_rows: AtomicU64,
}

impl Counters {
    fn start(&self) {
        if let Ok(mut span) = self.span.lock() {
            *span = Some((Instant::now(), None));
        }
    }

    fn finish(&self) {
        if let Ok(mut span) = self.span.lock()
            && let Some((_, end)) = span.as_mut()
        {
            *end = Some(Instant::now());
        }
    }

    fn seconds(&self) -> Option<f64> {
        let span = self.span.lock().ok()?.as_ref().copied()?;
        let end = span.1.unwrap_or_else(Instant::now);
        Some(end.duration_since(span.0).as_secs_f64())
    }

    fn get(n: &AtomicU64) -> u64 {
        n.load(Ordering::Relaxed)
    }

    fn json(&self, unit: &str) -> Option<serde_json::Value> {
        let seconds = self.seconds()?;
        let rows = Self::get(&self.rows);
        let rate = if seconds > 0.0 {
            rows as f64 / seconds
        } else {
            0.0
        };
        Some(serde_json::json!({
            "rows": rows,
            "bytes": Self::get(&self.bytes),
            format!("{unit}_done"): Self::get(&self.done),
            format!("{unit}_planned"): Self::get(&self.planned),
            "expected_rows": Self::get(&self.expected_rows),
            "seconds": seconds,
            "rows_per_second": rate,
            "finished": self.span.lock().ok().and_then(|s| s.map(|s| s.1.is_some())).unwrap_or(false),
        }))
    }

    fn metrics(&self, phase: &str, unit: &str, out: &mut String) {
        let Some(seconds) = self.seconds() else {
            return;
        };
        let rows = Self::get(&self.rows);
        let rate = if seconds > 0.0 {
            rows as f64 / seconds
        } else {
            0.0
        };
        let mut put = |name: &str, kind: &str, help: &str, value: String| {
            out.push_str(&format!(
                "# HELP sluice_{phase}_{name} {help}\n# TYPE sluice_{phase}_{name} {kind}\nsluice_{phase}_{name} {value}\n"
            ));
        };
        put(
            "rows_total",
            "counter",
            "Rows written by the phase.",
            rows.to_string(),
        );
        put(
            "bytes_total",
            "counter",
            "Bytes written to storage (dump).",
            Self::get(&self.bytes).to_string(),
        );
        put(
            &format!("{unit}_done"),
            "gauge",
            "Work units finished.",
            Self::get(&self.done).to_string(),
        );
        put(
            &format!("{unit}_planned"),
            "gauge",
            "Work units planned.",
            Self::get(&self.planned).to_string(),
        );
        put(
            "rows_per_second",
            "gauge",
            "Rows per second since the phase began.",
            format!("{rate:.1}"),
        );
        put(
            "seconds",
            "gauge",
            "Seconds the phase has run (or ran).",
            format!("{seconds:.3}"),
        );
    }
}

/// The dump's and the import's counters.
#[derive(Debug, Default)]
pub struct PhaseMeter {
    dump: Counters,
    import: Counters,
}

impl PhaseMeter {
    /// `inner`, also counting into this meter's dump counters.
    pub fn dump(self: &Arc<Self>, inner: Arc<dyn DumpObserver>) -> Arc<dyn DumpObserver> {
        self.dump.start();
        Arc::new(MeteredDump {
            inner,
            meter: self.clone(),
        })
    }

    /// `inner`, also counting into this meter's import counters.
    pub fn import(self: &Arc<Self>, inner: Arc<dyn ImportObserver>) -> Arc<dyn ImportObserver> {
        self.import.start();
        Arc::new(MeteredImport {
            inner,
            meter: self.clone(),
        })
    }

    /// `{"dump": {...}, "import": {...}}` for the phases that have begun.
    pub fn status(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        if let Some(v) = self.dump.json("chunks") {
            map.insert("dump".into(), v);
        }
        if let Some(v) = self.import.json("tables") {
            map.insert("import".into(), v);
        }
        map
    }

    /// Prometheus text for the phases that have begun.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        self.dump.metrics("dump", "chunks", &mut out);
        self.import.metrics("import", "tables", &mut out);
        out
    }
}

struct MeteredDump {
    inner: Arc<dyn DumpObserver>,
    meter: Arc<PhaseMeter>,
}

impl DumpObserver for MeteredDump {
    fn planned(&self, tables: &[(TableName, usize)]) {
        let chunks: usize = tables.iter().map(|(_, c)| c).sum();
        self.meter
            .dump
            .planned
            .fetch_add(chunks as u64, Ordering::Relaxed);
        self.inner.planned(tables);
    }

    fn chunk_started(&self, table: &TableName) {
        self.inner.chunk_started(table);
    }

    fn chunk_done(&self, table: &TableName, rows: u64, bytes: u64) {
        let c = &self.meter.dump;
        c.rows.fetch_add(rows, Ordering::Relaxed);
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
        c.done.fetch_add(1, Ordering::Relaxed);
        self.inner.chunk_done(table, rows, bytes);
    }

    fn finished(&self) {
        self.meter.dump.finish();
        self.inner.finished();
    }
}

#[derive(Debug)]
struct MeteredImport {
    inner: Arc<dyn ImportObserver>,
    meter: Arc<PhaseMeter>,
}

impl ImportObserver for MeteredImport {
    fn planned(&self, tables: &[(TableName, u64)]) {
        let c = &self.meter.import;
        c.planned.fetch_add(tables.len() as u64, Ordering::Relaxed);
        let rows: u64 = tables.iter().map(|(_, r)| r).sum();
        c.expected_rows.fetch_add(rows, Ordering::Relaxed);
        self.inner.planned(tables);
    }

    fn rows_loaded(&self, table: &TableName, rows: u64) {
        self.meter.import.rows.fetch_add(rows, Ordering::Relaxed);
        self.inner.rows_loaded(table, rows);
    }

    fn table_done(&self, table: &TableName, rows: u64) {
        self.meter.import.done.fetch_add(1, Ordering::Relaxed);
        self.inner.table_done(table, rows);
    }

    fn finished(&self) {
        self.meter.import.finish();
        self.inner.finished();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_dumper::LogObserver;

    #[test]
    fn counts_what_the_observers_hear() {
        let meter = Arc::new(PhaseMeter::default());
        assert!(meter.metrics().is_empty(), "nothing before a phase begins");
        let dump = meter.dump(Arc::new(LogObserver::default()));
        let t = TableName::new("d", "t");
        dump.planned(&[(t.clone(), 3)]);
        dump.chunk_done(&t, 100, 4096);
        dump.chunk_done(&t, 50, 1000);
        let text = meter.metrics();
        assert!(text.contains("sluice_dump_rows_total 150\n"), "{text}");
        assert!(text.contains("sluice_dump_bytes_total 5096\n"), "{text}");
        assert!(text.contains("sluice_dump_chunks_done 2\n"), "{text}");
        assert!(text.contains("sluice_dump_chunks_planned 3\n"), "{text}");
        assert!(!text.contains("sluice_import"), "{text}");
        let status = meter.status();
        assert_eq!(status["dump"]["rows"], 150);
        assert_eq!(status["dump"]["finished"], false);
        dump.finished();
        assert_eq!(meter.status()["dump"]["finished"], true);
    }
}
