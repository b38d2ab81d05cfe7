//! The import from start to finish: discover the dump, prepare the target, then per table:
//! parse files in parallel into key/value pairs, sort (spilling runs past the memory budget),
//! merge, resolve duplicates, load in key order on several connections, verify, checkpoint.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::Serialize;
use sluice_core::layout::{CsvDialect, RowFingerprint};
use sluice_core::{Endpoint, Storage, TableInfo, cells};
use tokio::sync::{Mutex, mpsc};

use crate::checkpoint::{Checkpoints, TableState};
use crate::config::{DeferIndexes, ImportConfig, LoadMethod, OnDuplicate};
use crate::kv::decode_value;
use crate::load::{BatchSink, LoadSpec, Loader, load_batch};
use crate::method::method_for;
use crate::ordered::{InOrder, produce_in_order};
use crate::plan::{MappingCache, RowPlan};
use crate::read::read_file;
use crate::sent::SentFingerprint;
use crate::sort::{Kv, Sorter};
use crate::source::{DumpSource, TableSource, discover};
use crate::{ImportError, import_mode, target};

#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub input: String,
    pub layout: String,
    pub tables: usize,
    /// Tables a previous run had finished.
    pub tables_skipped: usize,
    pub rows: u64,
    pub duplicates_dropped: u64,
    pub sort_runs_spilled: usize,
    /// Tables whose rows were not in key order in their files, so they went through the sort.
    pub tables_sorted: usize,
    /// Tables loaded by MariaDB's bulk execution (the others by LOAD DATA; see `load.rs`).
    pub tables_bulk_inserted: usize,
    pub seconds: f64,
}

pub struct Importer {
    config: ImportConfig,
    storage: Storage,
    source: DumpSource,
    dump_id: String,
    /// Set when the input is one SQL file (a mysqldump dump): its name in `storage`.
    script: Option<String>,
    /// Size of the input in storage (decides whether import mode resizes the redo log).
    input_bytes: u64,
}

