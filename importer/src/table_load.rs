//! One table's rows from the dump into the target: streamed in file order while the keys come
//! in order (`ordered.rs`), else parsed in parallel into the sorter and merged (`sort.rs`);
//! either way batched into the loaders (`load.rs`) on several connections. The way back to
//! LOAD DATA for a table bulk execution cannot take lives here too ([`import_table`]).

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use sluice_core::Storage;
use sluice_core::layout::{CsvDialect, RowFingerprint};
use tokio::sync::{Mutex, mpsc};

use crate::ImportError;
use crate::config::{ImportConfig, LoadMethod, OnDuplicate};
use crate::kv::decode_value;
use crate::load::{BatchSink, LoadSpec, Loader, load_batch};
use crate::method::method_for;
use crate::ordered::{InOrder, produce_in_order};
use crate::plan::{MappingCache, RowPlan};
use crate::read::read_file;
use crate::sent::SentFingerprint;
use crate::sort::{Kv, Sorter};
use crate::source::TableSource;

/// What loading one table did, for the summary, the checkpoint and the verification.
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
    /// Triggers made after the rows (set by `run.rs`).
    pub(crate) triggers: usize,
    /// The fingerprint of the rows sent, when the target took them all without a warning
    /// (see `sent.rs`); `None` means: verify by reading the table back.
    pub(crate) sent: Option<RowFingerprint>,
}

/// Loads a table's rows (see [`import_table_by`]). Under `--load-method auto`, a table with a
/// row too big for one bulk execution, or whose bulk execution the target refused, is emptied
/// and loaded again with LOAD DATA: it streams, and it keeps LOAD DATA's rules for bad values.
///
/// `held_rows`: the table held rows before this import (`--no-schema` into the user's table).
/// Those rows are never emptied: the load goes through the sort from the start, and a table
/// bulk execution cannot take fails with advice instead of being loaded again.
pub(crate) async fn import_table(
    config: &ImportConfig,
    storage: &Storage,
    table: &TableSource,
    plan: &RowPlan,
    dialect: &CsvDialect,
    held_rows: bool,
) -> Result<TableOutcome, ImportError> {
    match import_table_by(config, storage, table, plan, dialect, held_rows).await {
        Err(e @ (ImportError::RowTooBigForBulk { .. } | ImportError::BulkRefused { .. }))
            if held_rows =>
        {
            Err(ImportError::Target(format!(
                "{e}; {} held rows before this import, so Sluice does not empty it to load it \
                 again with LOAD DATA: run again with --load-method load-data",
                table.name.plain()
            )))
        }
        Err(e @ (ImportError::RowTooBigForBulk { .. } | ImportError::BulkRefused { .. }))
            if config.load_method != LoadMethod::BulkInsert =>
        {
            tracing::info!(table = %table.name.plain(), reason = %e, "loading the table again with LOAD DATA");
            empty_table(config, table, "load it again").await?;
            let mut streamed = config.clone();
            streamed.wire.bulk = false;
            import_table_by(&streamed, storage, table, plan, dialect, held_rows).await
        }
        other => other,
    }
}

/// Loads a table's rows: in file order when they come in key order (`ordered.rs`), else, once
/// that finds a key out of order, through the sort after emptying what it loaded (from the
/// start when the table `held_rows`: see [`import_table`]).
async fn import_table_by(
    config: &ImportConfig,
    storage: &Storage,
    table: &TableSource,
    plan: &RowPlan,
    dialect: &CsvDialect,
    held_rows: bool,
) -> Result<TableOutcome, ImportError> {
    let plan = Arc::new(plan.clone());
    if held_rows {
        return import_sorted(config, storage, table, &plan, dialect).await;
    }
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
    // InnoDB refuses to TRUNCATE a table another table's foreign key names (ERROR 1701),
    // even an empty one, unless the checks are off.
    conn.query_drop(format!(
        "SET SESSION foreign_key_checks = 0; TRUNCATE TABLE {}",
        table.name
    ))
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
            triggers: 0,
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
        triggers: 0,
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
