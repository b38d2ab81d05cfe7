//! The streamer's own view of each replicated table: column names, types, signedness,
//! generated columns, primary and unique keys.
//!
//! Why the target and not the source: a row event must be decoded against the table as it was
//! when the event was written, not as it is now (the source may have run more DDL since). The
//! streamer applies DDL to the target in binlog order, before it decodes any row event that
//! follows the DDL (the reader waits for the DDL to be applied, then drops the cached tables),
//! so the target's `information_schema` always shows the schema at the reader's position.
//! MariaDB's default `binlog_row_metadata=NO_LOG` sends neither names nor signedness, so this
//! view is what makes `INT UNSIGNED` 4294967295 come out right.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{ColumnKind, CoreError, Endpoint, TableName, quote_string};

/// One column, in table order (generated columns included: the binlog carries them).
#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    /// `information_schema.COLUMNS.DATA_TYPE`, lower case.
    pub data_type: String,
    pub kind: ColumnKind,
    pub unsigned: bool,
    /// Virtual or stored generated: never written, the target computes it.
    pub generated: bool,
    /// Character columns whose bytes can go into a quoted utf8mb4 literal as they are; other
    /// character sets are written as hex so that the target takes the bytes unconverted.
    pub utf8: bool,
}

/// A table as the target knows it.
#[derive(Debug, Clone)]
pub struct TableDef {
    pub name: TableName,
    pub columns: Vec<ColumnDef>,
    /// Columns identifying a row in WHERE clauses: the primary key; else empty (all columns).
    pub primary_key: Vec<usize>,
    /// Every unique key (primary included), for causality between parallel workers.
    pub unique_keys: Vec<Vec<usize>>,
}

impl TableDef {
    pub fn has_primary_key(&self) -> bool {
        !self.primary_key.is_empty()
    }
}

/// Tables looked up on the target on first use and cached until the next DDL.
pub struct SchemaView {
    target: Endpoint,
    conn: Option<Conn>,
    tables: HashMap<TableName, Arc<TableDef>>,
}

impl SchemaView {
    pub fn new(target: Endpoint) -> SchemaView {
        SchemaView {
            target,
            conn: None,
            tables: HashMap::new(),
        }
    }

    /// Forgets every cached table: called after each DDL has been applied to the target.
    pub fn invalidate(&mut self) {
        self.tables.clear();
    }

    /// The table as the target has it now; `None` when the target has no such table.
    pub async fn table(&mut self, name: &TableName) -> Result<Option<Arc<TableDef>>, CoreError> {
        if let Some(t) = self.tables.get(name) {
            return Ok(Some(t.clone()));
        }
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(self.target.connect().await?),
        };
        let loaded = match load_table(conn, &self.target, name).await {
            Ok(t) => t,
            Err(e) => {
                // A broken connection is replaced on the next call.
                self.conn = None;
                return Err(e);
            }
        };
        let Some(def) = loaded else { return Ok(None) };
        let def = Arc::new(def);
        self.tables.insert(name.clone(), def.clone());
        Ok(Some(def))
    }
}

async fn load_table(
    conn: &mut Conn,
    endpoint: &Endpoint,
    name: &TableName,
) -> Result<Option<TableDef>, CoreError> {
    let err = |e| endpoint.error(format!("read the columns of {}", name.plain()), e);
    let where_ = format!(
        "TABLE_SCHEMA = {} AND TABLE_NAME = {}",
        quote_string(&name.database),
        quote_string(&name.table)
    );
    let rows: Vec<(String, String, String, String, Option<String>)> = conn
        .query(format!(
            "SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), UPPER(EXTRA), \
             LOWER(CHARACTER_SET_NAME) FROM information_schema.COLUMNS WHERE {where_} \
             ORDER BY ORDINAL_POSITION"
        ))
        .await
        .map_err(err)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let columns: Vec<ColumnDef> = rows
        .into_iter()
        .map(|(name, data_type, column_type, extra, charset)| ColumnDef {
            kind: ColumnKind::from_data_type(&data_type),
            unsigned: column_type.contains("unsigned"),
            generated: extra.contains("GENERATED") || extra.contains("VIRTUAL"),
            utf8: charset
                .as_deref()
                .is_some_and(|c| matches!(c, "utf8mb4" | "utf8mb3" | "utf8" | "ascii")),
            name,
            data_type,
        })
        .collect();
    let keys: Vec<(String, String)> = conn
        .query(format!(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE {where_} AND NON_UNIQUE = 0 ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX"
        ))
        .await
        .map_err(err)?;
    let mut unique_keys: Vec<(String, Vec<usize>)> = Vec::new();
    for (index, column) in keys {
        let Some(pos) = columns.iter().position(|c| c.name == column) else {
            continue;
        };
        match unique_keys.last_mut() {
            Some((name, cols)) if *name == index => cols.push(pos),
            _ => unique_keys.push((index, vec![pos])),
        }
    }
    let primary_key = unique_keys
        .iter()
        .find(|(n, _)| n == "PRIMARY")
        .map(|(_, c)| c.clone())
        .unwrap_or_default();
    Ok(Some(TableDef {
        name: name.clone(),
        columns,
        primary_key,
        unique_keys: unique_keys.into_iter().map(|(_, c)| c).collect(),
    }))
}