impl Importer {
    /// Reads the dump's layout, applies the filter, and checks that the target answers.
    pub async fn build(mut config: ImportConfig) -> Result<Importer, ImportError> {
        let local = config
            .input
            .strip_prefix("file://")
            .unwrap_or(&config.input);
        let path = std::path::Path::new(local);
        if path.is_file() {
            // One SQL file: a mysqldump-style script, read from its folder.
            let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
                return Err(ImportError::Input(format!(
                    "{}: not a file path",
                    config.input
                )));
            };
            let dir = if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            };
            let storage = Storage::open(&dir.to_string_lossy())?;
            drop(config.target.connect().await?);
            config.wire = crate::method::probe(&config.target, config.load_method).await?;
            let source = DumpSource {
                layout: "mysqldump",
                database_schemas: Default::default(),
                tables: Vec::new(),
                csv: CsvDialect::default(),
                metadata: None,
            };
            let script = Some(file.to_string_lossy().into_owned());
            let input_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            return Ok(Importer {
                dump_id: config.input.clone(),
                config,
                storage,
                source,
                script,
                input_bytes,
            });
        }
        let storage = Storage::open(&config.input)?;
        let mut source = discover(&storage).await?;
        source
            .tables
            .retain(|t| config.filter.matches(&t.name.database, &t.name.table));
        config
            .routes
            .check_distinct(source.tables.iter().map(|t| &t.dump_name))?;
        for t in &mut source.tables {
            t.name = config.routes.route(&t.dump_name);
        }
        if let Some(dialect) = &config.csv
            && source.metadata.is_none()
        {
            source.csv = dialect.clone();
        }
        if source.tables.is_empty() {
            return Err(ImportError::Input(format!(
                "no table of the dump at {} matches the filter {:?}",
                config.input,
                config.filter.patterns()
            )));
        }
        drop(config.target.connect().await?);
        config.wire = crate::method::probe(&config.target, config.load_method).await?;
        let dump_id = match &source.metadata {
            Some(m) => format!("{} {}", m.started_at, config.input),
            None => config.input.clone(),
        };
        let input_bytes = storage.list("").await?.iter().map(|o| o.size).sum();
        Ok(Importer {
            config,
            storage,
            source,
            dump_id,
            script: None,
            input_bytes,
        })
    }

    /// Runs the import. Target settings an earlier import mode left behind (a crash) are
    /// restored first; with `import_mode` the settings are raised for this run and restored
    /// after it, whether it succeeds or fails.
    pub async fn run(self) -> Result<ImportSummary, ImportError> {
        let endpoint = self.config.target.clone();
        let schema = self.config.meta_schema.clone();
        let mut conn = endpoint.connect().await?;
        import_mode::restore(&mut conn, &endpoint, &schema).await?;
        let resize_log = self.input_bytes >= import_mode::RESIZE_LOG_FROM_BYTES;
        let entered = self.config.import_mode
            && import_mode::enter(&mut conn, &endpoint, &schema, resize_log).await?;
        let result = self.run_inner().await;
        if entered {
            // A fresh connection: the first may have timed out during a long import.
            let mut conn = endpoint.connect().await?;
            import_mode::restore(&mut conn, &endpoint, &schema).await?;
        }
        result
    }

    async fn run_inner(self) -> Result<ImportSummary, ImportError> {
        let started = Instant::now();
        let Importer {
            config,
            storage,
            source,
            dump_id,
            script,
            ..
        } = self;
        if let Some(file) = script {
            return crate::script::run_script(&config, &storage, &file).await;
        }
        let endpoint = &config.target;
        let mut conn = endpoint.connect().await?;
        let checkpoints =
            Checkpoints::open(&mut conn, endpoint, &config.meta_schema, &dump_id).await?;
        if !config.no_schema {
            // Every database the rows go to; its own schema file where the route keeps the
            // database whole (a table routed elsewhere lands in a plainly created database).
            let mut created = std::collections::BTreeSet::new();
            for t in &source.tables {
                if !created.insert(t.name.database.clone()) {
                    continue;
                }
                let from = &t.dump_name.database;
                let file = match source.database_schemas.get(from) {
                    Some(f) if config.routes.route_database(from) == t.name.database => {
                        f.as_deref()
                    }
                    _ => None,
                };
                target::ensure_database(
                    &mut conn,
                    endpoint,
                    &storage,
                    &t.name.database,
                    file,
                    &config.routes,
                )
                .await?;
            }
        }
        let mut summary = ImportSummary {
            input: config.input.clone(),
            layout: source.layout.to_owned(),
            tables: source.tables.len(),
            tables_skipped: 0,
            rows: 0,
            duplicates_dropped: 0,
            sort_runs_spilled: 0,
            tables_sorted: 0,
            tables_bulk_inserted: 0,
            seconds: 0.0,
        };
        drop(conn);
        let planned: Vec<(sluice_core::TableName, u64)> = source
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.expected_rows.unwrap_or(0)))
            .collect();
        config.observer.planned(&planned);
        // Two tables at a time: one parses and sorts on the client while the other loads on
        // the server, so neither side waits for the other.
        let referenced = if config.defer_indexes == DeferIndexes::Auto && !config.no_schema {
            target::referenced_tables(&storage, &source.tables).await?
        } else {
            Default::default()
        };
        let shared = Arc::new(Shared {
            config,
            storage,
            source,
            checkpoints,
            referenced,
        });
        let mut tables = futures::stream::iter(0..shared.source.tables.len())
            .map(|i| import_one(shared.clone(), i))
            .buffer_unordered(2);
        while let Some(result) = tables.next().await {
            match result? {
                None => summary.tables_skipped += 1,
                Some(outcome) => {
                    summary.rows += outcome.rows;
                    summary.duplicates_dropped += outcome.duplicates_dropped;
                    summary.sort_runs_spilled += outcome.runs;
                    summary.tables_sorted += usize::from(outcome.sorted);
                    summary.tables_bulk_inserted += usize::from(outcome.bulk_inserted);
                }
            }
        }
        shared.config.observer.finished();
        summary.seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    }
}

/// What every table's import shares.
struct Shared {
    config: ImportConfig,
    storage: Storage,
    source: DumpSource,
    checkpoints: Checkpoints,
    /// Tables a foreign key of the dump references (see [`target::referenced_tables`]).
    referenced: std::collections::HashSet<String>,
}

