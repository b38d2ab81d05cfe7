//! Single-file dumps as `mysqldump` (and hand-written scripts) make them: one SQL file with
//! `CREATE DATABASE`, `USE`, `CREATE TABLE`, `INSERT` and client `source FILE` commands.
//!
//! Statements run on the target in file order, as the `mariadb` client would run them, except:
//! INSERT rows go through the same sort-and-load pipeline as a dump folder (loaded after the
//! whole script has been read, in key order); `LOCK/UNLOCK TABLES` are skipped (the loaders
//! use other connections); `CREATE TRIGGER` runs after the data, so that triggers do not fire
//! on rows that are being restored; `SELECT`s (progress messages in such files) are skipped.
//! There are no checkpoints: such a script drops and creates its own tables, so a rerun
//! starts over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::ddl::route_statement;
use sluice_core::{Storage, TableName, quote_ident};

use crate::cell::Row;
use crate::config::ImportConfig;
use crate::insert::{InsertError, insert_head, insert_rows};
use crate::plan::RowPlan;
use crate::read::decompress;
use crate::run::ImportSummary;
use crate::sort::{Kv, Sorter};
use crate::source::{safe_name, split_data_name};
use crate::sql_reader::SqlReader;
use crate::table_load::load_sorted;
use crate::{ImportError, target};

struct Collector {
    plan: Arc<RowPlan>,
    sorter: Sorter,
    ordinal: u64,
    pending: Vec<Kv>,
}

struct Script<'a> {
    config: &'a ImportConfig,
    storage: &'a Storage,
    conn: Conn,
    current_db: Option<String>,
    order: Vec<TableName>,
    tables: HashMap<TableName, Collector>,
    triggers: Vec<String>,
    files: Vec<String>,
    depth: usize,
}

