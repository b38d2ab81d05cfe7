//! Narrowing a mismatching chunk down to the key ranges that hold its differences, so that
//! only a few rows' hashes cross the network.
//!
//! A chunk whose fingerprints differ is split at its middle key (taken on the side that holds
//! more of its rows), both halves are fingerprinted on both servers, and only the halves that
//! still differ are split again, until a range holds at most [`LEAF_ROWS`] rows on either side.
//! The rows of those ranges are then listed and compared by key ([`diff::keyed_chunk`]). One
//! changed row in a 100,000-row chunk costs about 2·log2(100,000 / 512) ≈ 16 fingerprint
//! queries (which together read the chunk about twice, on the servers) and 512 listed rows,
//! instead of 100,000 keys and hashes sent to the checker.
//!
//! Differences spread all over a chunk would make bisecting dearer than listing: at most
//! [`MAX_RANGES`] ranges are followed, and once splitting would pass that the ranges are
//! listed as they stand.
//!
//! In online mode the caller holds both snapshots for the whole narrowing, so every half is
//! compared at the same moment as the chunk was.
//!
//! [`diff::keyed_chunk`]: crate::diff::keyed_chunk

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{Endpoint, TableInfo, cell, quote_ident, sql_literal, tuple_compare};

use crate::ChecksumError;
use crate::diff::{Side, TablePair};
use crate::row_hash::HashSql;

/// A range this small is listed row by row.
pub const LEAF_ROWS: u64 = 512;
/// At most this many differing ranges are narrowed at once.
pub const MAX_RANGES: usize = 16;

/// `COUNT(*)` and the two hash sums of a range on one side.
pub type Fingerprint = (u64, String, String);

/// Runs a fingerprint query ([`HashSql::chunk_sql`]) on one side.
pub async fn fingerprint(
    conn: &mut Conn,
    endpoint: &Endpoint,
    sql: &str,
) -> Result<Fingerprint, ChecksumError> {
    let row: Option<(u64, String, String)> = conn
        .query_first(sql)
        .await
        .map_err(|e| endpoint.error("checksum a chunk", e))?;
    Ok(row.unwrap_or((0, "0".into(), "0".into())))
}

/// A key range still to narrow, with its row counts on each side.
struct Range {
    predicate: Option<String>,
    source_rows: u64,
    target_rows: u64,
}

/// The sub-ranges of the chunk `predicate` (holding `counts` rows on the source and the
/// target) that differ, each small enough to list; the whole chunk when it is small already.
pub async fn narrow(
    source: &mut Side<'_>,
    target: &mut Side<'_>,
    hash: &HashSql,
    pair: TablePair<'_>,
    predicate: Option<&str>,
    counts: (u64, u64),
) -> Result<Vec<Option<String>>, ChecksumError> {
    let cols: Vec<String> = pair
        .source
        .key_columns()
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect();
    let mut pending = vec![Range {
        predicate: predicate.map(str::to_owned),
        source_rows: counts.0,
        target_rows: counts.1,
    }];
    let mut leaves = Vec::new();
    while let Some(range) = pending.pop() {
        let small = range.source_rows.max(range.target_rows) <= LEAF_ROWS;
        if small || pending.len() + leaves.len() + 2 > MAX_RANGES {
            leaves.push(range.predicate);
            continue;
        }
        let middle = if range.source_rows >= range.target_rows {
            middle_key(source, pair.source, &range.predicate, range.source_rows).await?
        } else {
            middle_key(target, pair.target, &range.predicate, range.target_rows).await?
        };
        let Some(middle) = middle else {
            leaves.push(range.predicate);
            continue;
        };
        for upper in [false, true] {
            let bound = tuple_compare(&cols, &middle, upper);
            let half = match &range.predicate {
                Some(p) => format!("({p}) AND ({bound})"),
                None => bound,
            };
            let source_sql = hash.chunk_sql(pair.index, &pair.source.name, Some(&half));
            let target_sql = hash.chunk_sql(pair.index, &pair.target.name, Some(&half));
            let (s, t) = tokio::join!(
                fingerprint(source.conn, source.endpoint, &source_sql),
                fingerprint(target.conn, target.endpoint, &target_sql)
            );
            let (s, t) = (s?, t?);
            if s != t {
                pending.push(Range {
                    predicate: Some(half),
                    source_rows: s.0,
                    target_rows: t.0,
                });
            }
        }
    }
    Ok(leaves)
}

/// The key at the middle of the `rows` rows of `predicate` on one side, as SQL literals.
async fn middle_key(
    side: &mut Side<'_>,
    table: &TableInfo,
    predicate: &Option<String>,
    rows: u64,
) -> Result<Option<Vec<String>>, ChecksumError> {
    let keys = table.key_columns();
    let order = keys
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let filter = predicate
        .as_deref()
        .map(|p| format!(" WHERE {p}"))
        .unwrap_or_default();
    let sql = format!(
        "SELECT {order} FROM {}{filter} ORDER BY {order} LIMIT 1 OFFSET {}",
        table.name,
        rows / 2
    );
    let row: Option<mysql_async::Row> = side.conn.query_first(sql).await.map_err(|e| {
        side.endpoint.error(
            format!("find the middle key of a chunk of {}", table.name.plain()),
            e,
        )
    })?;
    Ok(row.map(|row| {
        keys.iter()
            .enumerate()
            .map(|(i, c)| {
                let mut out = Vec::new();
                let value = row.as_ref(i).and_then(cell);
                sql_literal(&mut out, c.kind, value.as_deref());
                String::from_utf8_lossy(&out).into_owned()
            })
            .collect()
    }))
}
