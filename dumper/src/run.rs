//! The dump from start to finish: `build` does everything that can fail early, `run` takes the
//! snapshot and writes the dump, `metadata.json` last.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::Serialize;
use sluice_core::layout::{
    self, ChunkMeta, Compression, DataFormat, DumpMetadata, METADATA_FILE, RowFingerprint,
    SourceMeta, TableMeta, utc_timestamp,
};
use sluice_core::{
    Chunk, Endpoint, Selection, ServerInfo, Storage, TableInfo, TableName, cells, plan_table,
    quote_ident, select_tables,
};
use tokio::task::JoinSet;

use crate::config::{Consistency, DumpConfig};
use crate::encode::{CsvEncoder, SqlEncoder};
use crate::parquet::ParquetEncoder;
use crate::sink::{ChunkSink, FLUSH_BYTES};
use crate::{DumpError, DumpObserver, privileges, snapshot};

/// What a finished dump reports (`--json` prints it as one line).
#[derive(Debug, Clone, Serialize)]
pub struct DumpSummary {
    pub output: String,
    pub tables: usize,
    pub views: usize,
    pub chunks: usize,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub consistency: String,
    pub binlog_file: Option<String>,
    pub binlog_offset: Option<u64>,
    pub gtid_set: Option<String>,
}

/// A dump, checked and ready to run.
pub struct Dumper {
    config: DumpConfig,
    storage: Storage,
    info: ServerInfo,
    selection: Selection,
    existing: Vec<String>,
}

impl Dumper {
    /// Connects, selects the tables, and checks privileges and the output: everything that can
    /// fail before a lock is taken or a file written.
    pub async fn build(config: DumpConfig) -> Result<Dumper, DumpError> {
        if config.format == DataFormat::Parquet && config.compression == Compression::Gzip {
            return Err(DumpError::Unsupported(
                "--format parquet compresses pages itself: use --compress zstd or none".to_owned(),
            ));
        }
        if config.threads == 0 || config.chunk_rows == 0 {
            return Err(DumpError::Unsupported(
                "--threads and --chunk-rows must be at least 1".to_owned(),
            ));
        }
        config.csv.validate()?;
        let storage = Storage::open(&config.output)?;
        let endpoint = &config.source;
        let mut conn = endpoint.connect().await?;
        let info = ServerInfo::detect(&mut conn, endpoint).await?;
        let selection = select_tables(&mut conn, endpoint, &config.filter).await?;
        if selection.tables.is_empty() && selection.views.is_empty() {
            return Err(DumpError::NothingMatched {
                patterns: config.filter.patterns().to_vec(),
                source_endpoint: endpoint.to_string(),
            });
        }
        let binlog_on: Option<u8> = conn
            .query_first("SELECT @@log_bin")
            .await
            .map_err(|e| endpoint.error("read @@log_bin", e))?;
        privileges::check(
            &mut conn,
            endpoint,
            &info,
            config.consistency,
            binlog_on == Some(1),
            &selection,
        )
        .await?;
        let existing: Vec<String> = storage
            .list("")
            .await?
            .into_iter()
            .map(|o| o.name)
            .collect();
        if !existing.is_empty() && !config.overwrite {
            return Err(DumpError::OutputNotEmpty {
                url: storage.url().to_owned(),
                objects: existing.len(),
                example: existing[0].clone(),
            });
        }
        Ok(Dumper {
            config,
            storage,
            info,
            selection,
            existing,
        })
    }

    /// The tables that will be dumped.
    pub fn tables(&self) -> Vec<TableName> {
        self.selection
            .tables
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }

