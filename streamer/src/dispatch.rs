//! The dispatcher: hands transactions to appliers so that any two that touch the same row keep
//! their binlog order.
//!
//! Causality: every change yields keys (table + each unique key's values, of the old and the new
//! row). A key remembers the applier that last took it and that transaction's sequence number.
//! A transaction whose live keys (taken by a transaction still in flight) all belong to one
//! applier goes to that applier, behind them; one with no live keys goes to the least busy
//! applier; one whose live keys belong to several appliers waits until everything in flight
//! has committed (a drain), then goes anywhere. Keys of committed transactions are not
//! conflicts, so independent work spreads over all appliers. A transaction on a table without
//! a primary key runs alone (drains before and after), so that it is never re-applied by a
//! safe-mode replay, where a keyless insert would be doubled.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::progress::Progress;
use crate::sql::causality_keys;
use crate::transaction::Transaction;

/// Past this many remembered keys the dispatcher drains and forgets them.
const MAX_KEYS: usize = 500_000;

pub struct Dispatcher {
    queues: Vec<mpsc::Sender<Arc<Transaction>>>,
    owners: HashMap<Vec<u8>, (usize, u64)>,
    progress: Arc<Progress>,
    pub drains: u64,
}

/// The appliers are gone (one failed): the caller collects their error.
#[derive(Debug)]
pub struct AppliersGone;

impl Dispatcher {
    pub fn new(queues: Vec<mpsc::Sender<Arc<Transaction>>>, progress: Arc<Progress>) -> Dispatcher {
        Dispatcher {
            queues,
            owners: HashMap::new(),
            progress,
            drains: 0,
        }
    }

    /// Waits until every dispatched transaction has committed.
    pub async fn drain(&mut self) -> Result<(), AppliersGone> {
        self.drains += 1;
        if !self.progress.wait_idle().await {
            return Err(AppliersGone);
        }
        self.owners.clear();
        Ok(())
    }

    pub async fn dispatch(&mut self, t: Transaction) -> Result<(), AppliersGone> {
        if self.queues.len() == 1 {
            self.progress.dispatched(t.seq, &t.end);
            return self.queues[0]
                .send(Arc::new(t))
                .await
                .map_err(|_| AppliersGone);
        }
        // A change to a table without a primary key cannot be replayed idempotently, so it
        // must never fall into a safe-mode window: it runs alone, with nothing in flight
        // before or after it, and the watermark passes exactly over it.
        let keyless = t.changes.iter().any(|c| !c.table.has_primary_key());
        if keyless {
            self.drain().await?;
        }
        let worker = self.choose(&t).await?;
        self.progress.dispatched(t.seq, &t.end);
        self.queues[worker]
            .send(Arc::new(t))
            .await
            .map_err(|_| AppliersGone)?;
        if keyless {
            self.drain().await?;
        }
        Ok(())
    }

    async fn choose(&mut self, t: &Transaction) -> Result<usize, AppliersGone> {
        let mut keys = Vec::new();
        for change in &t.changes {
            causality_keys(change, &mut keys);
        }
        let oldest = self.progress.oldest_in_flight();
        let mut owner: Option<usize> = None;
        let mut conflict = false;
        for key in &keys {
            if let Some(&(w, seq)) = self.owners.get(key)
                && seq >= oldest
            {
                match owner {
                    Some(o) if o != w => conflict = true,
                    _ => owner = Some(w),
                }
            }
        }
        if conflict || self.owners.len() > MAX_KEYS {
            self.drain().await?;
            owner = None;
        }
        let worker = owner.unwrap_or_else(|| self.least_busy());
        for key in keys {
            self.owners.insert(key, (worker, t.seq));
        }
        Ok(worker)
    }

    fn least_busy(&self) -> usize {
        (0..self.queues.len())
            .max_by_key(|&i| self.queues[i].capacity())
            .unwrap_or(0)
    }
}