/// Imports table `index` of the dump, on its own connection; `None` when an earlier run had
/// finished it.
async fn import_one(
    shared: Arc<Shared>,
    index: usize,
) -> Result<Option<TableOutcome>, ImportError> {
    let Shared {
        config,
        storage,
        source,
        checkpoints,
        referenced,
    } = &*shared;
    let table = &source.tables[index];
    let endpoint = &config.target;
    let mut conn = endpoint.connect().await?;
    // Tables are created in parallel, so a table may come before the one its foreign key
    // names; and adding deferred indexes must not check the rows against other tables.
    conn.query_drop("SET SESSION foreign_key_checks = 0")
        .await
        .map_err(|e| endpoint.error("turn foreign key checks off", e))?;
    let mut state = checkpoints.state(&mut conn, endpoint, &table.name).await?;
    if state == Some(TableState::Done)
        && target::lookup(&mut conn, endpoint, &table.name)
            .await?
            .is_none()
    {
        tracing::warn!(table = %table.name.plain(), "checkpointed as imported but gone from the target: importing again");
        state = None;
    }
    if config.restart && state.is_some() {
        // --restart: a table an earlier run loaded (all or part) is emptied and loaded again.
        state = Some(TableState::Loading);
    }
    if state == Some(TableState::Done) {
        tracing::info!(table = %table.name.plain(), "already imported by an earlier run: skipped");
        config.observer.table_done(&table.name, 0);
        return Ok(None);
    }
    // A table some foreign key references keeps its indexes under `auto`.
    let defer = match config.defer_indexes {
        DeferIndexes::Auto if referenced.contains(&table.dump_name.table) => DeferIndexes::None,
        d => d,
    };
    let deferred = prepare_table(&mut conn, config, storage, table, state, defer).await?;
    let info = target::lookup(&mut conn, endpoint, &table.name)
        .await?
        .ok_or_else(|| {
            ImportError::Target(format!(
                "{} does not exist on the target",
                table.name.plain()
            ))
        })?;
    checkpoints
        .mark(&mut conn, endpoint, &table.name, TableState::Loading, 0)
        .await?;
    let columns = source.metadata.as_ref().and_then(|m| {
        m.tables
            .iter()
            .find(|x| x.database == table.dump_name.database && x.table == table.dump_name.table)
            .map(|x| x.columns.clone())
    });
    let plan = RowPlan::new(&info, columns.as_deref())?.with_fingerprint(table.fingerprint_version);
    let outcome = import_table(config, storage, table, &plan, &source.csv).await?;
    if !deferred.is_empty() {
        let adds: Vec<String> = deferred.iter().map(|d| format!("ADD {d}")).collect();
        let sql = format!("ALTER TABLE {} {}", table.name, adds.join(", "));
        conn.query_drop(&sql).await.map_err(|e| {
            endpoint.error(
                format!("add the deferred indexes of {}", table.name.plain()),
                e,
            )
        })?;
    }
    verify(&mut conn, endpoint, table, &info, &outcome).await?;
    checkpoints
        .mark(
            &mut conn,
            endpoint,
            &table.name,
            TableState::Done,
            outcome.rows,
        )
        .await?;
    tracing::info!(table = %table.name.plain(), rows = outcome.rows, runs = outcome.runs, "table imported");
    config.observer.table_done(&table.name, outcome.rows);
    Ok(Some(outcome))
}