fn starts_ci(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Imports a single SQL file `name` found in `storage`.
pub async fn run_script(
    config: &ImportConfig,
    storage: &Storage,
    name: &str,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    // A script's rows are parsed once, into the sorter, so a table cannot be loaded again
    // with LOAD DATA: tables with long values go that way from the start.
    let mut config = config.clone();
    config.wire.bulk_long_values = false;
    let config = &config;
    let endpoint = &config.target;
    let mut conn = endpoint.connect().await?;
    conn.query_drop("SET SESSION foreign_key_checks = 0, sql_mode = 'NO_AUTO_VALUE_ON_ZERO'")
        .await
        .map_err(|e| endpoint.error("prepare the script session", e))?;
    let mut script = Script {
        config,
        storage,
        conn,
        // `mysqldump db > f.sql` writes no USE: its statements run in the database the
        // target URL names (`mysql://…/db`), as `mysql db < f.sql` runs them.
        current_db: config.target.database.clone(),
        order: Vec::new(),
        tables: HashMap::new(),
        triggers: Vec::new(),
        files: Vec::new(),
        depth: 0,
    };
    script.run_file(name).await?;
    let Script {
        mut conn,
        order,
        mut tables,
        triggers,
        files,
        ..
    } = script;
    let mut summary = ImportSummary {
        input: config.input.clone(),
        layout: "mysqldump".to_owned(),
        tables: order.len(),
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
    for name in &order {
        let Some(mut c) = tables.remove(name) else {
            continue;
        };
        c.sorter.add(std::mem::take(&mut c.pending))?;
        let before = target::row_count(&mut conn, endpoint, name).await?;
        let outcome = load_sorted(config, name, &c.plan, c.sorter, files.clone()).await?;
        let after = target::row_count(&mut conn, endpoint, name).await?;
        if after != before + outcome.rows {
            return Err(ImportError::Verification {
                table: name.plain(),
                reason: format!(
                    "{} rows were loaded but the table grew by {}",
                    outcome.rows,
                    after - before
                ),
            });
        }
        tracing::info!(table = %name.plain(), rows = outcome.rows, "table imported");
        config.observer.table_done(name, outcome.rows);
        summary.rows += outcome.rows;
        summary.duplicates_dropped += outcome.duplicates_dropped;
        summary.sort_runs_spilled += outcome.runs;
        summary.tables_sorted += 1;
        summary.tables_bulk_inserted += usize::from(outcome.bulk_inserted);
    }
    config.observer.finished();
    for t in &triggers {
        conn.query_drop(t.as_str())
            .await
            .map_err(|e| endpoint.error("create a trigger after the data", e))?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

impl Script<'_> {
    fn run_file<'s>(
        &'s mut self,
        name: &'s str,
    ) -> futures::future::BoxFuture<'s, Result<(), ImportError>> {
        Box::pin(async move {
            safe_name(name)?;
            if self.depth > 16 {
                return Err(ImportError::Input(format!(
                    "{name}: `source` nests more than 16 files deep"
                )));
            }
            let bytes = self.storage.get(name).await?;
            let compression = split_data_name(name)
                .map(|(_, _, c)| c)
                .unwrap_or(sluice_core::layout::Compression::None);
            let mut reader = SqlReader::new(decompress(bytes, compression, name)?, name);
            let file_index = self.files.len() as u32;
            self.files.push(name.to_owned());
            while let Some(statement) = reader.next_statement()? {
                let text = String::from_utf8_lossy(&statement.text).into_owned();
                let trimmed = text.trim();
                let where_ = format!("{name}:{}", statement.line);
                if starts_ci(trimmed, "INSERT") || starts_ci(trimmed, "REPLACE") {
                    self.insert(&statement.text, &where_, file_index, statement.line)
                        .await?;
                } else if starts_ci(trimmed, "SOURCE ") || starts_ci(trimmed, "\\. ") {
                    let file = trimmed
                        .split_once(' ')
                        .map(|(_, f)| f.trim())
                        .unwrap_or("")
                        .to_owned();
                    self.depth += 1;
                    self.run_file(&file).await?;
                    self.depth -= 1;
                } else if starts_ci(trimmed, "SELECT")
                    || starts_ci(trimmed, "LOCK TABLES")
                    || starts_ci(trimmed, "UNLOCK TABLES")
                {
                    continue;
                } else if starts_ci(trimmed, "CREATE")
                    && trimmed.to_ascii_uppercase().contains(" TRIGGER ")
                {
                    self.triggers.push(text.clone());
                } else {
                    // Names are the dump's: `--route` rewrites them before the statement runs.
                    let routes = &self.config.routes;
                    let run = if starts_ci(trimmed, "USE ") {
                        let db = trimmed[4..].trim().trim_matches('`').replace("``", "`");
                        let sql = format!("USE {}", quote_ident(&routes.route_database(&db)));
                        self.current_db = Some(db);
                        sql
                    } else {
                        let schema = self.current_db.as_deref().unwrap_or("");
                        route_statement(trimmed, schema, routes).0
                    };
                    let endpoint = &self.config.target;
                    self.conn
                        .query_drop(run)
                        .await
                        .map_err(|e| endpoint.error(format!("run the statement at {where_}"), e))?;
                }
            }
            Ok(())
        })
    }

    async fn insert(
        &mut self,
        text: &[u8],
        where_: &str,
        file: u32,
        line: u64,
    ) -> Result<(), ImportError> {
        let (insert, values) = insert_head(text)
            .map_err(|(offset, why)| {
                ImportError::Input(format!("{where_}: byte {offset} of the statement: {why}"))
            })?
            .ok_or_else(|| ImportError::Input(format!("{where_}: not an INSERT")))?;
        let database = insert
            .database
            .clone()
            .or_else(|| self.current_db.clone())
            .ok_or_else(|| {
                ImportError::Input(format!(
                    "{where_}: INSERT into `{}` before any USE; name the database in the target URL (mysql://…/db)",
                    insert.table
                ))
            })?;
        let name = self
            .config
            .routes
            .route(&TableName::new(database, insert.table.clone()));
        if !self.tables.contains_key(&name) {
            let endpoint = &self.config.target;
            let info = target::lookup(&mut self.conn, endpoint, &name)
                .await?
                .ok_or_else(|| {
                    ImportError::Target(format!(
                        "{where_}: rows for {}, which the script never created",
                        name.plain()
                    ))
                })?;
            let budget = self.config.sort_memory / 4;
            let defaults =
                crate::defaults::column_defaults(&mut self.conn, endpoint, &info).await?;
            let collector = Collector {
                plan: Arc::new(RowPlan::new(&info, None)?.with_defaults(defaults)),
                sorter: Sorter::new(&self.config.sort_dir, budget)?,
                ordinal: 0,
                pending: Vec::new(),
            };
            self.order.push(name.clone());
            self.tables.insert(name.clone(), collector);
        }
        let Some(c) = self.tables.get_mut(&name) else {
            return Ok(());
        };
        let mapping = c.plan.mapping(insert.columns.as_deref(), where_)?;
        let rows = insert_rows(text, values, &mut Row::default(), |row, _| {
            c.ordinal += 1;
            c.pending.push(
                c.plan
                    .pair(row, &mapping, file, line, c.ordinal, &|| where_.to_owned())?,
            );
            Ok(())
        });
        match rows {
            Ok(()) => {}
            Err(InsertError::Sink(e)) => return Err(e),
            Err(InsertError::Syntax(offset, why)) => {
                return Err(ImportError::Input(format!(
                    "{where_}: byte {offset} of the statement: {why}"
                )));
            }
        }
        if c.pending.len() >= 65_536 {
            let batch = std::mem::take(&mut c.pending);
            c.sorter.add(batch)?;
        }
        Ok(())
    }
}
