//! Resuming an unfinished dump.
//!
//! While a dump runs it keeps `dump-progress.json` in the output: the settings, the tables with
//! their `SHOW CREATE TABLE`, the chunk plan, and every finished chunk with the snapshot it was
//! read in. The file is rewritten at most every [`SAVE_EVERY`] as chunks finish; a chunk is
//! listed only after its file is committed, so a kill at any moment loses at most the chunks
//! finished since the last save, which a resume dumps again (same file names: they are
//! replaced).
//!
//! `sluice dump --resume` (and a rerun job) opens a new snapshot and dumps only the chunks not
//! listed, by the same key ranges. The dump then holds chunks of several snapshots; why that is
//! still exact for a streamer is in `sluice_core::layout::metadata`. A resume is refused when
//! its premise fails: other settings (format, filter, …), a table gone or changed (its
//! `SHOW CREATE TABLE` apart from the AUTO_INCREMENT counter), or a first snapshot with a
//! binlog position and a new one without. Tables created since the first snapshot are not
//! dumped: a stream from the first snapshot creates them from the binlog.

use std::time::Duration;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};
use sluice_core::layout::{Compression, CsvDialect, DataFormat, PROGRESS_FILE, SnapshotMeta};
use sluice_core::{Chunk, Endpoint, Selection, Storage, TableInfo, TableName};

use crate::{DumpConfig, DumpError};

/// How often the progress file is rewritten while chunks finish.
pub const SAVE_EVERY: Duration = Duration::from_millis(500);
/// Version 2: chunk fingerprints are `FingerprintVersion::V2`, as in metadata version 2.
const PROGRESS_VERSION: u32 = 2;

/// The settings a resume must share with the run it continues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub source: String,
    pub filter: Vec<String>,
    pub format: DataFormat,
    pub compression: Compression,
    pub csv: Option<CsvDialect>,
    pub chunk_rows: u64,
    #[serde(default)]
    pub file_size: Option<u64>,
}

impl Settings {
    pub fn of(config: &DumpConfig) -> Settings {
        Settings {
            source: config.source.to_string(),
            filter: config.filter.patterns().to_vec(),
            format: config.format,
            compression: config.compression,
            csv: (config.format == DataFormat::Csv).then(|| config.csv.clone()),
            chunk_rows: config.chunk_rows,
            file_size: config.file_size,
        }
    }

    /// The first setting that differs, as `what: was → now`.
    fn difference(&self, now: &Settings) -> Option<String> {
        let pairs = [
            ("source", self.source.clone(), now.source.clone()),
            (
                "filter",
                format!("{:?}", self.filter),
                format!("{:?}", now.filter),
            ),
            (
                "format",
                format!("{:?}", self.format),
                format!("{:?}", now.format),
            ),
            (
                "compression",
                format!("{:?}", self.compression),
                format!("{:?}", now.compression),
            ),
            (
                "csv dialect",
                format!("{:?}", self.csv),
                format!("{:?}", now.csv),
            ),
            (
                "chunk rows",
                self.chunk_rows.to_string(),
                now.chunk_rows.to_string(),
            ),
            (
                "file size",
                size_text(self.file_size),
                size_text(now.file_size),
            ),
        ];
        pairs
            .into_iter()
            .find(|(_, was, now)| was != now)
            .map(|(what, was, now)| format!("{what} was {was}, now {now}"))
    }
}

fn size_text(bytes: Option<u64>) -> String {
    bytes.map_or("none".to_owned(), |b| format!("{b} bytes"))
}

/// One finished chunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkDone {
    /// Index of the table in the dump's table list.
    pub table: usize,
    pub index: u32,
    /// `None` when the range held no rows (no file is written for it).
    pub file: Option<String>,
    pub range: String,
    pub rows: u64,
    pub bytes: u64,
    /// [`sluice_core::layout::RowFingerprint`] as hex.
    pub fingerprint: String,
    /// The snapshot it was read in (0 = the dump's first).
    pub snapshot: u32,
    /// With `--file-size`: the chunk's files after the first (`file`, `rows`, `bytes` and
    /// `fingerprint` above describe the first), in key order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartDone>,
}

