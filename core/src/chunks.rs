//! The chunk planner, shared by the dumper and the checksum: splits each table into primary-key ranges so that all workers can share
//! one big table, and so that each chunk is one file of about `chunk_rows` rows.
//!
//! * One integer key column: step from MIN to MAX in equal key ranges. The number of ranges
//!   comes from the row estimate, checked with a bounded count when the estimate says the table
//!   is small (fresh tables often have stale statistics). Where the keys are sparse (the row
//!   estimate far from the key span: ids near both ends of the type, time-based ids), equal
//!   key ranges can be very unequal in rows, so each range's rows are estimated with `EXPLAIN`
//!   (the optimizer's index dives: no scan), a range over twice `chunk_rows` is split again,
//!   and neighbours are merged back while they hold no more than `chunk_rows` together.
//! * Any other key (composite, strings, dates): walk the key with
//!   `ORDER BY key LIMIT 1 OFFSET chunk_rows` to sample exact boundaries, so chunks hold
//!   `chunk_rows` rows each whatever the key distribution.
//! * No primary key: one chunk, and a warning (such a table cannot be split or resumed by key).
//!
//! The first range is open below and the last open above, and the planner runs inside the
//! snapshot, so every row of the snapshot falls in exactly one chunk.

use crate::schema::{ColumnInfo, TableInfo};
use crate::{ColumnKind, CoreError, Endpoint, quote_ident, sql_literal};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

/// Never plan more chunks than this for one table, whatever the estimate says.
const MAX_CHUNKS: u64 = 100_000;

#[derive(Debug, Clone)]
pub struct Chunk {
    /// Index of the table in the dump's table list.
    pub table: usize,
    pub index: u32,
    /// `WHERE` condition, or `None` for the whole table.
    pub predicate: Option<String>,
}

pub async fn plan_table(
    conn: &mut Conn,
    endpoint: &Endpoint,
    table_index: usize,
    table: &TableInfo,
    chunk_rows: u64,
) -> Result<Vec<Chunk>, CoreError> {
    let whole = || {
        vec![Chunk {
            table: table_index,
            index: 0,
            predicate: None,
        }]
    };
    let keys = table.key_columns();
    if keys.is_empty() {
        tracing::warn!(table = %table.name.plain(), "no primary key: the table is one chunk");
        return Ok(whole());
    }
    let err = |e| endpoint.error(format!("plan chunks of {}", table.name.plain()), e);
    let mut estimate = table.estimated_rows;
    let mut bounded_count_hit_limit = false;
    if estimate < 2 * chunk_rows {
        let limit = 2 * chunk_rows + 1;
        let count: Option<u64> = conn
            .query_first(format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM {} LIMIT {limit}) AS sample",
                table.name
            ))
            .await
            .map_err(err)?;
        let count = count.unwrap_or(0);
        bounded_count_hit_limit = count == limit;
        estimate = estimate.max(count);
    }
    if estimate <= chunk_rows && !bounded_count_hit_limit {
        return Ok(whole());
    }

    if keys.len() == 1 && keys[0].kind == ColumnKind::Integer {
        let col = quote_ident(&keys[0].name);
        let bounds: Option<(Option<String>, Option<String>)> = conn
            .query_first(format!("SELECT MIN({col}), MAX({col}) FROM {}", table.name))
            .await
            .map_err(err)?;
        let (Some(min), Some(max)) = bounds.unwrap_or((None, None)) else {
            return Ok(whole());
        };
        let (Ok(min), Ok(max)) = (min.parse::<i128>(), max.parse::<i128>()) else {
            return Ok(whole());
        };
        let span = (max - min + 1).max(1) as u128;
        // Stale statistics on a big table: assume the keys are dense.
        if bounded_count_hit_limit && (table.estimated_rows as u128) < span {
            estimate = estimate.max(span.min(u128::from(u64::MAX)) as u64);
        }
        // InnoDB's estimate is off by some percent either way. When it is within a fifth of the
        // key span, the keys are dense (an AUTO_INCREMENT key): the span is then the better
        // count, and chunks come out at `chunk_rows` rows each.
        let off = (estimate as f64 - span as f64).abs() / span as f64;
        if off < 0.2 {
            estimate = span.min(u128::from(u64::MAX)) as u64;
        }
        let chunks = estimate
            .div_ceil(chunk_rows)
            .clamp(1, MAX_CHUNKS)
            .min(span.min(u128::from(MAX_CHUNKS)) as u64);
        if off < 0.2 {
            return Ok(integer_ranges(table_index, &col, min, span, chunks));
        }
        let bounds =
            balanced_bounds(conn, endpoint, table, &col, min, max, chunks, chunk_rows).await?;
        return Ok(ranges_from_bounds(table_index, bounds.len(), |i, lower| {
            let op = if lower { ">=" } else { "<" };
            format!("{col} {op} {}", bounds[i])
        }));
    }

    sampled_ranges(conn, endpoint, table_index, table, &keys, chunk_rows).await
}