/// Creates the table, or checks the existing one; empties a table an earlier run left half
/// loaded. Returns the deferred index definitions.
async fn prepare_table(
    conn: &mut Conn,
    config: &ImportConfig,
    storage: &Storage,
    table: &TableSource,
    state: Option<TableState>,
    defer: DeferIndexes,
) -> Result<Vec<String>, ImportError> {
    let endpoint = &config.target;
    let existing = target::lookup(conn, endpoint, &table.name).await?;
    match (existing, state) {
        (Some(_), Some(_)) if !config.no_schema => {
            // Half loaded by a run that died (or loaded before a --restart): start it over
            // from its schema file, so that indexes deferred by the run that died are deferred
            // (and then added) again rather than lost.
            conn.query_drop(format!("DROP TABLE {}", table.name))
                .await
                .map_err(|e| {
                    endpoint.error(format!("drop the half-loaded {}", table.name.plain()), e)
                })?;
            target::create_table(conn, endpoint, storage, table, &config.routes, defer).await
        }
        (Some(_), Some(_)) => {
            // Half loaded into the user's own table (--no-schema): empty it and start over.
            conn.query_drop(format!("TRUNCATE TABLE {}", table.name))
                .await
                .map_err(|e| {
                    endpoint.error(format!("empty the half-loaded {}", table.name.plain()), e)
                })?;
            Ok(Vec::new())
        }
        (Some(_), _) if config.no_schema => Ok(Vec::new()),
        (Some(_), _) => {
            let rows = target::row_count(conn, endpoint, &table.name).await?;
            if rows > 0 {
                return Err(ImportError::Target(format!(
                    "{} already exists on the target with {rows} rows; drop it, or pass --no-schema to load into it",
                    table.name.plain()
                )));
            }
            Ok(Vec::new())
        }
        (None, _) if config.no_schema => Err(ImportError::Target(format!(
            "{} does not exist on the target and --no-schema was given",
            table.name.plain()
        ))),
        (None, _) => {
            target::create_table(conn, endpoint, storage, table, &config.routes, defer).await
        }
    }
}

pub(crate) struct TableOutcome {
    pub(crate) rows: u64,
    pub(crate) duplicates_dropped: u64,
    pub(crate) runs: usize,
    /// Set when the in-order load met a key out of order (see `ordered.rs`).
    pub(crate) out_of_order: Option<String>,
    /// The rows went through the sort.
    pub(crate) sorted: bool,
    /// The rows went by bulk execution, not LOAD DATA.
    pub(crate) bulk_inserted: bool,
    /// The fingerprint of the rows sent, when the target took them all without a warning
    /// (see `sent.rs`); `None` means: verify by reading the table back.
    pub(crate) sent: Option<RowFingerprint>,
}

/// Loads a table's rows (see [`import_table_by`]). Under `--load-method auto`, a table with a
/// row too big for one bulk execution, or whose bulk execution the target refused, is emptied
/// and loaded again with LOAD DATA: it streams, and it keeps LOAD DATA's rules for bad values.
async fn import_table(
    config: &ImportConfig,
    storage: &Storage,
    table: &TableSource,
    plan: &RowPlan,
    dialect: &CsvDialect,
) -> Result<TableOutcome, ImportError> {
    match import_table_by(config, storage, table, plan, dialect).await {
        Err(e @ (ImportError::RowTooBigForBulk { .. } | ImportError::BulkRefused { .. }))
            if config.load_method != LoadMethod::BulkInsert =>
        {
            tracing::info!(table = %table.name.plain(), reason = %e, "loading the table again with LOAD DATA");
            empty_table(config, table, "load it again").await?;
            let mut streamed = config.clone();
            streamed.wire.bulk = false;
            import_table_by(&streamed, storage, table, plan, dialect).await
        }
        other => other,
    }
}

/// Loads a table's rows: in file order when they come in key order (`ordered.rs`), else, once
/// that finds a key out of order, through the sort after emptying what it loaded.
async fn import_table_by(
    config: &ImportConfig,
    storage: &Storage,
    table: &TableSource,
    plan: &RowPlan,
    dialect: &CsvDialect,
) -> Result<TableOutcome, ImportError> {
    let plan = Arc::new(plan.clone());
    let outcome = import_in_order(config, storage, table, &plan, dialect).await?;
    let Some(at) = &outcome.out_of_order else {
        return Ok(outcome);
    };
    tracing::info!(table = %table.name.plain(), at = %at, "rows are not in key order: sorting them");
    empty_table(config, table, "sort it").await?;
    import_sorted(config, storage, table, &plan, dialect).await
}

