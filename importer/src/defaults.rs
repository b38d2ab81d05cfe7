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
            Some(d) if (mariadb || extra.contains("DEFAULT_GENERATED")) && !once_is_enough(d) => {
                defaults.push(ColumnDefault::PerRow(d.to_owned()));
                continue;
            }
            Some(d) if mariadb || extra.contains("DEFAULT_GENERATED") => Some(format!("({d})")),
            // MySQL spells a BIT literal default as written (`b'101'`).
            Some(d) if c.kind == ColumnKind::Bit && d.to_ascii_lowercase().starts_with("b'") => {
                Some(d.to_owned())
            }
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

/// Whether a default expression may be evaluated once for every row: a literal, or the
/// current time (one instant per table, as Lightning fills it). Not `UUID()`, `RAND()` or an
/// expression over other columns, whose value differs from row to row.
fn once_is_enough(expression: &str) -> bool {
    let e = expression.trim();
    let lower = e.to_ascii_lowercase();
    let bare = lower.trim_end_matches(|c: char| c == ')' || c.is_ascii_digit());
    let bare = bare.strip_suffix('(').unwrap_or(bare);
    let literal = e.starts_with('\'')
        || e.starts_with("_")
        || lower.starts_with("b'")
        || lower.starts_with("x'")
        || lower.starts_with("0x")
        || e.parse::<f64>().is_ok()
        || lower == "true"
        || lower == "false";
    literal
        || matches!(
            bare,
            "current_timestamp"
                | "now"
                | "localtime"
                | "localtimestamp"
                | "curdate"
                | "current_date"
                | "curtime"
                | "current_time"
                | "utc_timestamp"
                | "utc_date"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_literals_and_the_current_time_are_evaluated_once() {
        for once in [
            "'abc'",
            "123",
            "-1.5",
            "b'101'",
            "current_timestamp()",
            "current_timestamp(6)",
            "CURRENT_TIMESTAMP",
            "now(3)",
            "curdate()",
            "_utf8mb4'x'",
        ] {
            assert!(once_is_enough(once), "{once}");
        }
        for per_row in [
            "uuid()",
            "rand()",
            "`a` + 1",
            "uuid_short()",
            "nextval(`s`)",
        ] {
            assert!(!once_is_enough(per_row), "{per_row}");
        }
    }
}
