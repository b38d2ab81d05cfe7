//! Import checkpoints in the target's meta schema: which tables of which dump are being loaded
//! or done.
//!
//! Order of durability: a table is marked `loading` (committed) before its first row is sent
//! and `done` only after its rows are loaded and verified. A rerun skips `done` tables and
//! empties a `loading` table before loading it again, so an import killed at any moment ends,
//! when run again, with exactly the dump's rows: none lost, none doubled, finished tables not
//! redone. A table that held rows before the import (`--no-schema`) is marked `appending`
//! instead, and a rerun refuses it rather than empty the user's rows with the loaded ones.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{Endpoint, TableName, quote_ident};

use crate::ImportError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableState {
    Loading,
    /// Loading into a table that held rows before the import (`--no-schema`): a rerun cannot
    /// tell those rows from the loaded ones, so it must not empty the table.
    Appending,
    Done,
    /// Done, into a table that held rows before: `--restart` must not empty it either.
    Appended,
}

impl TableState {
    pub fn is_done(self) -> bool {
        matches!(self, TableState::Done | TableState::Appended)
    }

    /// The table held rows of its own before the import loaded into it.
    pub fn held_rows(self) -> bool {
        matches!(self, TableState::Appending | TableState::Appended)
    }
}

pub struct Checkpoints {
    table: String,
    dump_id: String,
}

impl Checkpoints {
    /// Creates the meta schema and table if needed.
    pub async fn open(
        conn: &mut Conn,
        endpoint: &Endpoint,
        schema: &str,
        dump_id: &str,
    ) -> Result<Checkpoints, ImportError> {
        let table = format!("{}.`import_tables`", quote_ident(schema));
        let err = |e| {
            ImportError::from(endpoint.error(format!("create the checkpoint table {table}"), e))
        };
        conn.query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            quote_ident(schema)
        ))
        .await
        .map_err(err)?;
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {table} (dump_id VARCHAR(255) NOT NULL, db VARCHAR(64) NOT NULL, \
             tbl VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL, rows_loaded BIGINT UNSIGNED NOT NULL DEFAULT 0, \
             updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3), \
             PRIMARY KEY (dump_id, db, tbl)) DEFAULT CHARSET = utf8mb4"
        ))
        .await
        .map_err(|e| ImportError::from(endpoint.error(format!("create the checkpoint table {table}"), e)))?;
        let dump_id: String = dump_id.chars().take(255).collect();
        Ok(Checkpoints { table, dump_id })
    }

    pub async fn state(
        &self,
        conn: &mut Conn,
        endpoint: &Endpoint,
        t: &TableName,
    ) -> Result<Option<TableState>, ImportError> {
        let state: Option<String> = conn
            .exec_first(
                format!(
                    "SELECT state FROM {} WHERE dump_id = ? AND db = ? AND tbl = ?",
                    self.table
                ),
                (&self.dump_id, &t.database, &t.table),
            )
            .await
            .map_err(|e| endpoint.error("read a checkpoint", e))?;
        Ok(match state.as_deref() {
            Some("done") => Some(TableState::Done),
            Some("appending") => Some(TableState::Appending),
            Some("appended") => Some(TableState::Appended),
            Some(_) => Some(TableState::Loading),
            None => None,
        })
    }

    pub async fn mark(
        &self,
        conn: &mut Conn,
        endpoint: &Endpoint,
        t: &TableName,
        state: TableState,
        rows: u64,
    ) -> Result<(), ImportError> {
        let name = match state {
            TableState::Loading => "loading",
            TableState::Appending => "appending",
            TableState::Done => "done",
            TableState::Appended => "appended",
        };
        conn.exec_drop(
            format!(
                "REPLACE INTO {} (dump_id, db, tbl, state, rows_loaded) VALUES (?, ?, ?, ?, ?)",
                self.table
            ),
            (&self.dump_id, &t.database, &t.table, name, rows),
        )
        .await
        .map_err(|e| ImportError::from(endpoint.error("write a checkpoint", e)))
    }
}