    pub async fn run(self, observer: Arc<dyn DumpObserver>) -> Result<DumpSummary, DumpError> {
        let started = Instant::now();
        let started_at = unix_now();
        let Dumper {
            config,
            storage,
            info,
            selection,
            existing,
        } = self;
        let endpoint = &config.source;
        // An old dump's marker goes first, so nothing half-replaced ever looks complete.
        if !existing.is_empty() {
            storage.delete(METADATA_FILE).await?;
            for name in existing.iter().filter(|n| looks_like_dump_file(n)) {
                storage.delete(name).await?;
            }
        }
        let names: Vec<TableName> = selection.tables.iter().map(|t| t.name.clone()).collect();
        let snap = snapshot::open(
            endpoint,
            &info,
            config.consistency,
            config.threads,
            &names,
            Duration::from_secs(config.lock_wait_secs),
        )
        .await?;
        let mut workers = snap.workers;
        write_schemas(&mut workers[0], endpoint, &storage, &selection).await?;

        let mut queue = VecDeque::new();
        for (i, table) in selection.tables.iter().enumerate() {
            queue.extend(plan_table(&mut workers[0], endpoint, i, table, config.chunk_rows).await?);
        }
        let planned = queue.len();
        let mut counts = vec![0usize; selection.tables.len()];
        for chunk in &queue {
            counts[chunk.table] += 1;
        }
        let per_table: Vec<(TableName, usize)> = selection
            .tables
            .iter()
            .map(|t| t.name.clone())
            .zip(counts)
            .collect();
        observer.planned(&per_table);

        let tables = Arc::new(selection.tables);
        let queue = Arc::new(Mutex::new(queue));
        let mut set = JoinSet::new();
        for conn in workers {
            let job = WorkerJob {
                conn,
                queue: queue.clone(),
                tables: tables.clone(),
                storage: storage.clone(),
                config: config.clone(),
                observer: observer.clone(),
            };
            set.spawn(job.run());
        }
        let mut done: Vec<ChunkDone> = Vec::with_capacity(planned);
        while let Some(joined) = set.join_next().await {
            let result = joined.map_err(|e| DumpError::Worker(e.to_string()))?;
            match result {
                Ok(chunks) => done.extend(chunks),
                Err(e) => return Err(e), // dropping `set` aborts the other workers
            }
        }
        observer.finished();

        let metadata = build_metadata(
            &config,
            &info,
            &snap.method,
            snap.position.clone(),
            started_at,
            &tables,
            done,
        );
        let (rows, bytes, chunks) = metadata.tables.iter().fold((0, 0, 0), |(r, b, c), t| {
            (r + t.rows, b + t.bytes, c + t.chunks.len())
        });
        let json =
            serde_json::to_vec_pretty(&metadata).map_err(|e| DumpError::Worker(e.to_string()))?;
        storage.put(METADATA_FILE, json).await?;
        Ok(DumpSummary {
            output: storage.url().to_owned(),
            tables: metadata.tables.len(),
            views: selection.views.len(),
            chunks,
            rows,
            bytes,
            seconds: started.elapsed().as_secs_f64(),
            consistency: snap.method,
            binlog_file: snap.position.as_ref().map(|p| p.binlog_file.clone()),
            binlog_offset: snap.position.as_ref().map(|p| p.binlog_offset),
            gtid_set: snap.position.map(|p| p.gtid_set),
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Names the dumper writes; `--overwrite` removes only these.
fn looks_like_dump_file(name: &str) -> bool {
    let base = name.trim_end_matches(".gz").trim_end_matches(".zst");
    name == METADATA_FILE
        || base.ends_with(".sql")
        || base.ends_with(".csv")
        || base.ends_with(".parquet")
}

/// `SHOW CREATE` for every database, table and view, read inside the snapshot.
async fn write_schemas(
    conn: &mut Conn,
    endpoint: &Endpoint,
    storage: &Storage,
    selection: &Selection,
) -> Result<(), DumpError> {
    let databases: BTreeSet<&str> = selection
        .tables
        .iter()
        .map(|t| t.name.database.as_str())
        .chain(selection.views.iter().map(|v| v.database.as_str()))
        .collect();
    for db in databases {
        let row: Option<(String, String)> = conn
            .query_first(format!("SHOW CREATE DATABASE {}", quote_ident(db)))
            .await
            .map_err(|e| endpoint.error(format!("SHOW CREATE DATABASE {db}"), e))?;
        let create = row.map(|(_, sql)| sql).unwrap_or_default();
        storage
            .put(&layout::database_schema_file(db), format!("{create};\n"))
            .await?;
    }
    for t in &selection.tables {
        let row: Option<(String, String)> = conn
            .query_first(format!("SHOW CREATE TABLE {}", t.name))
            .await
            .map_err(|e| endpoint.error(format!("SHOW CREATE TABLE {}", t.name.plain()), e))?;
        let create = row.map(|(_, sql)| sql).unwrap_or_default();
        let file = layout::table_schema_file(&t.name.database, &t.name.table);
        storage
            .put(&file, format!("/*!40101 SET NAMES utf8mb4*/;\n{create};\n"))
            .await?;
    }
    for v in &selection.views {
        let row: Option<mysql_async::Row> = conn
            .query_first(format!("SHOW CREATE VIEW {v}"))
            .await
            .map_err(|e| endpoint.error(format!("SHOW CREATE VIEW {}", v.plain()), e))?;
        let create: String = row.and_then(|r| r.get(1)).unwrap_or_default();
        storage
            .put(
                &layout::view_schema_file(&v.database, &v.table),
                format!("{create};\n"),
            )
            .await?;
    }
    Ok(())
}

/// One finished chunk.
struct ChunkDone {
    table: usize,
    index: u32,
    /// `None` when the range held no rows (no file is written for it).
    file: Option<String>,
    range: String,
    rows: u64,
    bytes: u64,
    fingerprint: RowFingerprint,
}

/// One worker: a connection inside the snapshot, taking chunks from the shared queue.
struct WorkerJob {
    conn: Conn,
    queue: Arc<Mutex<VecDeque<Chunk>>>,
    tables: Arc<Vec<TableInfo>>,
    storage: Storage,
    config: DumpConfig,
    observer: Arc<dyn DumpObserver>,
}

impl WorkerJob {
    async fn run(mut self) -> Result<Vec<ChunkDone>, DumpError> {
        let mut done = Vec::new();
        loop {
            let next = self.queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
            let Some(chunk) = next else { break };
            let table = &self.tables[chunk.table];
            self.observer.chunk_started(&table.name);
            let result =
                dump_chunk(&mut self.conn, &self.storage, &self.config, table, &chunk).await?;
            self.observer
                .chunk_done(&table.name, result.rows, result.bytes);
            done.push(result);
        }
        // Read-only snapshot: ending it releases its undo history on the source.
        let _ = self.conn.query_drop("COMMIT").await;
        Ok(done)
    }
}

enum RowEncoder {
    Sql(SqlEncoder),
    Csv(CsvEncoder),
    Parquet(Box<ParquetEncoder>),
}

async fn dump_chunk(
    conn: &mut Conn,
    storage: &Storage,
    config: &DumpConfig,
    table: &TableInfo,
    chunk: &Chunk,
) -> Result<ChunkDone, DumpError> {
    let endpoint = &config.source;
    // Parquet compresses its pages itself; the file carries no compression suffix.
    let file_compression = if config.format == DataFormat::Parquet {
        Compression::None
    } else {
        config.compression
    };
    let file = layout::chunk_file(
        &table.name.database,
        &table.name.table,
        chunk.index,
        config.format,
        file_compression,
    );
    let kinds = table.columns.iter().map(|c| c.kind).collect::<Vec<_>>();
    let columns = table.column_names();
    let mut encoder = match config.format {
        DataFormat::Csv => RowEncoder::Csv(CsvEncoder::new(config.csv.clone(), kinds)),
        DataFormat::Parquet => {
            RowEncoder::Parquet(Box::new(ParquetEncoder::new(table, config.compression)?))
        }
        DataFormat::Sql => RowEncoder::Sql(SqlEncoder::new(
            &table.name.table,
            &columns,
            kinds,
            config.statement_bytes,
        )),
    };
    let mut buf = Vec::with_capacity(FLUSH_BYTES + (64 << 10));
    match &encoder {
        RowEncoder::Sql(e) => e.file_header(&mut buf),
        RowEncoder::Csv(e) => e.file_header(&mut buf, &columns),
        RowEncoder::Parquet(_) => {}
    }

    let mut sql = format!("SELECT {} FROM {}", table.select_list(), table.name);
    if let Some(p) = &chunk.predicate {
        sql.push_str(&format!(" WHERE {p}"));
    }
    if !table.primary_key.is_empty() {
        let keys: Vec<String> = table
            .key_columns()
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
    }
    let read_err = |e| {
        DumpError::from(endpoint.error(
            format!("read {} chunk {}", table.name.plain(), chunk.index),
            e,
        ))
    };
    let mut fingerprint = RowFingerprint::default();
    let mut sink: Option<ChunkSink> = None;
    let outcome: Result<(), DumpError> = async {
        let mut result = conn.query_iter(sql).await.map_err(read_err)?;
        while let Some(row) = result.next().await.map_err(read_err)? {
            let cells = cells(&row);
            fingerprint.add_row(cells.iter().map(|c| c.as_deref()));
            match &mut encoder {
                RowEncoder::Sql(e) => e.row(&mut buf, &cells),
                RowEncoder::Csv(e) => e.row(&mut buf, &cells),
                RowEncoder::Parquet(e) => {
                    e.row(&cells)?;
                    e.drain_into(&mut buf);
                }
            }
            if buf.len() >= FLUSH_BYTES {
                if sink.is_none() {
                    sink = Some(ChunkSink::new(storage, &file, file_compression)?);
                }
                if let Some(s) = sink.as_mut() {
                    s.write(&mut buf).await?;
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        if let Some(s) = sink {
            s.abort().await;
        }
        return Err(e);
    }
    let range = chunk
        .predicate
        .clone()
        .unwrap_or_else(|| "all rows".to_owned());
    if fingerprint.rows() == 0 {
        return Ok(ChunkDone {
            table: chunk.table,
            index: chunk.index,
            file: None,
            range,
            rows: 0,
            bytes: 0,
            fingerprint,
        });
    }
    match encoder {
        RowEncoder::Sql(mut e) => e.end_statement(&mut buf),
        RowEncoder::Parquet(e) => e.finish_into(&mut buf)?,
        RowEncoder::Csv(_) => {}
    }
    let sink = match sink {
        Some(s) => s,
        None => ChunkSink::new(storage, &file, file_compression)?,
    };
    let bytes = sink.finish(buf).await?;
    Ok(ChunkDone {
        table: chunk.table,
        index: chunk.index,
        file: Some(file),
        range,
        rows: fingerprint.rows(),
        bytes,
        fingerprint,
    })
}

fn build_metadata(
    config: &DumpConfig,
    info: &ServerInfo,
    method: &str,
    position: Option<layout::SnapshotMeta>,
    started_at: u64,
    tables: &[TableInfo],
    done: Vec<ChunkDone>,
) -> DumpMetadata {
    let mut by_table: BTreeMap<usize, Vec<ChunkDone>> = BTreeMap::new();
    for c in done {
        by_table.entry(c.table).or_default().push(c);
    }
    let tables = tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut chunks = by_table.remove(&i).unwrap_or_default();
            chunks.sort_by_key(|c| c.index);
            let chunks: Vec<ChunkMeta> = chunks
                .into_iter()
                .filter_map(|c| {
                    Some(ChunkMeta {
                        file: c.file?,
                        range: c.range,
                        rows: c.rows,
                        bytes: c.bytes,
                        fingerprint: c.fingerprint.hex(),
                    })
                })
                .collect();
            TableMeta {
                database: t.name.database.clone(),
                table: t.name.table.clone(),
                schema_file: layout::table_schema_file(&t.name.database, &t.name.table),
                columns: t.column_names(),
                primary_key: t.key_columns().iter().map(|c| c.name.clone()).collect(),
                rows: chunks.iter().map(|c| c.rows).sum(),
                bytes: chunks.iter().map(|c| c.bytes).sum(),
                chunks,
            }
        })
        .collect();
    let consistency = match config.consistency {
        Consistency::Auto => format!("auto: {method}"),
        _ => method.to_owned(),
    };
    DumpMetadata {
        version: DumpMetadata::VERSION,
        tool: format!("sluice {}", env!("CARGO_PKG_VERSION")),
        source: SourceMeta {
            endpoint: config.source.to_string(),
            flavor: info.flavor.to_string(),
            version: info.version_string.clone(),
        },
        consistency,
        snapshot: position,
        started_at: utc_timestamp(started_at),
        finished_at: utc_timestamp(unix_now()),
        format: config.format,
        compression: config.compression,
        csv: (config.format == DataFormat::Csv).then(|| config.csv.clone()),
        time_zone: "+00:00".to_owned(),
        tables,
    }
}
