//! A group of upstream transactions as its net effect: per table, one DELETE of the keys that
//! end up absent and one multi-row REPLACE of the rows as they end up.
//!
//! Why it is exact. Every change carries full row images (binlog_row_image=FULL), and a group
//! commits as one target transaction, so only the state at its end is ever visible. For a table
//! with a primary key that state is, per key the group touched, either "absent" or "the last
//! after-image"; keys it did not touch keep their rows. Deleting the absent keys and REPLACE-ing
//! the final rows produces exactly that state, in any order of rows:
//! REPLACE removes whatever row holds one of the new row's unique values first, and such a row
//! is always one the group also touched (the end state is a state the source had, where the
//! final rows and the untouched rows coexist without conflict), so it is removed or rewritten
//! anyway. A primary-key change is a delete of the old key and a new row at the new key.
//!
//! The gain: a window of small transactions (sysbench's two updates, a delete and an insert
//! each) costs the target a handful of statements per group instead of four per transaction.
//! Tables without a primary key cannot be compacted (rows have no identity); their changes are
//! applied one by one in their original order, after the keyed tables' (within one target
//! transaction the order between tables does not matter: foreign keys are off on appliers).

use std::collections::HashMap;
use std::sync::Arc;

use sluice_core::TableName;

use crate::cell::Row;
use crate::schema_view::TableDef;
use crate::sql;
use crate::transaction::{ChangeKind, RowChange, Transaction};

enum Net<'a> {
    /// The key ends up absent; the row is an image holding the key's cells.
    Absent(&'a Row),
    Row(&'a Row),
}

struct TableNet<'a> {
    def: Arc<TableDef>,
    /// Key → (first-seen order, final state).
    keys: HashMap<Vec<u8>, (usize, Net<'a>)>,
}

impl<'a> TableNet<'a> {
    fn set(&mut self, order: usize, row: &'a Row, state: Net<'a>) {
        let key = key_of(&self.def, row);
        let first = self.keys.get(&key).map_or(order, |(o, _)| *o);
        self.keys.insert(key, (first, state));
    }
}

fn key_of(def: &TableDef, row: &Row) -> Vec<u8> {
    let mut k = Vec::new();
    for &i in &def.primary_key {
        k.extend_from_slice(&(row[i].len() as u32).to_le_bytes());
        k.extend_from_slice(&row[i]);
    }
    k
}

/// Appends the statements that leave the target as applying `group` in order would.
pub fn append_group(out: &mut Vec<u8>, group: &[Arc<Transaction>]) {
    let mut tables: Vec<TableNet<'_>> = Vec::new();
    let mut index: HashMap<TableName, usize> = HashMap::new();
    let mut keyless: Vec<RowChange> = Vec::new();
    let mut order = 0usize;
    for t in group {
        for change in &t.changes {
            let def = &change.table;
            if !def.has_primary_key() {
                keyless.push(change.clone());
                continue;
            }
            let slot = *index.entry(def.name.clone()).or_insert_with(|| {
                tables.push(TableNet {
                    def: def.clone(),
                    keys: HashMap::new(),
                });
                tables.len() - 1
            });
            let net = &mut tables[slot];
            order += 1;
            match (change.kind, &change.before, &change.after) {
                (ChangeKind::Insert, _, Some(after)) => net.set(order, after, Net::Row(after)),
                (ChangeKind::Delete, Some(before), _) => {
                    net.set(order, before, Net::Absent(before))
                }
                (ChangeKind::Update, Some(before), Some(after)) => {
                    if key_of(def, before) != key_of(def, after) {
                        net.set(order, before, Net::Absent(before));
                    }
                    net.set(order, after, Net::Row(after));
                }
                _ => {}
            }
        }
    }
    for net in &tables {
        let mut entries: Vec<&(usize, Net<'_>)> = net.keys.values().collect();
        entries.sort_by_key(|(o, _)| *o);
        let absent = entries.iter().filter_map(|(_, s)| match s {
            Net::Absent(r) => Some(*r),
            Net::Row(_) => None,
        });
        sql::deletes(out, &net.def, absent);
        let rows = entries.iter().filter_map(|(_, s)| match s {
            Net::Row(r) => Some(*r),
            Net::Absent(_) => None,
        });
        sql::inserts(out, &net.def, rows, true);
    }
    sql::append_changes(out, &keyless, false);
}

#[cfg(test)]
mod tests {
    use sluice_core::ColumnKind;

    use super::*;
    use crate::schema_view::ColumnDef;
    use crate::transaction::Mark;

    fn table() -> Arc<TableDef> {
        let col = |name: &str| ColumnDef {
            name: name.into(),
            data_type: "int".into(),
            kind: ColumnKind::Integer,
            unsigned: false,
            generated: false,
            utf8: true,
        };
        Arc::new(TableDef {
            name: TableName::new("d", "t"),
            columns: vec![col("id"), col("v")],
            primary_key: vec![0],
            unique_keys: vec![vec![0]],
        })
    }

    fn row(a: u32, b: u32) -> Row {
        vec![a.to_string().into_bytes(), b.to_string().into_bytes()]
    }

    fn tx(seq: u64, changes: Vec<RowChange>) -> Arc<Transaction> {
        Arc::new(Transaction {
            seq,
            gtid: None,
            end: Mark {
                position: sluice_core::BinlogPosition::new("b", seq),
                gtid: Default::default(),
            },
            timestamp: 0,
            changes,
        })
    }

    fn ch(kind: ChangeKind, before: Option<Row>, after: Option<Row>) -> RowChange {
        RowChange {
            table: table(),
            kind,
            before,
            after,
        }
    }

    #[test]
    fn a_group_becomes_its_net_effect() {
        use ChangeKind::*;
        let group = [
            tx(
                1,
                vec![
                    ch(Insert, None, Some(row(1, 10))),
                    ch(Delete, Some(row(3, 30)), None),
                ],
            ),
            tx(2, vec![ch(Update, Some(row(1, 10)), Some(row(2, 10)))]),
            tx(
                3,
                vec![
                    ch(Insert, None, Some(row(3, 31))),
                    ch(Update, Some(row(5, 50)), Some(row(5, 51))),
                ],
            ),
            tx(
                4,
                vec![
                    ch(Delete, Some(row(5, 51)), None),
                    ch(Insert, None, Some(row(7, 70))),
                ],
            ),
        ];
        let mut out = Vec::new();
        append_group(&mut out, &group);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "DELETE FROM `d`.`t` WHERE `id` IN (1,5);\n\
             REPLACE INTO `d`.`t` (`id`,`v`) VALUES (3,31),(2,10),(7,70);\n"
        );
    }
}