/// Empties a table a load left half done, to load it again (`why`, for the error message).
async fn empty_table(
    config: &ImportConfig,
    table: &TableSource,
    why: &str,
) -> Result<(), ImportError> {
    let endpoint = &config.target;
    let mut conn = endpoint.connect().await?;
    conn.query_drop(format!("TRUNCATE TABLE {}", table.name))
        .await
        .map_err(|e| endpoint.error(format!("empty {} to {why}", table.name.plain()), e))?;
    Ok(())
}

/// Streams the files in order, fetching ahead of the parser, into the loaders.
async fn import_in_order(
    config: &ImportConfig,
    storage: &Storage,
    table: &TableSource,
    plan: &Arc<RowPlan>,
    dialect: &CsvDialect,
) -> Result<TableOutcome, ImportError> {
    let (files_tx, files_rx) = mpsc::channel(2);
    let names: Vec<String> = table.files.iter().map(|f| f.name.clone()).collect();
    let fetch_storage = storage.clone();
    let fetcher = tokio::spawn(async move {
        let mut fetched = futures::stream::iter(names)
            .map(|name| {
                let storage = fetch_storage.clone();
                async move { storage.get(&name).await.map_err(ImportError::from) }
            })
            .buffered(2);
        while let Some(data) = fetched.next().await {
            if files_tx.send(data).await.is_err() {
                break;
            }
        }
    });
    let (files, dialect, plan2) = (table.files.clone(), dialect.clone(), plan.clone());
    let (policy, plain_name, storage) = (config.on_duplicate, table.name.plain(), storage.clone());
    let outcome = load_stream(config, &table.name, plan, move |spec, sink| {
        let what = InOrder {
            files: &files,
            dialect: &dialect,
            plan: &plan2,
            policy,
            table: &plain_name,
            storage: &storage,
        };
        produce_in_order(what, files_rx, spec, sink)
    })
    .await;
    fetcher.abort();
    outcome
}

/// Parses every file of a table into the sorter, then loads the merged, deduplicated stream.
async fn import_sorted(
    config: &ImportConfig,
    storage: &Storage,
    table: &TableSource,
    plan: &Arc<RowPlan>,
    dialect: &CsvDialect,
) -> Result<TableOutcome, ImportError> {
    let sorter = Arc::new(std::sync::Mutex::new(Sorter::new(
        &config.sort_dir,
        // Two tables sort at once (see `Importer::run`): each gets half the budget.
        config.sort_memory / 2,
    )?));
    let threads = config.threads.max(1);
    let mut parsed = futures::stream::iter(table.files.iter().cloned().enumerate())
        .map(|(index, file)| {
            let (storage, plan, dialect, sorter) = (
                storage.clone(),
                plan.clone(),
                dialect.clone(),
                sorter.clone(),
            );
            async move {
                let data: Bytes = storage.get(&file.name).await?;
                tokio::task::spawn_blocking(move || -> Result<(), ImportError> {
                    let buffer = data.clone();
                    let mut pairs: Vec<Kv> = Vec::new();
                    let mut mapping = MappingCache::default();
                    let mut ordinal = 0u64;
                    read_file(data, &file, &dialect, |columns, row, line| {
                        let at = || format!("{}:{line}", file.name);
                        let map = mapping.get(&plan, columns, &at)?;
                        ordinal += 1;
                        pairs.push(plan.pair(row, map, index as u32, line, ordinal, &at)?);
                        if pairs.len() >= 65_536 {
                            let batch = std::mem::take(&mut pairs);
                            sorter
                                .lock()
                                .map_err(|_| ImportError::Worker("sorter poisoned".into()))?
                                .add(batch)?;
                        }
                        Ok(())
                    })?;
                    storage.recycle(buffer);
                    sorter
                        .lock()
                        .map_err(|_| ImportError::Worker("sorter poisoned".into()))?
                        .add(pairs)?;
                    Ok(())
                })
                .await
                .map_err(|e| ImportError::Worker(e.to_string()))?
            }
        })
        .buffer_unordered(threads);
    while let Some(result) = parsed.next().await {
        result?;
    }
    drop(parsed);
    let sorter = Arc::try_unwrap(sorter)
        .map_err(|_| ImportError::Worker("sorter still shared".into()))?
        .into_inner()
        .map_err(|_| ImportError::Worker("sorter poisoned".into()))?;
    let files: Vec<String> = table.files.iter().map(|f| f.name.clone()).collect();
    load_sorted(config, &table.name, plan, sorter, files).await
}

