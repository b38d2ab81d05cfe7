//! Row changes as SQL for the target, keyed by the primary key.
//!
//! Consecutive inserts into one table become one multi-row INSERT, consecutive deletes one
//! DELETE … IN (…); updates stay one statement each and set only the columns that changed.
//! Order inside a transaction is kept (an insert, a delete and an insert of the same key stay
//! in that order). A table without a primary key is matched on all its columns with `<=>` and
//! `LIMIT 1`, one row per statement.
//!
//! Safe mode (for a replayed range after a crash whose exact end cannot be proven): INSERT
//! becomes REPLACE and UPDATE becomes DELETE of the old key + REPLACE of the new row, so that
//! applying a change twice leaves the same rows as applying it once.

use sluice_core::quote_ident;

use crate::cell::{NULL, Row};
use crate::schema_view::TableDef;
use crate::transaction::{ChangeKind, RowChange};

/// A multi-row statement is closed past this size; a single row may still be larger.
const STATEMENT_BYTES: usize = 4 << 20;

/// Appends the statements of `changes`, each ending in `;`.
pub fn append_changes(out: &mut Vec<u8>, changes: &[RowChange], safe: bool) {
    let mut i = 0;
    while i < changes.len() {
        let c = &changes[i];
        // The run of changes of the same kind on the same table.
        let mut j = i + 1;
        while j < changes.len()
            && changes[j].kind == c.kind
            && std::sync::Arc::ptr_eq(&changes[j].table, &c.table)
        {
            j += 1;
        }
        let run = &changes[i..j];
        match c.kind {
            ChangeKind::Insert => inserts(
                out,
                &c.table,
                run.iter().filter_map(|c| c.after.as_ref()),
                safe,
            ),
            ChangeKind::Delete => {
                deletes(out, &c.table, run.iter().filter_map(|c| c.before.as_ref()))
            }
            ChangeKind::Update => {
                for change in run {
                    if let (Some(before), Some(after)) = (&change.before, &change.after) {
                        update(out, &c.table, before, after, safe);
                    }
                }
            }
        }
        i = j;
    }
}

fn written_columns(table: &TableDef) -> impl Iterator<Item = usize> + '_ {
    (0..table.columns.len()).filter(|&i| !table.columns[i].generated)
}

fn insert_head(out: &mut Vec<u8>, table: &TableDef, replace: bool) {
    out.extend_from_slice(if replace {
        b"REPLACE INTO "
    } else {
        b"INSERT INTO "
    });
    out.extend_from_slice(table.name.to_string().as_bytes());
    out.extend_from_slice(b" (");
    for (n, i) in written_columns(table).enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(quote_ident(&table.columns[i].name).as_bytes());
    }
    out.extend_from_slice(b") VALUES ");
}

pub fn inserts<'a>(
    out: &mut Vec<u8>,
    table: &TableDef,
    rows: impl Iterator<Item = &'a Row>,
    replace: bool,
) {
    let mut start: Option<usize> = None;
    for row in rows {
        match start {
            Some(s) if out.len() - s < STATEMENT_BYTES => out.push(b','),
            Some(_) => {
                out.extend_from_slice(b";\n");
                start = Some(out.len());
                insert_head(out, table, replace);
            }
            None => {
                start = Some(out.len());
                insert_head(out, table, replace);
            }
        }
        out.push(b'(');
        for (n, i) in written_columns(table).enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&row[i]);
        }
        out.push(b')');
    }
    if start.is_some() {
        out.extend_from_slice(b";\n");
    }
}

/// `a = 1 AND b = 'x'` on the key, or `a <=> 1 AND …` on every column of a keyless table.
fn key_condition(out: &mut Vec<u8>, table: &TableDef, row: &Row) {
    let keyless: Vec<usize>;
    let (columns, op): (&[usize], &[u8]) = if table.has_primary_key() {
        (&table.primary_key, b" = ")
    } else {
        keyless = written_columns(table).collect();
        (&keyless, b" <=> ")
    };
    for (n, &i) in columns.iter().enumerate() {
        if n > 0 {
            out.extend_from_slice(b" AND ");
        }
        out.extend_from_slice(quote_ident(&table.columns[i].name).as_bytes());
        out.extend_from_slice(op);
        out.extend_from_slice(&row[i]);
    }
}

pub fn deletes<'a>(out: &mut Vec<u8>, table: &TableDef, rows: impl Iterator<Item = &'a Row>) {
    if table.primary_key.len() != 1 {
        for row in rows {
            out.extend_from_slice(b"DELETE FROM ");
            out.extend_from_slice(table.name.to_string().as_bytes());
            out.extend_from_slice(b" WHERE ");
            key_condition(out, table, row);
            if !table.has_primary_key() {
                out.extend_from_slice(b" LIMIT 1");
            }
            out.extend_from_slice(b";\n");
        }
        return;
    }
    let key = table.primary_key[0];
    let mut start: Option<usize> = None;
    for row in rows {
        match start {
            Some(s) if out.len() - s < STATEMENT_BYTES => out.push(b','),
            other => {
                if other.is_some() {
                    out.extend_from_slice(b");\n");
                }
                start = Some(out.len());
                out.extend_from_slice(b"DELETE FROM ");
                out.extend_from_slice(table.name.to_string().as_bytes());
                out.extend_from_slice(b" WHERE ");
                out.extend_from_slice(quote_ident(&table.columns[key].name).as_bytes());
                out.extend_from_slice(b" IN (");
            }
        }
        out.extend_from_slice(&row[key]);
    }
    if start.is_some() {
        out.extend_from_slice(b");\n");
    }
}

