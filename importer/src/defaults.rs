//! The defaults of a target table's columns, for rows that leave columns out (see
//! [`ColumnDefault`]): read from `information_schema.COLUMNS` and evaluated once on the target,
//! so that an expression (`CURRENT_TIMESTAMP(6)`, `UUID()`) is the server's own.
//!
//! `COLUMN_DEFAULT` differs by server: MariaDB (10.2.7+) gives an SQL expression (`'abc'`,
//! `123`, `current_timestamp(6)`, the word `NULL`); MySQL gives the literal's text unquoted and
//! marks an expression `DEFAULT_GENERATED` in `EXTRA`. Each is selected through `QUOTE()` (BIT
//! as its number), and the answers are read back with the dump reader's own literal parser.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{ColumnKind, Endpoint, TableInfo, quote_string};

use crate::ImportError;
use crate::cell::Row;
use crate::insert::insert_rows;
use crate::plan::ColumnDefault;

/// The defaults of `info.columns`, in their order.
pub(crate) async fn column_defaults(
    conn: &mut Conn,
    endpoint: &Endpoint,
    info: &TableInfo,
) -> Result<Vec<ColumnDefault>, ImportError> {
    let what = || format!("read the column defaults of {}", info.name.plain());
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| endpoint.error(what(), e))?;
    let mariadb = version.is_some_and(|v| v.contains("MariaDB"));
    let described: Vec<(String, Option<String>, String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, COLUMN_DEFAULT, IS_NULLABLE, UPPER(EXTRA) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (&info.name.database, &info.name.table),
        )
        .await
        .map_err(|e| endpoint.error(what(), e))?;
    let mut defaults = Vec::with_capacity(info.columns.len());
    // The expressions to evaluate, and the columns they are for.
    let mut selected = Vec::new();
    let mut evaluated = Vec::new();
    for c in &info.columns {
        let Some((_, default, nullable, extra)) = described.iter().find(|d| d.0 == c.name) else {
            defaults.push(ColumnDefault::Unknown);
            continue;
        };
        let expression = match default.as_deref() {
            _ if extra.contains("AUTO_INCREMENT") => {
                defaults.push(ColumnDefault::AutoIncrement);
                continue;
            }
            None if nullable == "YES" => None,
            None => {
                defaults.push(ColumnDefault::Implicit);
                continue;
            }
            Some(d) if mariadb && d.eq_ignore_ascii_case("NULL") => None,
            Some(d) if mariadb || extra.contains("DEFAULT_GENERATED") => Some(format!("({d})")),
            Some(d) => Some(quote_string(d)),
        };
        match expression {
            None => defaults.push(ColumnDefault::Null),
            Some(e) => {
                selected.push(if c.kind == ColumnKind::Bit {
                    format!("COALESCE(CAST({e} AS UNSIGNED), 'NULL')")
                } else {
                    format!("QUOTE({e})")
                });
                evaluated.push(defaults.len());
                defaults.push(ColumnDefault::Unknown);
            }
        }
    }
    if selected.is_empty() {
        return Ok(defaults);
    }
    let row: Option<mysql_async::Row> = conn
        .query_first(format!("SELECT {}", selected.join(", ")))
        .await
        .map_err(|e| endpoint.error(what(), e))?;
    let Some(row) = row else {
        return Ok(defaults);
    };
    // The answers, spelled as SQL literals, read as one row of a dump.
    let mut tuple = b"(".to_vec();
    for i in 0..row.len() {
        if i > 0 {
            tuple.push(b',');
        }
        let text: Option<Vec<u8>> = row.get(i).unwrap_or_default();
        tuple.extend_from_slice(text.as_deref().unwrap_or(b"NULL"));
    }
    tuple.push(b')');
    let mut parsed = Row::default();
    let mut values = Vec::new();
    insert_rows(&tuple, 0, &mut parsed, |r, _| {
        values = r.iter().map(|(k, b)| (k, b.to_vec())).collect();
        Ok(())
    })
    .map_err(|_| {
        ImportError::Target(format!(
            "{}: the target's column defaults did not read back as literals",
            info.name.plain()
        ))
    })?;
    for (i, (kind, bytes)) in evaluated.into_iter().zip(values) {
        defaults[i] = ColumnDefault::Value(kind, bytes);
    }
    Ok(defaults)
}