/// `chunks` equal key ranges starting at `min`, the first open below and the last open above.
fn integer_ranges(table: usize, col: &str, min: i128, span: u128, chunks: u64) -> Vec<Chunk> {
    let step = span.div_ceil(u128::from(chunks)) as i128;
    let bounds: Vec<i128> = (1..chunks as i128).map(|i| min + i * step).collect();
    ranges_from_bounds(table, bounds.len(), |i, lower| {
        if lower {
            format!("{col} >= {}", bounds[i])
        } else {
            format!("{col} < {}", bounds[i])
        }
    })
}

/// Ranges split in this many when they hold too many rows.
const SPLIT_WAYS: i128 = 10;

/// Boundaries of key ranges over `min..=max` that hold about `chunk_rows` rows each by the
/// optimizer's estimate: `chunks` equal ranges to start, a range estimated over twice
/// `chunk_rows` split in [`SPLIT_WAYS`] equal ranges until it is not (or is one key wide),
/// then neighbours merged while together they hold no more than `chunk_rows`.
#[allow(clippy::too_many_arguments)]
async fn balanced_bounds(
    conn: &mut Conn,
    endpoint: &Endpoint,
    table: &TableInfo,
    col: &str,
    min: i128,
    max: i128,
    chunks: u64,
    chunk_rows: u64,
) -> Result<Vec<i128>, CoreError> {
    let end = max + 1;
    let step = ((end - min) / i128::from(chunks.max(1))).max(1);
    // Half-open ranges still to look at, last first, so they come out in key order.
    let mut todo: Vec<(i128, i128)> = Vec::new();
    let mut lo = min;
    while lo < end {
        let hi = (lo + step).min(end);
        todo.push((lo, hi));
        lo = hi;
    }
    todo.reverse();
    let mut done: Vec<(i128, i128, u64)> = Vec::new();
    while let Some((lo, hi)) = todo.pop() {
        let rows = explain_rows(conn, endpoint, table, col, lo, hi).await?;
        let budget_left = (done.len() + todo.len()) < MAX_CHUNKS as usize;
        if rows > 2 * chunk_rows && hi - lo > 1 && budget_left {
            let width = ((hi - lo) / SPLIT_WAYS).max(1);
            let mut parts = Vec::new();
            let mut at = lo;
            while at < hi {
                let next = if hi - at <= width { hi } else { at + width };
                parts.push((at, next));
                at = next;
            }
            todo.extend(parts.into_iter().rev());
        } else {
            done.push((lo, hi, rows));
        }
    }
    Ok(merged_bounds(&done, chunk_rows))
}

/// The boundaries between `ranges` (in key order, with their row estimates) after merging
/// neighbours while together they hold no more than `chunk_rows`.
fn merged_bounds(ranges: &[(i128, i128, u64)], chunk_rows: u64) -> Vec<i128> {
    let mut bounds = Vec::new();
    let mut held = 0u64;
    for (i, &(lo, _, rows)) in ranges.iter().enumerate() {
        if i > 0 && held > 0 && held + rows > chunk_rows {
            bounds.push(lo);
            held = 0;
        }
        held += rows;
    }
    bounds
}

/// The optimizer's estimate of the rows with `lo <= col < hi`.
async fn explain_rows(
    conn: &mut Conn,
    endpoint: &Endpoint,
    table: &TableInfo,
    col: &str,
    lo: i128,
    hi: i128,
) -> Result<u64, CoreError> {
    let row: Option<mysql_async::Row> = conn
        .query_first(format!(
            "EXPLAIN SELECT 1 FROM {} WHERE {col} >= {lo} AND {col} < {hi}",
            table.name
        ))
        .await
        .map_err(|e| endpoint.error(format!("estimate the rows of {}", table.name.plain()), e))?;
    Ok(row
        .and_then(|r| r.get_opt::<Option<u64>, _>("rows"))
        .and_then(Result::ok)
        .flatten()
        .unwrap_or(0))
}

/// Builds chunk predicates from `n` boundaries: chunk 0 is `< b0`, chunk i is `>= b(i-1) AND <
/// b(i)`, the last `>= b(n-1)`. `cond(i, lower)` renders `>= b(i)` (lower) or `< b(i)`.
fn ranges_from_bounds(table: usize, n: usize, cond: impl Fn(usize, bool) -> String) -> Vec<Chunk> {
    let mut out = Vec::with_capacity(n + 1);
    for i in 0..=n {
        let predicate = match (i, i == n) {
            (0, true) => None,
            (0, false) => Some(cond(0, false)),
            (_, true) => Some(cond(i - 1, true)),
            _ => Some(format!("({}) AND ({})", cond(i - 1, true), cond(i, false))),
        };
        out.push(Chunk {
            table,
            index: i as u32,
            predicate,
        });
    }
    out
}