/// One more file of a chunk that `--file-size` split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartDone {
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkProgress {
    pub index: u32,
    pub predicate: Option<String>,
    pub done: Option<ChunkDone>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableProgress {
    pub database: String,
    pub table: String,
    /// `SHOW CREATE TABLE` without the AUTO_INCREMENT counter.
    pub create: String,
    pub columns: Vec<String>,
    pub primary_key: Vec<String>,
    pub chunks: Vec<ChunkProgress>,
}

impl TableProgress {
    pub fn name(&self) -> TableName {
        TableName::new(&self.database, &self.table)
    }
}

/// The content of `dump-progress.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DumpProgress {
    pub version: u32,
    pub settings: Settings,
    /// How the first snapshot was taken.
    pub consistency: String,
    /// Unix seconds when the first run started.
    pub started_at: u64,
    /// Snapshot n's binlog position (`None` when the source had none to give).
    pub snapshots: Vec<Option<SnapshotMeta>>,
    pub tables: Vec<TableProgress>,
}

impl DumpProgress {
    /// A fresh dump's plan: every chunk still to do.
    pub fn new(
        settings: Settings,
        consistency: String,
        started_at: u64,
        position: Option<SnapshotMeta>,
        tables: &[TableInfo],
        creates: &[String],
        chunks: &[Chunk],
    ) -> DumpProgress {
        let mut tables: Vec<TableProgress> = tables
            .iter()
            .zip(creates)
            .map(|(t, create)| TableProgress {
                database: t.name.database.clone(),
                table: t.name.table.clone(),
                create: without_auto_increment(create),
                columns: t.column_names(),
                primary_key: t.key_columns().iter().map(|c| c.name.clone()).collect(),
                chunks: Vec::new(),
            })
            .collect();
        for c in chunks {
            tables[c.table].chunks.push(ChunkProgress {
                index: c.index,
                predicate: c.predicate.clone(),
                done: None,
            });
        }
        DumpProgress {
            version: PROGRESS_VERSION,
            settings,
            consistency,
            started_at,
            snapshots: vec![position],
            tables,
        }
    }

    /// The chunks not finished yet, in plan order.
    pub fn pending(&self) -> Vec<Chunk> {
        self.tables
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                t.chunks
                    .iter()
                    .filter(|c| c.done.is_none())
                    .map(move |c| Chunk {
                        table: i,
                        index: c.index,
                        predicate: c.predicate.clone(),
                    })
            })
            .collect()
    }

    pub fn chunk_count(&self) -> usize {
        self.tables.iter().map(|t| t.chunks.len()).sum()
    }

    /// The snapshot new chunks are read in.
    pub fn current_snapshot(&self) -> u32 {
        self.snapshots.len().saturating_sub(1) as u32
    }

    pub fn record(&mut self, done: ChunkDone) {
        if let Some(t) = self.tables.get_mut(done.table)
            && let Some(c) = t.chunks.iter_mut().find(|c| c.index == done.index)
        {
            c.done = Some(done);
        }
    }

    pub async fn save(&self, storage: &Storage) -> Result<(), DumpError> {
        let json = serde_json::to_vec(self).map_err(|e| DumpError::Worker(e.to_string()))?;
        storage.put(PROGRESS_FILE, json).await?;
        Ok(())
    }

    /// The unfinished dump's progress in `storage`, if there is one that can be resumed with
    /// `config`. A differing setting is an error unless `config.overwrite` allows a fresh start.
    pub async fn load(
        storage: &Storage,
        config: &DumpConfig,
    ) -> Result<Option<DumpProgress>, DumpError> {
        let Some(bytes) = storage.get_if_exists(PROGRESS_FILE).await? else {
            return Ok(None);
        };
        let refuse = |reason: String| -> Result<Option<DumpProgress>, DumpError> {
            if config.overwrite {
                tracing::warn!(
                    "{}/{PROGRESS_FILE}: cannot resume ({reason}); dumping everything again",
                    storage.url()
                );
                Ok(None)
            } else {
                Err(DumpError::CannotResume {
                    url: storage.url().to_owned(),
                    reason,
                })
            }
        };
        let progress: DumpProgress = match serde_json::from_slice(&bytes) {
            Ok(p) => p,
            Err(e) => return refuse(format!("{PROGRESS_FILE} does not parse: {e}")),
        };
        if progress.version != PROGRESS_VERSION {
            return refuse(format!(
                "{PROGRESS_FILE} has version {}; this Sluice writes {PROGRESS_VERSION}",
                progress.version
            ));
        }
        if let Some(diff) = progress.settings.difference(&Settings::of(config)) {
            return refuse(format!("it was started with other settings: {diff}"));
        }
        if progress
            .tables
            .iter()
            .all(|t| t.chunks.iter().all(|c| c.done.is_none()))
        {
            // Nothing to keep: a fresh dump is the same work with a simpler metadata.json.
            return Ok(None);
        }
        Ok(Some(progress))
    }

    /// Why the remaining chunks cannot be read in the snapshot `conn` stands in, if they
    /// cannot: a table gone or changed, or a position lost.
    pub async fn obstacle(
        &self,
        conn: &mut Conn,
        endpoint: &Endpoint,
        selection: &Selection,
        has_position: bool,
    ) -> Result<Option<String>, DumpError> {
        if self.snapshots.first().is_some_and(Option::is_some) && !has_position {
            return Ok(Some(
                "the new snapshot has no binlog position to stream from".into(),
            ));
        }
        for t in &self.tables {
            let name = t.name();
            if !selection.tables.iter().any(|s| s.name == name) {
                return Ok(Some(format!(
                    "table {} is gone or no longer selected",
                    name.plain()
                )));
            }
            let row: Option<(String, String)> = conn
                .query_first(format!("SHOW CREATE TABLE {name}"))
                .await
                .map_err(|e| endpoint.error(format!("SHOW CREATE TABLE {}", name.plain()), e))?;
            let create = row.map(|(_, sql)| sql).unwrap_or_default();
            if without_auto_increment(&create) != t.create {
                return Ok(Some(format!("the definition of {} changed", name.plain())));
            }
        }
        Ok(None)
    }

    /// The current definitions of the progress's tables, in its order.
    pub fn table_infos(&self, selection: &Selection) -> Vec<TableInfo> {
        self.tables
            .iter()
            .filter_map(|t| {
                let name = t.name();
                selection.tables.iter().find(|s| s.name == name).cloned()
            })
            .collect()
    }
}

