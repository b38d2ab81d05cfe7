//! Upstream transactions as the reader hands them on: every row change of one event group
//! (GTID … XID/COMMIT), or one DDL statement, with the position and GTID set just after it.
//!
//! Stop requests, `--until` and checkpoints only ever act between two of these, so nothing
//! downstream can see half of an upstream transaction.

use std::sync::Arc;

use mysql_async::binlog::events::RowsEventData;

use sluice_core::{BinlogPosition, GtidSet, MariaGtid, TableName};
use tokio::sync::oneshot;

use crate::cell::Row;
use crate::schema_view::TableDef;
use crate::xa::Xid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

impl ChangeKind {
    /// What the rows of a row event do (UPDATE and PARTIAL_UPDATE both update).
    pub fn of(event: &RowsEventData<'_>) -> ChangeKind {
        match event {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
                ChangeKind::Insert
            }
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
                ChangeKind::Delete
            }
            _ => ChangeKind::Update,
        }
    }
}

/// One row changed by one row event.
#[derive(Debug, Clone)]
pub struct RowChange {
    pub table: Arc<TableDef>,
    pub kind: ChangeKind,
    /// The row before the change (UPDATE, DELETE).
    pub before: Option<Row>,
    /// The row after the change (INSERT, UPDATE).
    pub after: Option<Row>,
}

/// Where the stream stands after a transaction: what a checkpoint records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub position: BinlogPosition,
    pub gtid: GtidSet,
}

/// One upstream transaction with its row changes.
#[derive(Debug)]
pub struct Transaction {
    /// Dispatch order, from 1.
    pub seq: u64,
    pub gtid: Option<MariaGtid>,
    /// The position just after the transaction's last event, and the GTID set including it.
    pub end: Mark,
    /// Source commit time (seconds since the epoch), for lag.
    pub timestamp: u32,
    pub changes: Vec<RowChange>,
}

impl Transaction {
    pub fn rows(&self) -> usize {
        self.changes.len()
    }
}

/// A DDL statement on replicated tables. The reader waits on `applied` before it decodes
/// anything after it, so the schema view never runs ahead of the target.
#[derive(Debug)]
pub struct Ddl {
    pub seq: u64,
    pub end: Mark,
    /// The default database the statement ran in (may be empty).
    pub schema: String,
    pub statement: String,
    pub tables: Vec<TableName>,
    pub applied: oneshot::Sender<()>,
}

/// A step of an XA transaction ([`crate::xa`]): its prepare group (with the changes, which
/// wait in the meta schema), or its later XA COMMIT / XA ROLLBACK.
#[derive(Debug)]
pub struct XaStep {
    pub xid: Xid,
    pub action: XaAction,
    /// The position after the step's event group, and the GTID set including it.
    pub end: Mark,
    pub timestamp: u32,
}

#[derive(Debug)]
pub enum XaAction {
    Prepare(Vec<RowChange>),
    Commit,
    Rollback,
}

/// What the reader sends to the dispatcher.
#[derive(Debug)]
pub enum Item {
    Transaction(Transaction),
    Ddl(Ddl),
    Xa(XaStep),
    /// Events that change no replicated row but move the position (skipped transactions,
    /// filtered tables, DDL on other tables): recorded at the next checkpoint.
    Progress(Mark),
}
