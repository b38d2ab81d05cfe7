//! The dump from start to finish: `build` does everything that can fail early, `run` takes the
//! snapshot and writes the dump (or, resuming, the chunks it lacks), `metadata.json` last.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::Serialize;
use sluice_core::layout::{
    self, ChunkMeta, Compression, DataFormat, DumpMetadata, METADATA_FILE, PROGRESS_FILE,
    SourceMeta, TableMeta, utc_timestamp,
};
use sluice_core::{
    Chunk, Endpoint, RawConn, Selection, ServerInfo, Storage, TableInfo, TableName, plan_table,
    quote_ident, select_tables,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::chunk::{MAX_PARTS, data_file_name, dump_chunk};
use crate::config::{Consistency, DumpConfig};
use crate::resume::{ChunkDone, DumpProgress, SAVE_EVERY, Settings};
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
    /// The unfinished dump this one continues.
    resume: Option<DumpProgress>,
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
        if config.file_size.is_some_and(|bytes| bytes < 1 << 20) {
            return Err(DumpError::Unsupported(
                "--file-size must be at least 1MiB".to_owned(),
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
        let resume = if config.resume {
            if existing.iter().any(|n| n == METADATA_FILE) && !config.overwrite {
                return Err(DumpError::AlreadyComplete {
                    url: storage.url().to_owned(),
                });
            }
            DumpProgress::load(&storage, &config).await?
        } else {
            None
        };
        if !existing.is_empty() && !config.overwrite && resume.is_none() {
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
            resume,
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
        let Dumper {
            config,
            storage,
            info,
            selection,
            existing,
            mut resume,
        } = self;
        let endpoint = &config.source;
        let views = selection.views.len();
        if let Some(p) = resume.take() {
            if p.pending().is_empty() {
                tracing::info!(
                    "{}: every chunk of the unfinished dump is there; writing {METADATA_FILE}",
                    storage.url()
                );
                return finish(&config, &info, &storage, p, views, started).await;
            }
            resume = Some(p);
        }
        let names: Vec<TableName> = match &resume {
            Some(p) => p.tables.iter().map(|t| t.name()).collect(),
            None => selection.tables.iter().map(|t| t.name.clone()).collect(),
        };
        let snap = snapshot::open(
            endpoint,
            &info,
            config.consistency,
            config.threads,
            &names,
            Duration::from_secs(config.lock_wait_secs),
        )
        .await?;
        let workers = snap.workers;
        let mut planner = snap.planner;
        if let Some(p) = &resume
            && let Some(reason) = p
                .obstacle(&mut planner, endpoint, &selection, snap.position.is_some())
                .await?
        {
            if !config.overwrite {
                return Err(DumpError::CannotResume {
                    url: storage.url().to_owned(),
                    reason,
                });
            }
            tracing::warn!(
                "{}: cannot resume the unfinished dump ({reason}); dumping everything again",
                storage.url()
            );
            resume = None;
        }
        let (mut progress, tables) = match resume {
            Some(mut p) => {
                let pending = p.pending().len();
                let done = p.chunk_count() - pending;
                tracing::info!(
                    "resuming the dump in {}: {done} of {} chunks done in earlier runs; the other {} are read in a new snapshot{}",
                    storage.url(),
                    p.chunk_count(),
                    pending,
                    snap.position
                        .as_ref()
                        .map(|s| format!(" at {}:{}", s.binlog_file, s.binlog_offset))
                        .unwrap_or_default()
                );
                p.snapshots.push(snap.position.clone());
                let tables = p.table_infos(&selection);
                if config.file_size.is_some() {
                    remove_stale_parts(&storage, &config, &existing, &tables, &p.pending()).await?;
                }
                (p, tables)
            }
            None => {
                clear_old_dump(&storage, &existing).await?;
                let creates = write_schemas(&mut planner, endpoint, &storage, &selection).await?;
                if config.triggers || config.routines || config.events {
                    let n = crate::objects::write_objects(
                        &mut planner,
                        endpoint,
                        &storage,
                        &selection,
                        &config,
                    )
                    .await?;
                    tracing::info!(objects = n, "triggers, routines and events written");
                }
                let mut chunks = Vec::new();
                for (i, table) in selection.tables.iter().enumerate() {
                    chunks.extend(
                        plan_table(&mut planner, endpoint, i, table, config.chunk_rows).await?,
                    );
                }
                let p = DumpProgress::new(
                    Settings::of(&config),
                    snap.method.clone(),
                    unix_now(),
                    snap.position.clone(),
                    &selection.tables,
                    &creates,
                    &chunks,
                );
                (p, selection.tables)
            }
        };
        progress.save(&storage).await?;
        // All the snapshot holds besides the chunks' rows is read: end the planner's session.
        let _ = planner.disconnect().await;
        let queue: VecDeque<Chunk> = progress.pending().into();
        let mut counts = vec![0usize; tables.len()];
        for chunk in &queue {
            counts[chunk.table] += 1;
        }
        let per_table: Vec<(TableName, usize)> =
            tables.iter().map(|t| t.name.clone()).zip(counts).collect();
        observer.planned(&per_table);

        let snapshot_index = progress.current_snapshot();
        let tables = Arc::new(tables);
        let queue = Arc::new(Mutex::new(queue));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let mut set = JoinSet::new();
        for conn in workers {
            let job = WorkerJob {
                conn,
                // What every Sluice session starts with (`SET NAMES utf8mb4`).
                results: "utf8mb4",
                queue: queue.clone(),
                tables: tables.clone(),
                storage: storage.clone(),
                config: config.clone(),
                observer: observer.clone(),
                done: done_tx.clone(),
            };
            set.spawn(job.run());
        }
        drop(done_tx);
        // Finished chunks go into the progress file as they come, at most every SAVE_EVERY.
        let mut tick = tokio::time::interval(SAVE_EVERY);
        let mut unsaved = false;
        loop {
            tokio::select! {
                got = done_rx.recv() => match got {
                    Some(mut chunk) => {
                        chunk.snapshot = snapshot_index;
                        progress.record(chunk);
                        unsaved = true;
                    }
                    None => break,
                },
                Some(joined) = set.join_next() => {
                    // Returning drops `set`, which aborts the other workers.
                    joined.map_err(|e| DumpError::Worker(e.to_string()))??;
                }
                _ = tick.tick(), if unsaved => {
                    progress.save(&storage).await?;
                    unsaved = false;
                }
            }
        }
        while let Some(joined) = set.join_next().await {
            joined.map_err(|e| DumpError::Worker(e.to_string()))??;
        }
        observer.finished();
        finish(&config, &info, &storage, progress, views, started).await
    }
}

/// Writes `metadata.json` from the finished progress, then removes the progress file.
async fn finish(
    config: &DumpConfig,
    info: &ServerInfo,
    storage: &Storage,
    progress: DumpProgress,
    views: usize,
    started: Instant,
) -> Result<DumpSummary, DumpError> {
    let metadata = build_metadata(config, info, &progress);
    let (rows, bytes, chunks) = metadata.tables.iter().fold((0, 0, 0), |(r, b, c), t| {
        (r + t.rows, b + t.bytes, c + t.chunks.len())
    });
    let json =
        serde_json::to_vec_pretty(&metadata).map_err(|e| DumpError::Worker(e.to_string()))?;
    storage.put(METADATA_FILE, json).await?;
    storage.delete(PROGRESS_FILE).await?;
    let position = metadata.snapshot.clone();
    Ok(DumpSummary {
        output: storage.url().to_owned(),
        tables: metadata.tables.len(),
        views,
        chunks,
        rows,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        consistency: progress.consistency,
        binlog_file: position.as_ref().map(|p| p.binlog_file.clone()),
        binlog_offset: position.as_ref().map(|p| p.binlog_offset),
        gtid_set: position.map(|p| p.gtid_set),
    })
}

/// Removes an earlier dump's files, its marker and progress first, so that nothing
/// half-replaced ever looks complete or resumable.
async fn clear_old_dump(storage: &Storage, existing: &[String]) -> Result<(), DumpError> {
    if existing.is_empty() {
        return Ok(());
    }
    storage.delete(METADATA_FILE).await?;
    storage.delete(PROGRESS_FILE).await?;
    for name in existing.iter().filter(|n| looks_like_dump_file(n)) {
        storage.delete(name).await?;
    }
    Ok(())
}

/// Deletes the data files an earlier run committed for chunks this run reads again. Parts of a
/// split chunk are committed as they close, so a run killed mid-chunk leaves some; the redo
/// overwrites those it writes again, but where it has fewer parts (rows were deleted since) the
/// old higher-numbered ones would stay beside the new files, to be loaded twice by a tool that
/// lists the folder.
async fn remove_stale_parts(
    storage: &Storage,
    config: &DumpConfig,
    existing: &[String],
    tables: &[TableInfo],
    pending: &[Chunk],
) -> Result<(), DumpError> {
    let redone: HashSet<(usize, u32)> = pending.iter().map(|c| (c.table, c.index)).collect();
    // Every data file name is `{prefix}{number:09}{suffix}`; find the prefix of each table.
    let mut prefixes = HashMap::new();
    let mut suffix = String::new();
    for (i, t) in tables.iter().enumerate() {
        let probe = data_file_name(config, t, 0);
        let at = probe.rfind("000000000").unwrap_or(0);
        suffix = probe[at + 9..].to_owned();
        prefixes.insert(probe[..at].to_owned(), i);
    }
    for name in existing {
        let Some(stem) = name.strip_suffix(suffix.as_str()) else {
            continue;
        };
        let Some(dot) = stem.rfind('.') else { continue };
        let (prefix, digits) = stem.split_at(dot + 1);
        let (Some(&table), Ok(n)) = (prefixes.get(prefix), digits.parse::<u64>()) else {
            continue;
        };
        let chunk = u32::try_from(n / u64::from(MAX_PARTS)).unwrap_or(u32::MAX);
        if redone.contains(&(table, chunk)) {
            tracing::info!(file = %name, "deleting a part of a chunk that is read again");
            storage.delete(name).await?;
        }
    }
    Ok(())
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
        || name == PROGRESS_FILE
        || base.ends_with(".sql")
        || base.ends_with(".csv")
        || base.ends_with(".parquet")
}

/// `SHOW CREATE` for every database, table and view, read inside the snapshot; returns the
/// tables' statements in selection order.
async fn write_schemas(
    conn: &mut Conn,
    endpoint: &Endpoint,
    storage: &Storage,
    selection: &Selection,
) -> Result<Vec<String>, DumpError> {
    let mut creates = Vec::with_capacity(selection.tables.len());
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
        creates.push(create);
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
    Ok(creates)
}

/// One worker: a connection inside the snapshot, taking chunks from the shared queue.
struct WorkerJob {
    conn: RawConn,
    /// The session's `character_set_results` (see `charset.rs`).
    results: &'static str,
    queue: Arc<Mutex<VecDeque<Chunk>>>,
    tables: Arc<Vec<TableInfo>>,
    storage: Storage,
    config: DumpConfig,
    observer: Arc<dyn DumpObserver>,
    /// Each chunk once its file is committed.
    done: mpsc::UnboundedSender<ChunkDone>,
}

/// Chunk files a worker may have committing (synced to disk and renamed) while it reads on.
const COMMITS_IN_FLIGHT: usize = 2;

impl WorkerJob {
    async fn run(mut self) -> Result<(), DumpError> {
        // A chunk's file is committed by a task of its own: the disk writes it while the worker
        // reads the next chunk (the sync of every file used to stop the worker for the disk).
        // A chunk is reported done only once its file is committed.
        let mut commits: JoinSet<Result<(), DumpError>> = JoinSet::new();
        loop {
            let next = self.queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
            let Some(chunk) = next else { break };
            let table = &self.tables[chunk.table];
            self.observer.chunk_started(&table.name);
            let (mut result, files) = dump_chunk(
                &mut self.conn,
                &mut self.results,
                &self.storage,
                &self.config,
                table,
                &chunk,
            )
            .await?;
            let (observer, done, name) =
                (self.observer.clone(), self.done.clone(), table.name.clone());
            while commits.len() >= COMMITS_IN_FLIGHT {
                joined(commits.join_next().await)?;
            }
            commits.spawn(async move {
                // The chunk's files not yet committed: its own (`part` 0) unless `--file-size`
                // split it, and its last part.
                let mut files = files.into_iter();
                while let Some(f) = files.next() {
                    match f.sink.finish(f.rest).await {
                        Ok(size) if f.part == 0 => result.bytes = size,
                        Ok(size) => {
                            if let Some(p) = result.parts.get_mut(f.part - 1) {
                                p.bytes = size;
                            }
                        }
                        Err(e) => {
                            // Nothing more of the chunk becomes visible (S3 uploads end too).
                            for rest in files {
                                rest.sink.abort().await;
                            }
                            return Err(e.into());
                        }
                    }
                }
                let rows = result.rows + result.parts.iter().map(|p| p.rows).sum::<u64>();
                let bytes = result.bytes + result.parts.iter().map(|p| p.bytes).sum::<u64>();
                observer.chunk_done(&name, rows, bytes);
                let _ = done.send(result);
                Ok(())
            });
        }
        while let Some(commit) = commits.join_next().await {
            joined(Some(commit))?;
        }
        // Read-only snapshot: ending it releases its undo history on the source.
        let _ = self.conn.query_drop("COMMIT").await;
        self.conn.quit().await;
        Ok(())
    }
}

/// The outcome of a commit task.
fn joined(
    commit: Option<Result<Result<(), DumpError>, tokio::task::JoinError>>,
) -> Result<(), DumpError> {
    match commit {
        None | Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(e))) => Err(e),
        Some(Err(e)) => Err(DumpError::Worker(e.to_string())),
    }
}

/// `metadata.json` of a dump whose chunks are all done.
fn build_metadata(config: &DumpConfig, info: &ServerInfo, progress: &DumpProgress) -> DumpMetadata {
    let tables = progress
        .tables
        .iter()
        .map(|t| {
            let done: Vec<&ChunkDone> = t.chunks.iter().filter_map(|c| c.done.as_ref()).collect();
            // A chunk split by `--file-size` is one entry per file, in key order.
            let chunks: Vec<ChunkMeta> = done
                .iter()
                .flat_map(|c| {
                    let first = c.file.clone().map(|file| ChunkMeta {
                        file,
                        range: c.range.clone(),
                        rows: c.rows,
                        bytes: c.bytes,
                        fingerprint: c.fingerprint.clone(),
                        snapshot: c.snapshot,
                    });
                    let parts = c.parts.iter().enumerate().map(|(i, p)| ChunkMeta {
                        file: p.file.clone(),
                        range: format!("{} (file {} of the range)", c.range, i + 2),
                        rows: p.rows,
                        bytes: p.bytes,
                        fingerprint: p.fingerprint.clone(),
                        snapshot: c.snapshot,
                    });
                    first.into_iter().chain(parts)
                })
                .collect();
            TableMeta {
                database: t.database.clone(),
                table: t.table.clone(),
                schema_file: layout::table_schema_file(&t.database, &t.table),
                columns: t.columns.clone(),
                primary_key: t.primary_key.clone(),
                rows: chunks.iter().map(|c| c.rows).sum(),
                bytes: chunks.iter().map(|c| c.bytes).sum(),
                chunks,
                snapshot: done.iter().map(|c| c.snapshot).min().unwrap_or(0),
            }
        })
        .collect();
    let method = &progress.consistency;
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
        snapshot: progress.snapshots.first().cloned().flatten(),
        started_at: utc_timestamp(progress.started_at),
        finished_at: utc_timestamp(unix_now()),
        format: config.format,
        compression: config.compression,
        csv: (config.format == DataFormat::Csv).then(|| config.csv.clone()),
        time_zone: "+00:00".to_owned(),
        tables,
        resumed_snapshots: progress
            .snapshots
            .iter()
            .skip(1)
            .flatten()
            .cloned()
            .collect(),
    }
}
