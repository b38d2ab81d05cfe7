//! What the stages need to know about each selected table, read from `information_schema`:
//! columns (with the text treatment each needs), primary key, and a row estimate.

use std::collections::BTreeMap;

use crate::{ColumnKind, CoreError, Endpoint, TableFilter, TableName, quote_ident};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub name: String,
    pub kind: ColumnKind,
    /// `information_schema.COLUMNS.DATA_TYPE`, lower case.
    pub data_type: String,
    /// Integer types: declared UNSIGNED.
    pub unsigned: bool,
    /// DECIMAL precision and scale (`NUMERIC_PRECISION`, `NUMERIC_SCALE`).
    pub precision: u8,
    pub scale: u8,
    /// Character set of a character column (`utf8mb4`, `latin1`, …); `None` for other types.
    pub charset: Option<String>,
    /// The column accepts NULL (`IS_NULLABLE = 'YES'`).
    pub nullable: bool,
}

#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: TableName,
    /// Dumped columns in table order; generated and system-versioning columns are left out
    /// because they cannot be inserted.
    pub columns: Vec<ColumnInfo>,
    /// Positions in `columns` of the primary key, in key order; empty without a key.
    pub primary_key: Vec<usize>,
    /// The server's row estimate (`TABLE_ROWS`); only a hint for planning.
    pub estimated_rows: u64,
}

impl TableInfo {
    /// `SELECT` list: FLOAT/DOUBLE read as DOUBLE text so that no bits are lost.
    pub fn select_list(&self) -> String {
        let mut out = String::new();
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if c.kind == ColumnKind::Float && c.data_type == "float" {
                out.push_str(&format!("({} + 0e0)", quote_ident(&c.name)));
            } else {
                out.push_str(&quote_ident(&c.name));
            }
        }
        out
    }

    /// `(`a`, `b`)` for INSERT statements and CSV headers.
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    pub fn key_columns(&self) -> Vec<&ColumnInfo> {
        self.primary_key.iter().map(|&i| &self.columns[i]).collect()
    }
}

/// The views selected by the filter (schemas only).
#[derive(Debug, Clone)]
pub struct Selection {
    pub tables: Vec<TableInfo>,
    pub views: Vec<TableName>,
}

/// A condition on `TABLE_SCHEMA`/`TABLE_NAME` that every table `filter` can select meets
/// (`TRUE` when it names no exact databases), and its parameters. The filter still decides:
/// this only spares the server opening tables that cannot be selected.
fn narrowing(filter: &TableFilter) -> (String, Vec<mysql_async::Value>) {
    let Some(names) = filter.exact_names() else {
        return ("TRUE".to_owned(), Vec::new());
    };
    let mut params = Vec::new();
    let terms: Vec<&str> = names
        .into_iter()
        .map(|(database, table)| {
            params.push(database.into());
            match table {
                Some(t) => {
                    params.push(t.into());
                    "(TABLE_SCHEMA = ? AND TABLE_NAME = ?)"
                }
                None => "TABLE_SCHEMA = ?",
            }
        })
        .collect();
    (format!("({})", terms.join(" OR ")), params)
}

/// Lists the base tables and views the filter selects, with columns and primary keys.
pub async fn select_tables(
    conn: &mut Conn,
    endpoint: &Endpoint,
    filter: &TableFilter,
) -> Result<Selection, CoreError> {
    let q = |e| endpoint.error("list tables in information_schema", e);
    // Where the filter names its databases (and tables), only those are asked for: a whole
    // scan opens every table of the server, once per table an import looks up.
    let (only, params) = narrowing(filter);
    let rows: Vec<(String, String, String, Option<u64>)> = conn
        .exec(
            format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS FROM information_schema.TABLES \
                 WHERE {only} ORDER BY TABLE_SCHEMA, TABLE_NAME"
            ),
            params.clone(),
        )
        .await
        .map_err(q)?;
    let mut tables: BTreeMap<TableName, TableInfo> = BTreeMap::new();
    let mut views = Vec::new();
    for (db, name, kind, est) in rows {
        if !filter.matches(&db, &name) {
            continue;
        }
        let table = TableName::new(db, name);
        match kind.as_str() {
            "BASE TABLE" | "SYSTEM VERSIONED" => {
                tables.insert(
                    table.clone(),
                    TableInfo {
                        name: table,
                        columns: Vec::new(),
                        primary_key: Vec::new(),
                        estimated_rows: est.unwrap_or(0),
                    },
                );
            }
            "VIEW" => views.push(table),
            other => {
                tracing::warn!(table = %table.plain(), kind = other, "skipped: not a base table or view")
            }
        }
    }
    if tables.is_empty() && views.is_empty() {
        return Ok(Selection {
            tables: Vec::new(),
            views,
        });
    }

    type ColumnRow = (
        String,
        String,
        String,
        String,
        String,
        String,
        Option<u64>,
        Option<u64>,
        Option<String>,
        String,
    );
    let columns: Vec<ColumnRow> = conn
        .exec(
            format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), UPPER(EXTRA), LOWER(COLUMN_TYPE), \
                 NUMERIC_PRECISION, NUMERIC_SCALE, LOWER(CHARACTER_SET_NAME), IS_NULLABLE \
                 FROM information_schema.COLUMNS WHERE {only} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
            ),
            params.clone(),
        )
        .await
        .map_err(q)?;
    for (db, name, column, data_type, extra, column_type, precision, scale, charset, nullable) in
        columns
    {
        let Some(info) = tables.get_mut(&TableName::new(db, name)) else {
            continue;
        };
        if extra.contains("GENERATED") || extra.contains("ROW START") || extra.contains("ROW END") {
            continue;
        }
        info.columns.push(ColumnInfo {
            name: column,
            kind: ColumnKind::from_data_type(&data_type),
            data_type,
            unsigned: column_type.contains("unsigned"),
            precision: precision.unwrap_or(0).min(255) as u8,
            scale: scale.unwrap_or(0).min(255) as u8,
            charset,
            nullable: nullable == "YES",
        });
    }

    let keys: Vec<(String, String, String)> = conn
        .exec(
            format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE CONSTRAINT_NAME = 'PRIMARY' AND ({only}) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
            ),
            params,
        )
        .await
        .map_err(q)?;
    for (db, name, column) in keys {
        let Some(info) = tables.get_mut(&TableName::new(db, name)) else {
            continue;
        };
        if let Some(pos) = info.columns.iter().position(|c| c.name == column) {
            info.primary_key.push(pos);
        }
    }
    Ok(Selection {
        tables: tables.into_values().collect(),
        views,
    })
}