/// Loads a filled sorter's rows into the target in key order: the merge resolves duplicates,
/// `threads` connections run LOAD DATA, and the target must take every row sent.
pub(crate) async fn load_sorted(
    config: &ImportConfig,
    table_name: &sluice_core::TableName,
    plan: &Arc<RowPlan>,
    sorter: Sorter,
    files: Vec<String>,
) -> Result<TableOutcome, ImportError> {
    let runs = sorter.runs();
    let policy = config.on_duplicate;
    let (plan2, plain_name) = (plan.clone(), table_name.plain());
    let mut outcome = load_stream(config, table_name, plan, move |spec, sink| {
        produce(sorter, &plan2, spec, policy, &files, &plain_name, sink)
    })
    .await?;
    outcome.runs = runs;
    outcome.sorted = true;
    Ok(outcome)
}

/// Loads the batches a `producer` makes (on a blocking thread) on `threads` connections with
/// LOAD DATA; the target must take every row sent. A producer that finds its input out of key
/// order stops early: the outcome then says so and the table holds only part of the rows.
pub(crate) async fn load_stream(
    config: &ImportConfig,
    table_name: &sluice_core::TableName,
    plan: &Arc<RowPlan>,
    producer: impl FnOnce(&LoadSpec, BatchSink) -> Result<Produced, ImportError> + Send + 'static,
) -> Result<TableOutcome, ImportError> {
    let threads = config.threads.max(1);

    let (method, batch_bytes, max_row_bytes) =
        method_for(config.wire, config.load_method, &plan.columns);
    let spec = LoadSpec {
        table: table_name.clone(),
        columns: plan.columns.clone(),
        charset: "utf8mb4".to_owned(),
        replace: config.on_duplicate == OnDuplicate::Replace,
        method,
        batch_bytes,
        max_row_bytes,
    };
    let (tx, rx) = mpsc::channel::<(Vec<u8>, u64)>(threads * 2);
    let policy = config.on_duplicate;
    let spec2 = spec.clone();
    let sink = BatchSink::new(tx, config.buffers.clone());
    let producer = tokio::task::spawn_blocking(move || producer(&spec2, sink));
    let rx = Arc::new(Mutex::new(rx));
    let mut loaders = tokio::task::JoinSet::new();
    for _ in 0..threads {
        let (rx, spec, endpoint) = (rx.clone(), spec.clone(), config.target.clone());
        let pool = config.buffers.clone();
        let observer = config.observer.clone();
        loaders.spawn(async move {
            let mut loader = Loader::connect(&endpoint, &spec).await?;
            let mut loaded = 0u64;
            let mut warned = false;
            let mut warnings = Vec::new();
            loop {
                let next = rx.lock().await.recv().await;
                let Some((data, rows)) = next else { break };
                let batch = load_batch(&mut loader, &endpoint, &spec, data, rows).await?;
                observer.rows_loaded(&spec.table, batch.taken);
                loaded += batch.taken;
                warned |= batch.warned;
                // For the next batch of this table or of the next one.
                pool.give(batch.buffer);
                if warnings.len() < 3 {
                    warnings.extend(batch.why);
                }
            }
            loader.quit().await;
            Ok::<(u64, bool, Vec<String>), ImportError>((loaded, warned, warnings))
        });
    }
    let mut loaded = 0u64;
    let mut warned = false;
    let mut load_error = None;
    let mut warnings: Vec<String> = Vec::new();
    while let Some(joined) = loaders.join_next().await {
        match joined.map_err(|e| ImportError::Worker(e.to_string())) {
            Ok(Ok((n, w, why))) => {
                loaded += n;
                warned |= w;
                warnings.extend(why);
            }
            Ok(Err(e)) | Err(e) => {
                load_error.get_or_insert(e);
                rx.lock().await.close();
            }
        }
    }
    let produced = producer
        .await
        .map_err(|e| ImportError::Worker(e.to_string()))?;
    // A loader's error comes first: the producer then only saw the loaders stop.
    if let Some(e) = load_error {
        return Err(e);
    }
    let produced = produced?;
    if produced.out_of_order.is_some() {
        return Ok(TableOutcome {
            rows: loaded,
            duplicates_dropped: 0,
            runs: 0,
            out_of_order: produced.out_of_order,
            sorted: false,
            bulk_inserted: spec.method == LoadMethod::BulkInsert,
            sent: None,
        });
    }
    if loaded != produced.rows && policy != OnDuplicate::Replace {
        return Err(ImportError::Verification {
            table: table_name.plain(),
            reason: format!(
                "{} rows were sent but the target took {loaded} (keys equal under the table's collation, \
                 such as 'a' and 'A', or values the target refuses); the target said: {}",
                produced.rows,
                if warnings.is_empty() {
                    "nothing".to_owned()
                } else {
                    warnings.join("; ")
                }
            ),
        });
    }
    Ok(TableOutcome {
        rows: produced.rows,
        duplicates_dropped: produced.dropped,
        runs: 0,
        out_of_order: None,
        sorted: false,
        bulk_inserted: spec.method == LoadMethod::BulkInsert,
        sent: produced.sent.filter(|_| !warned),
    })
}

