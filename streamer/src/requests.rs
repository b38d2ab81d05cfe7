//! A group of upstream transactions as the requests that apply it in one target transaction:
//! `START TRANSACTION; …` in the first, the checkpoint upsert and `COMMIT` in the last, none
//! larger than the target accepts.
//!
//! Why split. The target refuses a request over its `max_allowed_packet` (16 MiB by default
//! on MariaDB), and one upstream transaction may carry gigabytes (a bulk `INSERT … SELECT`, the
//! huge transaction that takes a binlog file past 4 GiB). The statements are generated lazily,
//! a bounded slice of row changes at a time, so the applier holds one request of SQL, not the
//! whole transaction's. Splitting changes nothing about atomicity: every request runs on the
//! same connection inside the one open transaction, and a lost connection rolls it all back
//! (the applier then sends the group again from its first request).
//!
//! A group small enough for one request is written as its net effect ([`crate::compact`])
//! when compaction is on; a larger one statement by statement ([`crate::sql`]), which is the
//! same end state and needs no view of the whole group at once.

use std::sync::Arc;

use crate::compact::append_group;
use crate::sql::append_changes;
use crate::transaction::{RowChange, Transaction};

/// The most one request carries even when the target would take more: bounds the applier's
/// memory and keeps the round trips big enough to be cheap.
pub const REQUEST_CAP: usize = 64 << 20;

/// Room left under the target's `max_allowed_packet` for the protocol's own bytes.
const PACKET_HEADROOM: usize = 4 << 10;

/// The request budget for a target whose `max_allowed_packet` is `max_allowed_packet`.
pub fn request_budget(max_allowed_packet: u64) -> usize {
    let packet = usize::try_from(max_allowed_packet).unwrap_or(usize::MAX);
    packet
        .saturating_sub(PACKET_HEADROOM)
        .clamp(1024, REQUEST_CAP)
}

/// About how many bytes of SQL a change's cells make (literals plus separators).
fn change_bytes(c: &RowChange) -> usize {
    [&c.before, &c.after]
        .into_iter()
        .flatten()
        .map(|row| row.iter().map(|cell| cell.len() + 2).sum::<usize>())
        .sum()
}

/// The requests of one group, produced one at a time by [`GroupRequests::next_request`].
pub struct GroupRequests<'a> {
    group: &'a [Arc<Transaction>],
    /// Per transaction: whether it is applied in safe mode (statement path only).
    safe: Vec<bool>,
    limit: usize,
    /// The checkpoint upsert and COMMIT that end the last request.
    tail: Vec<u8>,
    compact_whole: bool,
    /// Next change to write: transaction index, change index.
    at: (usize, usize),
    started: bool,
    done: bool,
}