async fn sampled_ranges(
    conn: &mut Conn,
    endpoint: &Endpoint,
    table_index: usize,
    table: &TableInfo,
    keys: &[&ColumnInfo],
    chunk_rows: u64,
) -> Result<Vec<Chunk>, CoreError> {
    let cols: Vec<String> = keys.iter().map(|c| quote_ident(&c.name)).collect();
    let kinds: Vec<ColumnKind> = keys.iter().map(|c| c.kind).collect();
    let order = cols.join(", ");
    let mut bounds: Vec<Vec<String>> = Vec::new();
    loop {
        let filter = match bounds.last() {
            Some(b) => format!("WHERE {}", tuple_compare(&cols, b, true)),
            None => String::new(),
        };
        let sql = format!(
            "SELECT {order} FROM {} {filter} ORDER BY {order} LIMIT 1 OFFSET {chunk_rows}",
            table.name
        );
        let row: Option<mysql_async::Row> = conn.query_first(sql).await.map_err(|e| {
            endpoint.error(
                format!("sample chunk boundaries of {}", table.name.plain()),
                e,
            )
        })?;
        let Some(row) = row else { break };
        let literals = (0..kinds.len())
            .map(|i| {
                let mut out = Vec::new();
                let value = row.as_ref(i).and_then(crate::sql_literal::cell);
                sql_literal(&mut out, kinds[i], value.as_deref());
                String::from_utf8_lossy(&out).into_owned()
            })
            .collect();
        bounds.push(literals);
        if bounds.len() as u64 >= MAX_CHUNKS {
            break;
        }
    }
    Ok(ranges_from_bounds(table_index, bounds.len(), |i, lower| {
        tuple_compare(&cols, &bounds[i], lower)
    }))
}

/// `(c1, c2, …) >= (v1, v2, …)` (or `<`) spelled out as ORs of ANDs, which every MySQL and
/// MariaDB version turns into an index range. `cols` are quoted names, `values` SQL literals.
pub fn tuple_compare(cols: &[String], values: &[String], greater_or_equal: bool) -> String {
    let mut terms = Vec::new();
    for k in 0..cols.len() {
        let mut parts: Vec<String> = (0..k)
            .map(|j| format!("{} = {}", cols[j], values[j]))
            .collect();
        let last = k == cols.len() - 1;
        let op = match (greater_or_equal, last) {
            (true, true) => ">=",
            (true, false) => ">",
            (false, _) => "<",
        };
        parts.push(format!("{} {op} {}", cols[k], values[k]));
        terms.push(format!("({})", parts.join(" AND ")));
    }
    terms.join(" OR ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ranges_cover_everything_once() {
        let chunks = integer_ranges(0, "`id`", 1, 100, 4);
        let preds: Vec<_> = chunks
            .iter()
            .map(|c| c.predicate.clone().unwrap())
            .collect();
        assert_eq!(
            preds,
            [
                "`id` < 26",
                "(`id` >= 26) AND (`id` < 51)",
                "(`id` >= 51) AND (`id` < 76)",
                "`id` >= 76"
            ]
        );
        assert_eq!(integer_ranges(0, "`id`", 5, 1, 1)[0].predicate, None);
    }

    #[test]
    fn neighbours_merge_up_to_the_chunk_size() {
        // Nine empty ranges and one with 98 rows split into ten of about ten.
        let mut ranges = vec![(-2, 9, 10), (9, 20, 11), (20, 31, 11), (31, 42, 11)];
        ranges.extend((0..9).map(|i| (42 + i * 10, 52 + i * 10, 0)));
        ranges.push((200, 300, 55));
        ranges.push((300, 400, 2));
        // Empty ranges join the next one.
        assert_eq!(merged_bounds(&ranges, 10), [9, 20, 31, 42, 300]);
        assert_eq!(
            merged_bounds(&[(0, 5, 0), (5, 9, 0)], 10),
            Vec::<i128>::new()
        );
        assert_eq!(
            merged_bounds(&[(0, 5, 3), (5, 9, 3), (9, 12, 3)], 10),
            Vec::<i128>::new()
        );
    }

    #[test]
    fn tuple_comparisons_expand() {
        let cols = ["`a`".to_owned(), "`b`".to_owned()];
        let vals = ["1".to_owned(), "'x'".to_owned()];
        assert_eq!(
            tuple_compare(&cols, &vals, true),
            "(`a` > 1) OR (`a` = 1 AND `b` >= 'x')"
        );
        assert_eq!(
            tuple_compare(&cols, &vals, false),
            "(`a` < 1) OR (`a` = 1 AND `b` < 'x')"
        );
    }

    #[test]
    fn extreme_integer_keys_do_not_overflow() {
        let min = i128::from(i64::MIN);
        let span = (u128::from(u64::MAX)) + 1;
        let chunks = integer_ranges(0, "`k`", min, span, 3);
        assert_eq!(chunks.len(), 3);
    }
}
