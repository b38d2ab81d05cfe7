//! The import from start to finish: discover the dump, prepare the target, then per table:
//! parse files in parallel into key/value pairs, sort (spilling runs past the memory budget),
//! merge, resolve duplicates, load in key order on several connections, verify, checkpoint.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::Serialize;
use sluice_core::layout::{CsvDialect, RowFingerprint};
use sluice_core::{Endpoint, Storage, TableInfo, cells};

use crate::checkpoint::{Checkpoints, TableState};
use crate::config::{DeferIndexes, ImportConfig};
use crate::plan::RowPlan;
use crate::source::{DumpSource, TableSource, discover};
use crate::table_load::{TableOutcome, import_table};
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
    /// Views created after the tables (see `views.rs`).
    pub views: usize,
    /// Triggers made after their tables' rows (see `objects.rs`).
    pub triggers: usize,
    /// Functions, procedures and events made last (see `objects.rs`).
    pub routines_and_events: usize,
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
                views: Vec::new(),
                post_files: Vec::new(),
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
        source
            .views
            .retain(|v| config.filter.matches(&v.name.database, &v.name.table));
        config
            .routes
            .check_distinct(source.tables.iter().map(|t| &t.dump_name))?;
        for t in &mut source.tables {
            t.name = config.routes.route(&t.dump_name);
        }
        for v in &mut source.views {
            v.name = config.routes.route(&v.dump_name);
        }
        // Routines and events go with the databases the filter keeps tables or views of.
        let kept: std::collections::HashSet<String> = source
            .tables
            .iter()
            .map(|t| t.dump_name.database.clone())
            .chain(source.views.iter().map(|v| v.dump_name.database.clone()))
            .collect();
        source.post_files.retain(|p| kept.contains(&p.database));
        if let Some(dialect) = &config.csv
            && source.metadata.is_none()
        {
            source.csv = dialect.clone();
        }
        if !config.no_schema
            && let Some(t) = source.tables.iter().find(|t| t.schema_file.is_empty())
        {
            return Err(ImportError::Input(format!(
                "{}: no schema file for {} ({}); pass --no-schema to load into a table that \
                 exists on the target",
                config.input,
                t.dump_name.plain(),
                t.files.first().map(|f| f.name.as_str()).unwrap_or_default()
            )));
        }
        if source.tables.is_empty() && source.views.is_empty() {
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
            let names = source.tables.iter().map(|t| (&t.name, &t.dump_name));
            let view_names = source.views.iter().map(|v| (&v.name, &v.dump_name));
            for (name, dump_name) in names.chain(view_names) {
                if !created.insert(name.database.clone()) {
                    continue;
                }
                let from = &dump_name.database;
                let file = match source.database_schemas.get(from) {
                    Some(f) if config.routes.route_database(from) == name.database => f.as_deref(),
                    _ => None,
                };
                target::ensure_database(
                    &mut conn,
                    endpoint,
                    &storage,
                    &name.database,
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
            views: 0,
            triggers: 0,
            routines_and_events: 0,
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
                    summary.triggers += outcome.triggers;
                }
            }
        }
        if !shared.config.no_schema && !shared.source.views.is_empty() {
            let endpoint = &shared.config.target;
            let mut conn = endpoint.connect().await?;
            summary.views = crate::views::create_views(
                &mut conn,
                endpoint,
                &shared.storage,
                &shared.source.views,
                &shared.config.routes,
            )
            .await?;
        }
        if !shared.config.no_schema {
            let endpoint = &shared.config.target;
            for post in &shared.source.post_files {
                let mut conn = endpoint.connect().await?;
                summary.routines_and_events += crate::objects::run_object_file(
                    &mut conn,
                    endpoint,
                    &shared.storage,
                    post,
                    &shared.config.routes,
                )
                .await?;
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
    if state.is_some_and(TableState::is_done)
        && target::lookup(&mut conn, endpoint, &table.name)
            .await?
            .is_none()
    {
        tracing::warn!(table = %table.name.plain(), "checkpointed as imported but gone from the target: importing again");
        state = None;
    }
    if state == Some(TableState::Appending) && !config.restart {
        return Err(ImportError::Target(format!(
            "{} held rows before an import that stopped while loading into it; Sluice cannot \
             tell those rows from the ones it loaded, so it does not empty the table: put the \
             table back as it was before the import, then run again with --restart",
            table.name.plain()
        )));
    }
    if config.restart && state.is_some_and(TableState::held_rows) {
        // The user has put the table back as it was before the import: load it as new, and
        // never empty it.
        state = None;
    }
    if config.restart && state.is_some() {
        // --restart: a table an earlier run loaded (all or part) is emptied and loaded again.
        state = Some(TableState::Loading);
    }
    if state.is_some_and(TableState::is_done) {
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
    // --no-schema into the user's table: rows it held before are never emptied.
    let rows_before = if config.no_schema && state.is_none() {
        target::row_count(&mut conn, endpoint, &table.name).await?
    } else {
        0
    };
    let held_rows = rows_before > 0;
    let loading = if held_rows {
        TableState::Appending
    } else {
        TableState::Loading
    };
    checkpoints
        .mark(&mut conn, endpoint, &table.name, loading, 0)
        .await?;
    let columns = source.metadata.as_ref().and_then(|m| {
        m.tables
            .iter()
            .find(|x| x.database == table.dump_name.database && x.table == table.dump_name.table)
            .map(|x| x.columns.clone())
    });
    let plan = RowPlan::new(&info, columns.as_deref())?
        .with_fingerprint(table.fingerprint_version)
        .with_defaults(crate::defaults::column_defaults(&mut conn, endpoint, &info).await?);
    let outcome = import_table(config, storage, table, &plan, &source.csv, held_rows).await?;
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
    verify(&mut conn, endpoint, table, &info, &outcome, rows_before).await?;
    let mut outcome = outcome;
    // Triggers once the rows are in, so that they do not fire for them (and before `done`:
    // a table whose triggers failed is loaded again by the next run, triggers and all).
    if let Some(file) = table.triggers_file.as_ref().filter(|_| !config.no_schema) {
        let objects = crate::objects::ObjectFile {
            database: table.dump_name.database.clone(),
            file: file.clone(),
        };
        outcome.triggers =
            crate::objects::run_object_file(&mut conn, endpoint, storage, &objects, &config.routes)
                .await?;
    }
    checkpoints
        .mark(
            &mut conn,
            endpoint,
            &table.name,
            if held_rows {
                TableState::Appended
            } else {
                TableState::Done
            },
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

/// After the load: the target's row count equals what was sent, and for Sluice dumps the
/// order-independent fingerprint equals the dump's: that of the rows sent when the target took
/// them all without a warning (`sent.rs`), else that of the rows read back from the target.
async fn verify(
    conn: &mut Conn,
    endpoint: &Endpoint,
    table: &TableSource,
    info: &TableInfo,
    outcome: &TableOutcome,
    rows_before: u64,
) -> Result<(), ImportError> {
    let fail = |reason: String| ImportError::Verification {
        table: table.name.plain(),
        reason,
    };
    let total = target::row_count(conn, endpoint, &table.name).await?;
    let count = total.saturating_sub(rows_before);
    if count != outcome.rows {
        return Err(fail(if rows_before > 0 {
            format!(
                "the target holds {total} rows: {rows_before} from before the import, and {} were loaded",
                outcome.rows
            )
        } else {
            format!(
                "the target holds {count} rows, {} were loaded",
                outcome.rows
            )
        }));
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
        // Reading back would count the rows the table held before the import too.
        None if rows_before > 0 => {
            tracing::info!(table = %table.name.plain(), "the table held rows before the import: its fingerprint is not compared");
            return Ok(());
        }
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
