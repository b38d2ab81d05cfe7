//! Row-level diff of a chunk whose fingerprints differ: which rows are missing, extra or
//! changed (and in which columns), with the statements that repair the target.
//!
//! With a primary key, both sides list `(key, row hash)` for a range (the chunk, narrowed
//! first by [`crate::bisect`]) and the lists are compared by key; only the differing rows are
//! then read whole. Without a key, both sides
//! count rows per row hash, and surplus copies on either side are the differences.

use std::collections::HashMap;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{ColumnKind, Endpoint, TableInfo, cells, quote_ident, sql_literal};

use crate::ChecksumError;
use crate::report::{Difference, DifferenceKind};
use crate::row_hash::HashSql;

/// One side of the comparison: a connection and the endpoint it talks to (for errors).
pub struct Side<'a> {
    pub conn: &'a mut Conn,
    pub endpoint: &'a Endpoint,
}

/// A compared table: its index in the run (for its hash SQL) and its two sides.
#[derive(Clone, Copy)]
pub struct TablePair<'a> {
    pub index: usize,
    pub source: &'a TableInfo,
    pub target: &'a TableInfo,
}

#[derive(Debug, Default)]
pub struct ChunkDiff {
    pub differences: Vec<Difference>,
    pub fixes: Vec<String>,
    pub truncated: bool,
    /// `(key, row hash)` pairs read from both sides to find the differing rows.
    pub rows_listed: u64,
}

impl ChunkDiff {
    /// Adds what another range of the same table found.
    pub fn absorb(&mut self, other: ChunkDiff) {
        self.differences.extend(other.differences);
        self.fixes.extend(other.fixes);
        self.truncated |= other.truncated;
        self.rows_listed += other.rows_listed;
    }
}

type Cells = Vec<Option<Vec<u8>>>;

fn owned_cells(row: &mysql_async::Row) -> Cells {
    cells(row)
        .into_iter()
        .map(|c| c.map(|v| v.into_owned()))
        .collect()
}

fn literal(kind: ColumnKind, value: Option<&[u8]>) -> String {
    let mut out = Vec::new();
    sql_literal(&mut out, kind, value);
    String::from_utf8_lossy(&out).into_owned()
}

fn display(value: Option<&[u8]>) -> String {
    match value {
        None => "NULL".to_owned(),
        Some(v) => String::from_utf8_lossy(v).chars().take(64).collect(),
    }
}

