//! Which dispatched transactions the appliers have committed, and the low watermark: the
//! position before which every transaction is committed on the target.
//!
//! Why a watermark: with several appliers, transactions commit out of binlog order, so no
//! single applier's position says "everything before here is applied". Each applier writes, in
//! the same target transaction as its changes, both its own last position and the watermark
//! as it will be once that transaction commits (its own transactions counted as committed,
//! every other in-flight one as not). A restart resumes from the highest recorded watermark,
//! which is exact, and re-applies in safe mode up to the highest recorded position.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::transaction::Mark;

#[derive(Debug)]
struct State {
    /// seq → the mark just before that transaction.
    in_flight: BTreeMap<u64, Mark>,
    /// The mark after the last item the reader produced (dispatched or skipped).
    last: Mark,
    failed: bool,
    transactions: u64,
    rows: u64,
    /// Source commit time of the newest committed transaction.
    last_commit_timestamp: u32,
    /// Target errors an applier recovered from (a lost connection, reconnected).
    recovered_errors: u64,
}

/// Shared by the dispatcher (which registers) and the appliers (which commit).
#[derive(Debug)]
pub struct Progress {
    state: Mutex<State>,
    changed: Notify,
}

/// Counters for status lines and the summary.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub low: Mark,
    pub in_flight: usize,
    pub transactions: u64,
    pub rows: u64,
    pub last_commit_timestamp: u32,
    pub recovered_errors: u64,
}

impl Progress {
    pub fn new(start: Mark) -> Progress {
        Progress {
            state: Mutex::new(State {
                in_flight: BTreeMap::new(),
                last: start,
                failed: false,
                transactions: 0,
                rows: 0,
                last_commit_timestamp: 0,
                recovered_errors: 0,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An applier lost its target connection and goes on after reconnecting.
    pub fn recovered_error(&self) {
        self.lock().recovered_errors += 1;
    }

    /// A transaction leaves the dispatcher; `end` is the mark after it.
    pub fn dispatched(&self, seq: u64, end: &Mark) {
        let mut s = self.lock();
        let before = std::mem::replace(&mut s.last, end.clone());
        s.in_flight.insert(seq, before);
    }

    /// The reader moved past events that need no applying.
    pub fn skipped(&self, end: &Mark) {
        self.lock().last = end.clone();
    }

    /// A transaction applied outside the appliers (an XA step, with nothing in flight).
    pub fn applied_alone(&self, end: &Mark, rows: u64, timestamp: u32) {
        let mut s = self.lock();
        s.last = end.clone();
        s.transactions += 1;
        s.rows += rows;
        s.last_commit_timestamp = s.last_commit_timestamp.max(timestamp);
    }

    /// The lowest sequence number still in flight (`u64::MAX` when none).
    pub fn oldest_in_flight(&self) -> u64 {
        self.lock()
            .in_flight
            .keys()
            .next()
            .copied()
            .unwrap_or(u64::MAX)
    }

    /// The watermark as it will be once `seqs` are committed.
    pub fn low_with(&self, seqs: &[u64]) -> Mark {
        let s = self.lock();
        s.in_flight
            .iter()
            .find(|(seq, _)| !seqs.contains(seq))
            .map(|(_, before)| before.clone())
            .unwrap_or_else(|| s.last.clone())
    }

    pub fn committed(&self, seqs: &[u64], rows: u64, timestamp: u32) {
        {
            let mut s = self.lock();
            for seq in seqs {
                s.in_flight.remove(seq);
            }
            s.transactions += seqs.len() as u64;
            s.rows += rows;
            s.last_commit_timestamp = s.last_commit_timestamp.max(timestamp);
        }
        self.changed.notify_waiters();
    }

    /// An applier stopped with an error: wake anyone waiting for it to drain.
    pub fn fail(&self) {
        self.lock().failed = true;
        self.changed.notify_waiters();
    }

    /// Waits until nothing is in flight; false when an applier failed meanwhile.
    pub async fn wait_idle(&self) -> bool {
        loop {
            let notified = self.changed.notified();
            {
                let s = self.lock();
                if s.failed {
                    return false;
                }
                if s.in_flight.is_empty() {
                    return true;
                }
            }
            notified.await;
        }
    }

    /// The position after the last item the reader produced.
    pub fn snapshot_last(&self) -> sluice_core::BinlogPosition {
        self.lock().last.position.clone()
    }

    /// True once an applier has failed.
    pub fn has_failed(&self) -> bool {
        self.lock().failed
    }

    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        Snapshot {
            low: s
                .in_flight
                .values()
                .next()
                .cloned()
                .unwrap_or_else(|| s.last.clone()),
            in_flight: s.in_flight.len(),
            transactions: s.transactions,
            rows: s.rows,
            last_commit_timestamp: s.last_commit_timestamp,
            recovered_errors: s.recovered_errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_core::{BinlogPosition, GtidSet};

    use super::*;

    fn mark(offset: u64) -> Mark {
        Mark {
            position: BinlogPosition::new("b.000001", offset),
            gtid: GtidSet::default(),
        }
    }

    #[test]
    fn the_watermark_waits_for_the_oldest_transaction() {
        let p = Progress::new(mark(4));
        p.dispatched(1, &mark(100));
        p.dispatched(2, &mark(200));
        p.dispatched(3, &mark(300));
        // Worker B commits 2 first: nothing before 1 is known applied beyond the start.
        assert_eq!(p.low_with(&[2]).position.offset, 4);
        p.committed(&[2], 1, 0);
        // Worker A commits 1: everything up to 200 is applied, 3 is still out.
        assert_eq!(p.low_with(&[1]).position.offset, 200);
        p.committed(&[1], 1, 0);
        assert_eq!(p.low_with(&[3]).position.offset, 300);
        p.skipped(&mark(400));
        p.committed(&[3], 1, 0);
        assert_eq!(p.snapshot().low.position.offset, 400);
        assert_eq!(p.oldest_in_flight(), u64::MAX);
    }
}