fn update(out: &mut Vec<u8>, table: &TableDef, before: &Row, after: &Row, safe: bool) {
    if safe && table.has_primary_key() {
        deletes(out, table, std::iter::once(before));
        inserts(out, table, std::iter::once(after), true);
        return;
    }
    let changed: Vec<usize> = written_columns(table)
        .filter(|&i| before[i] != after[i])
        .collect();
    if changed.is_empty() {
        return;
    }
    out.extend_from_slice(b"UPDATE ");
    out.extend_from_slice(table.name.to_string().as_bytes());
    out.extend_from_slice(b" SET ");
    for (n, &i) in changed.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(quote_ident(&table.columns[i].name).as_bytes());
        out.push(b'=');
        out.extend_from_slice(&after[i]);
    }
    out.extend_from_slice(b" WHERE ");
    key_condition(out, table, before);
    if !table.has_primary_key() {
        out.extend_from_slice(b" LIMIT 1");
    }
    out.extend_from_slice(b";\n");
}

/// Causality keys of a change: one per unique key per image whose key cells are all non-NULL
/// (NULLs never collide in a unique key); the table itself when it has no unique key.
pub fn causality_keys(change: &RowChange, out: &mut Vec<Vec<u8>>) {
    let table = &change.table;
    let mut prefix = table.name.to_string().into_bytes();
    prefix.push(0);
    if table.unique_keys.is_empty() {
        out.push(prefix);
        return;
    }
    for image in [&change.before, &change.after].into_iter().flatten() {
        for (k, columns) in table.unique_keys.iter().enumerate() {
            if columns.iter().any(|&i| image[i] == NULL) {
                continue;
            }
            let mut key = prefix.clone();
            key.push(k as u8);
            for &i in columns {
                key.push(0);
                key.extend_from_slice(&image[i]);
            }
            out.push(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_core::{ColumnKind, TableName};

    use super::*;
    use crate::schema_view::ColumnDef;

    fn table(pk: bool) -> Arc<TableDef> {
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
            primary_key: if pk { vec![0] } else { vec![] },
            unique_keys: if pk { vec![vec![0]] } else { vec![] },
        })
    }

    fn row(a: &str, b: &str) -> Row {
        vec![a.as_bytes().to_vec(), b.as_bytes().to_vec()]
    }

    fn change(
        t: &Arc<TableDef>,
        kind: ChangeKind,
        before: Option<Row>,
        after: Option<Row>,
    ) -> RowChange {
        RowChange {
            table: t.clone(),
            kind,
            before,
            after,
        }
    }

    fn sql(changes: &[RowChange], safe: bool) -> String {
        let mut out = Vec::new();
        append_changes(&mut out, changes, safe);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn groups_runs_and_keeps_order() {
        let t = table(true);
        let changes = [
            change(&t, ChangeKind::Insert, None, Some(row("1", "10"))),
            change(&t, ChangeKind::Insert, None, Some(row("2", "20"))),
            change(&t, ChangeKind::Delete, Some(row("1", "10")), None),
            change(&t, ChangeKind::Delete, Some(row("2", "20")), None),
            change(&t, ChangeKind::Insert, None, Some(row("1", "11"))),
            change(
                &t,
                ChangeKind::Update,
                Some(row("1", "11")),
                Some(row("3", "11")),
            ),
        ];
        assert_eq!(
            sql(&changes, false),
            "INSERT INTO `d`.`t` (`id`,`v`) VALUES (1,10),(2,20);\n\
             DELETE FROM `d`.`t` WHERE `id` IN (1,2);\n\
             INSERT INTO `d`.`t` (`id`,`v`) VALUES (1,11);\n\
             UPDATE `d`.`t` SET `id`=3 WHERE `id` = 1;\n"
        );
        assert_eq!(
            sql(&changes[5..], true),
            "DELETE FROM `d`.`t` WHERE `id` IN (1);\nREPLACE INTO `d`.`t` (`id`,`v`) VALUES (3,11);\n"
        );
    }

    #[test]
    fn keyless_tables_match_every_column_once() {
        let t = table(false);
        let changes = [
            change(
                &t,
                ChangeKind::Update,
                Some(row("1", "NULL")),
                Some(row("1", "2")),
            ),
            change(&t, ChangeKind::Delete, Some(row("1", "2")), None),
        ];
        assert_eq!(
            sql(&changes, false),
            "UPDATE `d`.`t` SET `v`=2 WHERE `id` <=> 1 AND `v` <=> NULL LIMIT 1;\n\
             DELETE FROM `d`.`t` WHERE `id` <=> 1 AND `v` <=> 2 LIMIT 1;\n"
        );
        let mut keys = Vec::new();
        causality_keys(&changes[0], &mut keys);
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn causality_keys_cover_old_and_new_keys() {
        let t = table(true);
        let mut keys = Vec::new();
        causality_keys(
            &change(
                &t,
                ChangeKind::Update,
                Some(row("1", "5")),
                Some(row("2", "5")),
            ),
            &mut keys,
        );
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0], keys[1]);
    }
}
