//! XA transactions and the snapshot.
//!
//! MariaDB binlogs an XA transaction in two event groups: at `XA PREPARE` its changes (a GTID
//! event `XA START …`, the rows, `XA END`, an `XA_prepare` event), and at `XA COMMIT` or
//! `XA ROLLBACK` a group of one query. A transaction prepared but not yet ended at the snapshot
//! is in neither the dump (InnoDB does not show prepared rows to a snapshot) nor the binlog
//! after the snapshot's position, so a stream from the dump would meet its `XA COMMIT` without
//! its changes. The dump must never be taken across one.
//!
//! Under a global commit block `XA RECOVER` is exact: nothing can prepare or end. Without a
//! lock (`--consistency snapshot`) two lists, before and after the snapshots open, miss a
//! transaction that prepares after the first and ends before the second.
//! [`ended_across`] closes that gap from the binlog: such a transaction's `XA COMMIT` or
//! `XA ROLLBACK` lies after the snapshot's position, and its `XA PREPARE` before it.
//!
//! Tested in `tests/tests/dump_xa.rs`.

use std::collections::HashSet;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{Endpoint, quote_string};

use crate::DumpError;

/// Binlog events read per `SHOW BINLOG EVENTS` while scanning a window.
const EVENTS_PER_READ: usize = 1000;

/// XA transactions prepared on the source (`XA RECOVER`), as `X'gtrid',X'bqual',format`.
/// An account that may not list them gets an empty list and a warning.
pub(crate) async fn prepared(conn: &mut Conn) -> Vec<String> {
    let rows: Vec<(i64, usize, usize, Vec<u8>)> = match conn.query("XA RECOVER").await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list prepared XA transactions (XA RECOVER); a stream from this dump stops at the XA COMMIT of one prepared now");
            return Vec::new();
        }
    };
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    rows.into_iter()
        .map(|(format, gtrid, bqual, data)| {
            let gtrid = gtrid.min(data.len());
            let bqual = bqual.min(data.len() - gtrid);
            format!(
                "X'{}',X'{}',{format}",
                hex(&data[..gtrid]),
                hex(&data[gtrid..gtrid + bqual])
            )
        })
        .collect()
}

/// The error of a dump that gave up waiting for prepared XA transactions to end.
pub(crate) fn prepared_error(endpoint: &Endpoint, prepared: &[String]) -> DumpError {
    DumpError::Snapshot {
        endpoint: endpoint.address(),
        reason: format!(
            "XA transactions stay prepared on the source ({}): a dump now would hold none of \
             their changes, and a stream from its position would meet their XA COMMIT without \
             their XA PREPARE; end them (XA COMMIT or XA ROLLBACK) and dump again, or use \
             --consistency none for a copy that is never streamed",
            prepared.join(", ")
        ),
    }
}

/// The XA transactions that ended (`XA COMMIT` or `XA ROLLBACK`) in binlog `file` between
/// `from` (an event's start) and `to` without their `XA PREPARE` in between: they were
/// prepared before `from`. `None` when the binlog cannot be read (no BINLOG MONITOR
/// privilege, a purged file), after a warning.
pub async fn ended_across(conn: &mut Conn, file: &str, from: u64, to: u64) -> Option<Vec<String>> {
    let mut prepared_inside: HashSet<String> = HashSet::new();
    let mut crossing = Vec::new();
    let mut at = from;
    while at < to {
        let sql = format!(
            "SHOW BINLOG EVENTS IN {} FROM {at} LIMIT {EVENTS_PER_READ}",
            quote_string(file)
        );
        let rows: Vec<mysql_async::Row> = match conn.query(sql).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, file, from, "cannot read the binlog to check for XA transactions across the snapshot; a stream from this dump stops at the XA COMMIT of one, should it exist");
                return None;
            }
        };
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let start: u64 = row.get(1).unwrap_or(u64::MAX);
            if start >= to {
                return Some(crossing);
            }
            let kind: String = row.get(2).unwrap_or_default();
            let info: String = row.get(5).unwrap_or_default();
            match xa_event(&kind, &info) {
                Some(XaEvent::Prepare(xid)) => {
                    prepared_inside.insert(xid.to_owned());
                }
                Some(XaEvent::End(xid)) if !prepared_inside.contains(xid) => {
                    crossing.push(xid.to_owned());
                }
                _ => {}
            }
            // End_log_pos: where the next event starts. One that does not move forward would
            // read the same events again and again: give up on the scan instead.
            let next: u64 = row.get(4).unwrap_or(0);
            if next <= start {
                tracing::warn!(
                    file,
                    at = start,
                    "the binlog's End_log_pos does not advance; cannot check for XA transactions across the snapshot"
                );
                return None;
            }
            at = next;
        }
    }
    Some(crossing)
}

#[derive(Debug, PartialEq, Eq)]
enum XaEvent<'a> {
    Prepare(&'a str),
    End(&'a str),
}

/// What an event of `SHOW BINLOG EVENTS` (its type and info) says about an XA transaction.
fn xa_event<'a>(kind: &str, info: &'a str) -> Option<XaEvent<'a>> {
    match kind {
        "XA_prepare" => info
            .strip_prefix("XA PREPARE ")
            .map(|x| XaEvent::Prepare(x.trim())),
        "Query" => {
            // A query's info may start with its default database: "use `db`; XA COMMIT …".
            let statement = match info.strip_prefix("use ") {
                Some(rest) => rest.split_once("; ").map_or(info, |(_, s)| s),
                None => info,
            };
            statement
                .strip_prefix("XA COMMIT ")
                .or_else(|| statement.strip_prefix("XA ROLLBACK "))
                .map(|x| XaEvent::End(x.trim()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xa_events_are_told_from_their_binlog_info() {
        // As MariaDB 10.11 shows them (SHOW BINLOG EVENTS).
        assert_eq!(
            xa_event("XA_prepare", "XA PREPARE X'6131',X'',1"),
            Some(XaEvent::Prepare("X'6131',X'',1"))
        );
        assert_eq!(
            xa_event("Query", "XA COMMIT X'6131',X'',1"),
            Some(XaEvent::End("X'6131',X'',1"))
        );
        assert_eq!(
            xa_event("Query", "use `x`; XA ROLLBACK X'6132',X'',1"),
            Some(XaEvent::End("X'6132',X'',1"))
        );
        assert_eq!(xa_event("Query", "XA END X'6131',X'',1"), None);
        assert_eq!(xa_event("Gtid", "XA START X'6131',X'',1 GTID 0-1-5"), None);
        assert_eq!(xa_event("Xid", "COMMIT /* xid=15 */"), None);
        assert_eq!(
            xa_event("Query", "use `x`; INSERT INTO t VALUES ('XA COMMIT ')"),
            None
        );
    }
}