/// `SHOW CREATE TABLE` text without ` AUTO_INCREMENT=N`, which moves with every insert.
pub fn without_auto_increment(create: &str) -> String {
    const OPTION: &str = " AUTO_INCREMENT=";
    let mut out = String::with_capacity(create.len());
    let mut rest = create;
    while let Some(at) = rest.find(OPTION) {
        let after = &rest[at + OPTION.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            out.push_str(&rest[..at + OPTION.len()]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..at]);
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auto_increment_counter_is_not_part_of_a_definition() {
        let a = "CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=1001 DEFAULT CHARSET=utf8mb4";
        let b = a.replace("AUTO_INCREMENT=1001", "AUTO_INCREMENT=77");
        assert_eq!(without_auto_increment(a), without_auto_increment(&b));
        assert!(without_auto_increment(a).contains("NOT NULL AUTO_INCREMENT,"));
        assert!(!without_auto_increment(a).contains("1001"));
        let c = a.replace("int NOT NULL", "bigint NOT NULL");
        assert_ne!(without_auto_increment(a), without_auto_increment(&c));
    }

    #[test]
    fn settings_name_what_differs() {
        let mut a = Settings {
            source: "mysql://root@127.0.0.1:1".into(),
            filter: vec!["db.*".into()],
            format: DataFormat::Sql,
            compression: Compression::None,
            csv: None,
            chunk_rows: 100,
            file_size: None,
        };
        let b = a.clone();
        assert_eq!(a.difference(&b), None);
        a.chunk_rows = 5;
        assert_eq!(
            a.difference(&b).as_deref(),
            Some("chunk rows was 5, now 100")
        );
        a.chunk_rows = 100;
        a.file_size = Some(1 << 20);
        assert_eq!(
            a.difference(&b).as_deref(),
            Some("file size was 1048576 bytes, now none")
        );
    }

    #[test]
    fn pending_chunks_are_those_not_recorded() {
        let mut p = DumpProgress {
            version: PROGRESS_VERSION,
            settings: Settings {
                source: String::new(),
                filter: Vec::new(),
                format: DataFormat::Sql,
                compression: Compression::None,
                csv: None,
                chunk_rows: 1,
                file_size: None,
            },
            consistency: "flush".into(),
            started_at: 0,
            snapshots: vec![None],
            tables: vec![TableProgress {
                database: "d".into(),
                table: "t".into(),
                create: String::new(),
                columns: Vec::new(),
                primary_key: Vec::new(),
                chunks: (0..3)
                    .map(|i| ChunkProgress {
                        index: i,
                        predicate: Some(format!("p{i}")),
                        done: None,
                    })
                    .collect(),
            }],
        };
        p.record(ChunkDone {
            table: 0,
            index: 1,
            file: None,
            range: "p1".into(),
            rows: 0,
            bytes: 0,
            fingerprint: String::new(),
            snapshot: 0,
            parts: Vec::new(),
        });
        let pending: Vec<u32> = p.pending().iter().map(|c| c.index).collect();
        assert_eq!(pending, [0, 2]);
        assert_eq!(p.chunk_count(), 3);
    }
}