/// What a producer sent to the loaders.
#[derive(Debug, Default)]
pub(crate) struct Produced {
    pub(crate) rows: u64,
    /// Duplicate rows the policy dropped.
    pub(crate) dropped: u64,
    /// Where an in-order producer found a key lower than the one before (it stopped there).
    pub(crate) out_of_order: Option<String>,
    /// The fingerprint of every row sent (duplicates dropped or replaced included: it is used
    /// only when none were).
    pub(crate) sent: Option<RowFingerprint>,
}

/// Merges the sorted pairs, resolves duplicates, and sends encoded batches to the loaders.
fn produce(
    sorter: Sorter,
    plan: &RowPlan,
    spec: &LoadSpec,
    policy: OnDuplicate,
    files: &[String],
    table: &str,
    sink: BatchSink,
) -> Result<Produced, ImportError> {
    let columns = plan.columns.len();
    let mut out = Produced::default();
    let mut buf = sink.buffer();
    let mut rows_in_buf = 0u64;
    let mut examples = Vec::new();
    let mut pending: Option<Kv> = None;
    let origin = |value: &[u8]| {
        decode_value(value, columns)
            .map(|(_, f, l)| {
                format!(
                    "{}:{l}",
                    files.get(f as usize).map(String::as_str).unwrap_or("?")
                )
            })
            .unwrap_or_default()
    };
    let key_text = |value: &[u8]| {
        decode_value(value, columns)
            .map(|(cells, _, _)| plan.key_text(&cells))
            .unwrap_or_default()
    };
    let mut sent = SentFingerprint::new(plan);
    let emit = |kv: Kv,
                buf: &mut Vec<u8>,
                rows_in_buf: &mut u64,
                sent: &mut Option<SentFingerprint>|
     -> Result<(), ImportError> {
        let (cells, _, _) = decode_value(&kv.1, columns)
            .ok_or_else(|| ImportError::Worker("corrupt sort record".into()))?;
        let start = buf.len();
        spec.encode_row(buf, &cells);
        spec.check_row_size(buf.len() - start)?;
        if let Some(s) = sent {
            s.add(&cells);
        }
        *rows_in_buf += 1;
        if buf.len() >= spec.batch_bytes {
            let batch = std::mem::replace(buf, sink.buffer());
            sink.send(batch, *rows_in_buf)?;
            *rows_in_buf = 0;
        }
        Ok(())
    };
    let keyed = !plan.key.is_empty();
    for kv in sorter.finish()? {
        let kv = kv?;
        match &pending {
            Some(p) if keyed && p.0 == kv.0 => {
                out.dropped += 1;
                match policy {
                    OnDuplicate::Error => {
                        examples.push(format!(
                            "{} at {} and {}",
                            key_text(&p.1),
                            origin(&p.1),
                            origin(&kv.1)
                        ));
                        if examples.len() >= 5 {
                            break;
                        }
                    }
                    OnDuplicate::Replace => pending = Some(kv),
                    OnDuplicate::Ignore => {}
                }
            }
            _ => {
                if let Some(p) = pending.replace(kv) {
                    out.rows += 1;
                    emit(p, &mut buf, &mut rows_in_buf, &mut sent)?;
                }
            }
        }
    }
    if !examples.is_empty() {
        return Err(ImportError::Duplicates {
            table: table.to_owned(),
            examples,
        });
    }
    if let Some(p) = pending {
        out.rows += 1;
        emit(p, &mut buf, &mut rows_in_buf, &mut sent)?;
    }
    if rows_in_buf > 0 {
        sink.send(buf, rows_in_buf)?;
    }
    out.sent = sent.map(SentFingerprint::finish);
    Ok(out)
}

