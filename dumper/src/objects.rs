//! Triggers, stored routines and events (`--triggers`, `--routines`, `--events`), read inside
//! the snapshot and written under mydumper's names, which the importer reads from either tool:
//! `{db}.{table}-schema-triggers.sql` per table, `{db}-schema-post.sql` per database.
//!
//! Each object is written as `SHOW CREATE` gives it, between `DELIMITER ;;` lines (a body keeps
//! its own `;`), after the `sql_mode` it was created under (its behaviour depends on it).
//! Routines and events are dropped first, so that loading the file again makes them again.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{Endpoint, Selection, Storage, quote_ident, quote_string};

use crate::{DumpConfig, DumpError};

/// Writes the objects `config` asks for; returns how many.
pub(crate) async fn write_objects(
    conn: &mut Conn,
    endpoint: &Endpoint,
    storage: &Storage,
    selection: &Selection,
    config: &DumpConfig,
) -> Result<usize, DumpError> {
    let mut written = 0;
    if config.triggers {
        for t in &selection.tables {
            let names: Vec<String> = conn
                .exec(
                    "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS \
                     WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? ORDER BY ACTION_ORDER",
                    (&t.name.database, &t.name.table),
                )
                .await
                .map_err(|e| endpoint.error(format!("list the triggers of {}", t.name.plain()), e))?;
            if names.is_empty() {
                continue;
            }
            let mut text = String::new();
            for name in &names {
                let what = format!(
                    "TRIGGER {}.{}",
                    quote_ident(&t.name.database),
                    quote_ident(name)
                );
                text.push_str(&show_create(conn, endpoint, &what, 2).await?);
            }
            written += names.len();
            let file = format!("{}.{}-schema-triggers.sql", t.name.database, t.name.table);
            storage.put(&file, text).await?;
        }
    }
    let databases: std::collections::BTreeSet<&str> = selection
        .tables
        .iter()
        .map(|t| t.name.database.as_str())
        .collect();
    for db in databases {
        let mut text = String::new();
        let mut kinds = Vec::new();
        if config.routines {
            kinds.push((
                "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES \
                 WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
                2,
            ));
        }
        if config.events {
            kinds.push((
                "SELECT 'EVENT', EVENT_NAME FROM information_schema.EVENTS \
                 WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME",
                3,
            ));
        }
        for (list, column) in kinds {
            let objects: Vec<(String, String)> = conn
                .exec(list, (db,))
                .await
                .map_err(|e| endpoint.error(format!("list the routines and events of {db}"), e))?;
            for (kind, name) in objects {
                text.push_str(&format!("DROP {kind} IF EXISTS {};\n", quote_ident(&name)));
                let what = format!("{kind} {}.{}", quote_ident(db), quote_ident(&name));
                text.push_str(&show_create(conn, endpoint, &what, column).await?);
                written += 1;
            }
        }
        if !text.is_empty() {
            storage.put(&format!("{db}-schema-post.sql"), text).await?;
        }
    }
    Ok(written)
}

/// `SHOW CREATE {what}`'s statement (in column `column`) under its `sql_mode` (column 1),
/// between `DELIMITER ;;` lines.
async fn show_create(
    conn: &mut Conn,
    endpoint: &Endpoint,
    what: &str,
    column: usize,
) -> Result<String, DumpError> {
    let row: Option<mysql_async::Row> = conn
        .query_first(format!("SHOW CREATE {what}"))
        .await
        .map_err(|e| endpoint.error(format!("SHOW CREATE {what}"), e))?;
    let cell = |i: usize| -> Option<String> {
        row.as_ref()
            .and_then(|r| r.get_opt::<Option<String>, _>(i))
            .and_then(Result::ok)
            .flatten()
    };
    let create = cell(column).ok_or_else(|| {
        DumpError::Unsupported(format!(
            "SHOW CREATE {what} gave no statement: the dump user needs the privilege to read its definition"
        ))
    })?;
    let mode = cell(1).unwrap_or_default();
    Ok(format!(
        "SET SESSION sql_mode = {};\nDELIMITER ;;\n{create};;\nDELIMITER ;\n",
        quote_string(&mode)
    ))
}