/// `k1 = lit AND k2 = lit` for a key.
fn key_predicate(table: &TableInfo, key: &Cells) -> String {
    table
        .key_columns()
        .iter()
        .zip(key)
        .map(|(c, v)| {
            format!(
                "{} = {}",
                quote_ident(&c.name),
                literal(c.kind, v.as_deref())
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn key_display(table: &TableInfo, key: &Cells) -> String {
    table
        .key_columns()
        .iter()
        .zip(key)
        .map(|(c, v)| format!("{}={}", c.name, display(v.as_deref())))
        .collect::<Vec<_>>()
        .join(", ")
}

fn columns_list(table: &TableInfo) -> String {
    table
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn values_list(table: &TableInfo, row: &Cells) -> String {
    table
        .columns
        .iter()
        .zip(row)
        .map(|(c, v)| literal(c.kind, v.as_deref()))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn query_rows(
    side: &mut Side<'_>,
    sql: String,
    what: &str,
) -> Result<Vec<mysql_async::Row>, ChecksumError> {
    side.conn
        .query(sql)
        .await
        .map_err(|e| side.endpoint.error(what.to_owned(), e).into())
}

async fn fetch_row(
    side: &mut Side<'_>,
    table: &TableInfo,
    key: &Cells,
) -> Result<Option<Cells>, ChecksumError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE {}",
        table.select_list(),
        table.name,
        key_predicate(table, key)
    );
    let rows = query_rows(side, sql, &format!("read a row of {}", table.name.plain())).await?;
    Ok(rows.first().map(owned_cells))
}

/// Diffs one chunk of a table with a primary key.
pub async fn keyed_chunk(
    source: &mut Side<'_>,
    target: &mut Side<'_>,
    hash: &HashSql,
    pair: TablePair<'_>,
    predicate: Option<&str>,
    limit: usize,
) -> Result<ChunkDiff, ChecksumError> {
    let (t, table, target_table) = (pair.index, pair.source, pair.target);
    let sql = hash.row_hashes_sql(t, table, predicate);
    let target_sql = hash.row_hashes_sql(t, target_table, predicate);
    let what = format!("hash rows of {}", table.name.plain());
    let key_len = table.primary_key.len();
    let split = |rows: Vec<mysql_async::Row>| -> Vec<(Cells, Cells)> {
        rows.iter()
            .map(|r| {
                let mut c = owned_cells(r);
                let hashes = c.split_off(key_len);
                (c, hashes)
            })
            .collect()
    };
    let src = split(query_rows(source, sql.clone(), &what).await?);
    let dst: HashMap<Cells, Cells> = split(query_rows(target, target_sql, &what).await?)
        .into_iter()
        .collect();
    let mut out = ChunkDiff {
        rows_listed: (src.len() + dst.len()) as u64,
        ..ChunkDiff::default()
    };
    let push = |out: &mut ChunkDiff, d: Difference, fix: String| {
        if out.differences.len() < limit {
            out.differences.push(d);
            out.fixes.push(fix);
        } else {
            out.truncated = true;
        }
    };
    let mut src_keys: HashMap<&Cells, ()> = HashMap::with_capacity(src.len());
    for (key, h) in &src {
        src_keys.insert(key, ());
        match dst.get(key) {
            Some(th) if th == h => {}
            other => {
                let Some(row) = fetch_row(source, table, key).await? else {
                    continue;
                };
                let replace = format!(
                    "REPLACE INTO {} ({}) VALUES ({});",
                    target_table.name,
                    columns_list(table),
                    values_list(table, &row)
                );
                let kind = if other.is_none() {
                    DifferenceKind::MissingOnTarget
                } else {
                    let theirs = fetch_row(target, target_table, key)
                        .await?
                        .unwrap_or_default();
                    let columns = table
                        .columns
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| row.get(*i) != theirs.get(*i))
                        .map(|(_, c)| c.name.clone())
                        .collect();
                    DifferenceKind::Changed { columns }
                };
                push(
                    &mut out,
                    Difference {
                        key: key_display(table, key),
                        kind,
                    },
                    replace,
                );
            }
        }
    }
    for key in dst.keys() {
        if !src_keys.contains_key(key) {
            let delete = format!(
                "DELETE FROM {} WHERE {};",
                target_table.name,
                key_predicate(table, key)
            );
            push(
                &mut out,
                Difference {
                    key: key_display(table, key),
                    kind: DifferenceKind::ExtraOnTarget,
                },
                delete,
            );
        }
    }
    Ok(out)
}

/// Diffs a whole table without a key by counting rows per row hash on both sides.
pub async fn keyless_table(
    source: &mut Side<'_>,
    target: &mut Side<'_>,
    hash: &HashSql,
    pair: TablePair<'_>,
    limit: usize,
) -> Result<ChunkDiff, ChecksumError> {
    let (t, table, target_table) = (pair.index, pair.source, pair.target);
    let sql = hash.multiset_sql(t, table);
    let target_sql = hash.multiset_sql(t, target_table);
    let what = format!("hash rows of {}", table.name.plain());
    let counts = |rows: Vec<mysql_async::Row>| -> HashMap<(u64, u64), u64> {
        rows.iter()
            .filter_map(|r| {
                let h1: u64 = r.get::<Option<u64>, _>(0)??;
                let h2: u64 = r.get::<Option<u64>, _>(1)??;
                let n: u64 = r.get::<Option<u64>, _>(2)??;
                Some(((h1, h2), n))
            })
            .collect()
    };
    let src = counts(query_rows(source, sql.clone(), &what).await?);
    let dst = counts(query_rows(target, target_sql, &what).await?);
    let mut out = ChunkDiff::default();
    let show = |row: &Cells| {
        table
            .columns
            .iter()
            .zip(row)
            .take(4)
            .map(|(c, v)| format!("{}={}", c.name, display(v.as_deref())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (&(h1, h2), &n_src) in &src {
        let n_dst = dst.get(&(h1, h2)).copied().unwrap_or(0);
        if n_src > n_dst {
            let rows = query_rows(
                source,
                hash.rows_with_hash_sql(t, table, &h1.to_string(), &h2.to_string()),
                &what,
            )
            .await?;
            let Some(row) = rows.first().map(owned_cells) else {
                continue;
            };
            for _ in 0..(n_src - n_dst) {
                if out.differences.len() >= limit {
                    out.truncated = true;
                    break;
                }
                out.differences.push(Difference {
                    key: show(&row),
                    kind: DifferenceKind::MissingOnTarget,
                });
                out.fixes.push(format!(
                    "INSERT INTO {} ({}) VALUES ({});",
                    target_table.name,
                    columns_list(table),
                    values_list(table, &row)
                ));
            }
        }
    }
    for (&(h1, h2), &n_dst) in &dst {
        let n_src = src.get(&(h1, h2)).copied().unwrap_or(0);
        if n_dst > n_src {
            let rows = query_rows(
                target,
                hash.rows_with_hash_sql(t, target_table, &h1.to_string(), &h2.to_string()),
                &what,
            )
            .await?;
            let Some(row) = rows.first().map(owned_cells) else {
                continue;
            };
            let matches = table
                .columns
                .iter()
                .zip(&row)
                .map(|(c, v)| {
                    format!(
                        "{} <=> {}",
                        quote_ident(&c.name),
                        literal(c.kind, v.as_deref())
                    )
                })
                .collect::<Vec<_>>()
                .join(" AND ");
            for _ in 0..(n_dst - n_src) {
                if out.differences.len() >= limit {
                    out.truncated = true;
                    break;
                }
                out.differences.push(Difference {
                    key: show(&row),
                    kind: DifferenceKind::ExtraOnTarget,
                });
                out.fixes.push(format!(
                    "DELETE FROM {} WHERE {matches} LIMIT 1;",
                    target_table.name
                ));
            }
        }
    }
    Ok(out)
}