/// After the load: the target's row count equals what was sent, and for Sluice dumps the
/// order-independent fingerprint equals the dump's: that of the rows sent when the target took
/// them all without a warning (`sent.rs`), else that of the rows read back from the target.
async fn verify(
    conn: &mut Conn,
    endpoint: &Endpoint,
    table: &TableSource,
    info: &TableInfo,
    outcome: &TableOutcome,
) -> Result<(), ImportError> {
    let fail = |reason: String| ImportError::Verification {
        table: table.name.plain(),
        reason,
    };
    let count = target::row_count(conn, endpoint, &table.name).await?;
    if count != outcome.rows {
        return Err(fail(format!(
            "the target holds {count} rows, {} were loaded",
            outcome.rows
        )));
    }
    if let Some(expected) = table.expected_rows
        && outcome.duplicates_dropped == 0
        && expected != count
    {
        return Err(fail(format!(
            "the dump recorded {expected} rows, the target holds {count}"
        )));
    }
    let Some(parts) = &table.expected_fingerprint else {
        return Ok(());
    };
    if outcome.duplicates_dropped > 0 {
        return Ok(());
    }
    let mut expected = 0u64;
    for hex in parts {
        expected = expected.wrapping_add(
            u64::from_str_radix(hex, 16)
                .map_err(|_| fail(format!("bad fingerprint `{hex}` in the metadata")))?,
        );
    }
    // Parquet holds typed values (a DECIMAL as a number, a DATETIME as microseconds), which the
    // importer prints in a form of its own (`0` for `0.0000000000`): only the SQL and CSV texts
    // are the source's own, so only their sent fingerprint can equal the dump's.
    let texts = table
        .files
        .iter()
        .all(|f| f.format != sluice_core::layout::DataFormat::Parquet);
    let sent = outcome.sent.as_ref().filter(|_| texts);
    let got = match sent {
        Some(sent) => sent.hex(),
        None => read_back_fingerprint(conn, endpoint, table, info).await?,
    };
    if got != format!("{expected:016x}") {
        let what = if sent.is_some() { "sent" } else { "read back" };
        return Err(fail(format!(
            "the fingerprint of the rows {what} is {got}, the dump recorded {expected:016x}"
        )));
    }
    Ok(())
}

/// The fingerprint of a table's rows as the target prints them.
async fn read_back_fingerprint(
    conn: &mut Conn,
    endpoint: &Endpoint,
    table: &TableSource,
    info: &TableInfo,
) -> Result<String, ImportError> {
    let mut got = RowFingerprint::new(table.fingerprint_version);
    let mut result = conn
        .query_iter(format!("SELECT {} FROM {}", info.select_list(), table.name))
        .await
        .map_err(|e| endpoint.error(format!("read back {}", table.name.plain()), e))?;
    while let Some(row) = result
        .next()
        .await
        .map_err(|e| endpoint.error(format!("read back {}", table.name.plain()), e))?
    {
        let c = cells(&row);
        got.add_row(c.iter().map(|v| v.as_deref()));
    }
    Ok(got.hex())
}

/// Restores target settings an interrupted `--import-mode` run left changed
/// (`sluice import --restore-target-settings`, and the CLI after Ctrl-C); returns how many.
pub async fn restore_target_settings(
    target: &sluice_core::Endpoint,
    meta_schema: &str,
) -> Result<usize, ImportError> {
    let mut conn = target.connect().await?;
    import_mode::restore(&mut conn, target, meta_schema).await
}