impl<'a> GroupRequests<'a> {
    /// `checkpoint` is the upsert that records the group's end, ending in `;`.
    pub fn new(
        group: &'a [Arc<Transaction>],
        safe: Vec<bool>,
        compact: bool,
        limit: usize,
        checkpoint: &str,
    ) -> GroupRequests<'a> {
        let mut tail = checkpoint.as_bytes().to_vec();
        tail.extend_from_slice(b"COMMIT");
        let estimate: usize = group
            .iter()
            .flat_map(|t| &t.changes)
            .map(change_bytes)
            .sum();
        GroupRequests {
            group,
            safe,
            limit,
            tail,
            // The net effect is at most about the size of the final rows: a quarter of the
            // budget leaves room for the statements' own text.
            compact_whole: compact && estimate <= limit / 4,
            at: (0, 0),
            started: false,
            done: false,
        }
    }

    /// The next request to send, `None` after the one that commits.
    pub fn next_request(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let mut buf = Vec::new();
        if !self.started {
            buf.extend_from_slice(b"START TRANSACTION;\n");
            self.started = true;
        }
        let opening = buf.len();
        if self.compact_whole {
            append_group(&mut buf, self.group);
            buf.extend_from_slice(&self.tail);
            self.done = true;
            return Some(buf);
        }
        // Slices of at most an eighth of the budget by their cells, flushed past half of it:
        // the statements' own text (column names of an UPDATE, per row) fits the other half.
        let slice_budget = (self.limit / 8).max(1);
        while self.at.0 < self.group.len() {
            if buf.len() > self.limit / 2 {
                return Some(buf);
            }
            let (t, c) = self.at;
            let changes = &self.group[t].changes;
            if c >= changes.len() {
                self.at = (t + 1, 0);
                continue;
            }
            let mut end = c + 1;
            let mut bytes = change_bytes(&changes[c]);
            while end < changes.len() {
                let next = change_bytes(&changes[end]);
                if bytes + next > slice_budget {
                    break;
                }
                bytes += next;
                end += 1;
            }
            append_changes(&mut buf, &changes[c..end], self.safe[t]);
            self.at = (t, end);
        }
        if buf.len() > opening && buf.len() + self.tail.len() > self.limit {
            return Some(buf); // the tail goes alone next time
        }
        buf.extend_from_slice(&self.tail);
        self.done = true;
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    use sluice_core::{BinlogPosition, ColumnKind, TableName};

    use super::*;
    use crate::schema_view::{ColumnDef, TableDef};
    use crate::transaction::{ChangeKind, Mark};

    fn table() -> Arc<TableDef> {
        let col = |name: &str| ColumnDef {
            name: name.into(),
            data_type: "blob".into(),
            kind: ColumnKind::Binary,
            unsigned: false,
            generated: false,
            utf8: false,
        };
        Arc::new(TableDef {
            name: TableName::new("d", "t"),
            columns: vec![col("id"), col("pad")],
            primary_key: vec![0],
            unique_keys: vec![vec![0]],
        })
    }

    fn group(transactions: usize, rows: usize, pad: usize) -> Vec<Arc<Transaction>> {
        let table = table();
        (0..transactions)
            .map(|t| {
                let changes = (0..rows)
                    .map(|r| {
                        let id = (t * rows + r).to_string().into_bytes();
                        let after = Some(vec![id.clone(), vec![b'x'; pad]]);
                        let (kind, before) = if r % 3 == 2 {
                            (ChangeKind::Update, Some(vec![id, vec![b'y'; pad]]))
                        } else {
                            (ChangeKind::Insert, None)
                        };
                        RowChange {
                            table: table.clone(),
                            kind,
                            before,
                            after,
                        }
                    })
                    .collect();
                Arc::new(Transaction {
                    seq: t as u64 + 1,
                    gtid: None,
                    end: Mark {
                        position: BinlogPosition::new("b", t as u64),
                        gtid: Default::default(),
                    },
                    timestamp: 0,
                    changes,
                })
            })
            .collect()
    }

    fn all(mut r: GroupRequests<'_>) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| r.next_request()).collect()
    }

    #[test]
    fn a_big_group_is_split_under_the_budget_into_the_same_statements() {
        let g = group(3, 200, 300);
        let limit = 16 << 10;
        let requests = all(GroupRequests::new(&g, vec![false; 3], true, limit, "CP;\n"));
        assert!(requests.len() > 5, "{} requests", requests.len());
        assert!(requests.iter().all(|r| r.len() <= limit));
        assert!(requests[0].starts_with(b"START TRANSACTION;\n"));
        assert!(requests.last().unwrap().ends_with(b"CP;\nCOMMIT"));
        // Every change is there exactly once, in order.
        let text = String::from_utf8(requests.concat()).unwrap();
        let ids: Vec<usize> = text
            .match_indices("(")
            .filter_map(|(i, _)| text[i + 1..].split(',').next()?.parse().ok())
            .collect();
        let inserts: Vec<usize> = (0..600).filter(|i| i % 200 % 3 != 2).collect();
        assert_eq!(ids, inserts);
        assert_eq!(text.matches("UPDATE ").count(), 600 - inserts.len());
        assert_eq!(text.matches("COMMIT").count(), 1);
    }

    #[test]
    fn a_small_group_is_one_compacted_request() {
        let g = group(2, 5, 10);
        let requests = all(GroupRequests::new(
            &g,
            vec![false; 2],
            true,
            1 << 20,
            "CP;\n",
        ));
        assert_eq!(requests.len(), 1);
        let text = String::from_utf8(requests[0].clone()).unwrap();
        assert!(text.contains("REPLACE INTO"), "{text}");
        assert!(!text.contains("UPDATE "), "{text}");
    }

    #[test]
    fn the_budget_follows_the_target_and_is_capped() {
        assert_eq!(request_budget(16 << 20), (16 << 20) - PACKET_HEADROOM);
        assert_eq!(request_budget(1 << 30), REQUEST_CAP);
        assert_eq!(request_budget(100), 1024);
    }
}
