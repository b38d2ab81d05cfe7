//! How the cells of a file's rows become key/value pairs for one table: which columns are
//! loaded (the canonical order), where the primary key sits among them, and how a file's own
//! column order maps onto them.

use std::collections::HashMap;

use sluice_core::layout::FingerprintVersion;
use sluice_core::{ColumnInfo, ColumnKind, TableInfo};

use crate::ImportError;
use crate::cell::{CellKind, Row, load_into};
use crate::kv::{encode_key_cell, encode_value};
use crate::sort::Kv;

/// The mapping of the column list a file's rows last named: files name one list for all
/// their rows, so it is worked out once per list, not per row.
#[derive(Debug, Default)]
pub struct MappingCache(Option<(Option<Vec<String>>, Vec<usize>)>);

impl MappingCache {
    /// Where each of `columns` goes in `plan`'s order; `at` names the row for an error.
    pub fn get(
        &mut self,
        plan: &RowPlan,
        columns: Option<&[String]>,
        at: &dyn Fn() -> String,
    ) -> Result<&[usize], ImportError> {
        if self.0.as_ref().is_none_or(|(c, _)| c.as_deref() != columns) {
            self.0 = Some((
                columns.map(<[String]>::to_vec),
                plan.mapping(columns, &at())?,
            ));
        }
        Ok(self
            .0
            .as_ref()
            .map(|(_, m)| m.as_slice())
            .unwrap_or_default())
    }
}

/// What a column takes when a file's row does not give it (a column list without it, or
/// `VALUES ()`): its default, evaluated once per import on the target, as Lightning fills it
/// on the client (so `CURRENT_TIMESTAMP` is one instant for the whole table). A loader sends
/// every column, so a default left to the server would arrive as NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnDefault {
    /// Not looked up: NULL.
    Unknown,
    /// The default is NULL.
    Null,
    /// NULL, which asks for the next value; a key column left out keys its row by its place
    /// in the file (see [`RowPlan::key_into`]).
    AutoIncrement,
    /// The default's value as a dump would spell it.
    Value(CellKind, Vec<u8>),
    /// An expression whose value differs from row to row (`UUID()`, `RAND()`, one over other
    /// columns): it cannot be sent for the server to evaluate per row (the loader sends
    /// values), so a row that leaves the column out is refused.
    PerRow(String),
    /// NOT NULL without a default: sent as NULL, for which the server stores its implicit
    /// default (0, '', a zero date) with a warning, as MySQL does for an INSERT without the
    /// column outside strict mode (Lightning's fixtures rely on it).
    Implicit,
}

#[derive(Debug, Clone)]
pub struct RowPlan {
    /// The loaded columns, in canonical order, as the target describes them.
    pub columns: Vec<ColumnInfo>,
    /// What each column takes when a row does not give it (see [`ColumnDefault`]).
    pub defaults: Vec<ColumnDefault>,
    /// Positions of the primary key in `columns`; empty for a keyless load.
    pub key: Vec<usize>,
    by_name: HashMap<String, usize>,
    /// The fingerprint the dump's metadata carries, computed over the rows sent.
    pub fingerprint: FingerprintVersion,
}

impl RowPlan {
    /// `names` is the dump's column list for the table (Sluice metadata), or `None` for all of
    /// the target's columns.
    pub fn new(target: &TableInfo, names: Option<&[String]>) -> Result<RowPlan, ImportError> {
        let columns: Vec<ColumnInfo> = match names {
            Some(names) => names
                .iter()
                .map(|n| {
                    target
                        .columns
                        .iter()
                        .find(|c| &c.name == n)
                        .cloned()
                        .ok_or_else(|| {
                            ImportError::Target(format!(
                                "{} on the target has no column `{n}` that the dump has",
                                target.name.plain()
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
            None => target.columns.clone(),
        };
        let key: Vec<usize> = target
            .key_columns()
            .iter()
            .map(|k| columns.iter().position(|c| c.name == k.name))
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        let by_name = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Ok(RowPlan {
            defaults: vec![ColumnDefault::Unknown; columns.len()],
            columns,
            key,
            by_name,
            fingerprint: FingerprintVersion::default(),
        })
    }

    /// The plan with the columns' defaults (`defaults[i]` for `columns[i]`).
    pub fn with_defaults(mut self, defaults: Vec<ColumnDefault>) -> RowPlan {
        if defaults.len() == self.columns.len() {
            self.defaults = defaults;
        }
        self
    }

    /// The plan for a dump whose fingerprints are `version`.
    pub fn with_fingerprint(mut self, version: FingerprintVersion) -> RowPlan {
        self.fingerprint = version;
        self
    }

    /// Where each of a file's columns goes in the canonical order.
    pub fn mapping(
        &self,
        file_columns: Option<&[String]>,
        where_: &str,
    ) -> Result<Vec<usize>, ImportError> {
        match file_columns {
            None => Ok((0..self.columns.len()).collect()),
            Some(names) => names
                .iter()
                .map(|n| {
                    self.by_name.get(n).copied().ok_or_else(|| {
                        ImportError::Input(format!(
                            "{where_}: column `{n}` is not a column of the target table"
                        ))
                    })
                })
                .collect(),
        }
    }

    /// Puts one row's cells into `out` in canonical order, as the loader sends them (`None`
    /// for NULL). `at` names the row's place for an error.
    pub fn canonical_into(
        &self,
        row: &Row,
        mapping: &[usize],
        at: &dyn Fn() -> String,
        out: &mut Canon,
    ) -> Result<(), ImportError> {
        // `VALUES ()` gives no column, whatever the column list.
        let mapping = if row.len() == 0 { &[][..] } else { mapping };
        if row.len() != mapping.len() {
            return Err(ImportError::Input(format!(
                "{}: {} values for {} columns",
                at(),
                row.len(),
                mapping.len()
            )));
        }
        out.bytes.clear();
        out.cells.clear();
        out.cells.resize(self.columns.len(), None);
        for ((kind, bytes), &to) in row.iter().zip(mapping) {
            let start = out.bytes.len();
            if load_into(kind, bytes, self.columns[to].kind, &mut out.bytes) {
                out.cells[to] = Some((start, out.bytes.len()));
            }
        }
        if mapping.len() < self.columns.len() {
            self.fill_defaults(mapping, at, out)?;
        }
        Ok(())
    }

    /// Gives the columns `mapping` leaves out their defaults.
    fn fill_defaults(
        &self,
        mapping: &[usize],
        at: &dyn Fn() -> String,
        out: &mut Canon,
    ) -> Result<(), ImportError> {
        for (i, default) in self.defaults.iter().enumerate() {
            if mapping.contains(&i) {
                continue;
            }
            match default {
                ColumnDefault::Value(kind, bytes) => {
                    let start = out.bytes.len();
                    if load_into(*kind, bytes, self.columns[i].kind, &mut out.bytes) {
                        out.cells[i] = Some((start, out.bytes.len()));
                    }
                }
                ColumnDefault::PerRow(expression) => {
                    return Err(ImportError::Input(format!(
                        "{}: the row leaves out column `{}`, whose default `{expression}` differs \
                         from row to row; Sluice sends values, so the dump must give the column",
                        at(),
                        self.columns[i].name
                    )));
                }
                ColumnDefault::Unknown
                | ColumnDefault::Null
                | ColumnDefault::AutoIncrement
                | ColumnDefault::Implicit => {}
            }
        }
        Ok(())
    }

    /// Appends a row's sort key: the memcomparable primary key, or for a keyless table a
    /// generated row id (`file`, then `ordinal` in the file), so that file order is load order.
    pub fn key_into(&self, key: &mut Vec<u8>, canon: &[Option<&[u8]>], file: u32, ordinal: u64) {
        if self.key.iter().any(|&k| canon[k].is_none()) {
            // A key column the row leaves to AUTO_INCREMENT: keyed by its place, after a NULL
            // flag no given key starts with, so it meets no other row as a duplicate.
            key.push(0x00);
            key.extend_from_slice(&file.to_be_bytes());
            key.extend_from_slice(&ordinal.to_be_bytes());
            return;
        }
        if self.key.is_empty() {
            key.extend_from_slice(&file.to_be_bytes());
            key.extend_from_slice(&ordinal.to_be_bytes());
            return;
        }
        for &k in &self.key {
            let c = &self.columns[k];
            let kind = if c.kind == ColumnKind::Bit {
                ColumnKind::Integer
            } else {
                c.kind
            };
            encode_key_cell(key, kind, c.unsigned || c.kind == ColumnKind::Bit, canon[k]);
        }
    }

    /// `k1=v1,k2=v2` for a row's key, for messages.
    pub fn key_text<V: AsRef<[u8]>>(&self, canon: &[Option<V>]) -> String {
        self.key
            .iter()
            .map(|&k| {
                format!(
                    "{}={}",
                    self.columns[k].name,
                    String::from_utf8_lossy(
                        canon[k].as_ref().map_or(b"NULL".as_slice(), |v| v.as_ref())
                    )
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One row as a key/value pair. `ordinal` numbers rows of keyless tables in file order.
    pub fn pair(
        &self,
        row: &Row,
        mapping: &[usize],
        file: u32,
        line: u64,
        ordinal: u64,
        at: &dyn Fn() -> String,
    ) -> Result<Kv, ImportError> {
        let mut canon = Canon::default();
        self.canonical_into(row, mapping, at, &mut canon)?;
        canon.with_cells(|cells| {
            let mut key = Vec::with_capacity(24);
            self.key_into(&mut key, cells, file, ordinal);
            let mut value = Vec::with_capacity(
                cells
                    .iter()
                    .map(|c| c.map_or(1, |v| v.len() + 5))
                    .sum::<usize>()
                    + 12,
            );
            encode_value(&mut value, cells.iter().copied(), file, line);
            Ok((key, value))
        })
    }
}

/// One row's cells in a table's canonical order, as the loader sends them, in buffers reused
/// from row to row.
#[derive(Debug, Default)]
pub struct Canon {
    bytes: Vec<u8>,
    /// Where each cell's bytes are in `bytes`; `None` for NULL.
    cells: Vec<Option<(usize, usize)>>,
}

impl Canon {
    /// Calls `f` with the cells as slices (on the stack for up to 32 columns).
    pub fn with_cells<R>(&self, f: impl FnOnce(&[Option<&[u8]>]) -> R) -> R {
        const ON_STACK: usize = 32;
        let cell = |c: &Option<(usize, usize)>| c.map(|(a, b)| &self.bytes[a..b]);
        if self.cells.len() <= ON_STACK {
            let mut cells: [Option<&[u8]>; ON_STACK] = [None; ON_STACK];
            for (slot, c) in cells.iter_mut().zip(&self.cells) {
                *slot = cell(c);
            }
            f(&cells[..self.cells.len()])
        } else {
            f(&self.cells.iter().map(cell).collect::<Vec<_>>())
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_core::{ColumnKind, TableName};

    use super::*;

    fn column(name: &str, kind: ColumnKind) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            kind,
            data_type: String::new(),
            unsigned: false,
            precision: 10,
            scale: 0,
            charset: None,
            nullable: true,
        }
    }

    /// `pk` AUTO_INCREMENT, `y` DEFAULT 123, `s` DEFAULT 'abc', `n` nullable, `r` NOT NULL
    /// without a default.
    fn plan() -> RowPlan {
        let table = TableInfo {
            name: TableName::new("db", "t"),
            columns: vec![
                column("pk", ColumnKind::Integer),
                column("y", ColumnKind::Integer),
                column("s", ColumnKind::Text),
                column("n", ColumnKind::Integer),
                column("r", ColumnKind::Integer),
            ],
            primary_key: vec![0],
            estimated_rows: 0,
        };
        RowPlan::new(&table, None).unwrap().with_defaults(vec![
            ColumnDefault::AutoIncrement,
            ColumnDefault::Value(CellKind::Text, b"123".to_vec()),
            ColumnDefault::Value(CellKind::Text, b"abc".to_vec()),
            ColumnDefault::Null,
            ColumnDefault::Implicit,
        ])
    }

    fn cells(plan: &RowPlan, row: &Row, columns: &[&str]) -> Result<Vec<Option<Vec<u8>>>, String> {
        let names: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        let mapping = plan
            .mapping(Some(&names), "f:1")
            .map_err(|e| e.to_string())?;
        let mut canon = Canon::default();
        plan.canonical_into(row, &mapping, &|| "f:1".into(), &mut canon)
            .map_err(|e| e.to_string())?;
        Ok(canon.with_cells(|c| c.iter().map(|v| v.map(<[u8]>::to_vec)).collect()))
    }

    #[test]
    fn columns_a_row_leaves_out_take_their_defaults() {
        let plan = plan();
        let mut row = Row::default();
        row.push(CellKind::Bare, b"7");
        row.push(CellKind::Bare, b"1");
        let got = cells(&plan, &row, &["pk", "r"]).unwrap();
        let text = |v: &str| Some(v.as_bytes().to_vec());
        assert_eq!(got, [text("7"), text("123"), text("abc"), None, text("1")]);
        // `r` has no default: NULL, which the server turns into its implicit default.
        let mut only_pk = Row::default();
        only_pk.push(CellKind::Bare, b"7");
        assert_eq!(cells(&plan, &only_pk, &["pk"]).unwrap()[4], None);
    }

    #[test]
    fn a_key_left_to_auto_increment_keys_the_row_by_its_place() {
        let plan = plan();
        let mut row = Row::default();
        row.push(CellKind::Bare, b"1");
        let got = cells(&plan, &row, &["r"]).unwrap();
        assert_eq!(got[0], None, "AUTO_INCREMENT is sent as NULL");
        let cells: Vec<Option<&[u8]>> = got.iter().map(|c| c.as_deref()).collect();
        let (mut first, mut second, mut given) = (Vec::new(), Vec::new(), Vec::new());
        plan.key_into(&mut first, &cells, 0, 1);
        plan.key_into(&mut second, &cells, 0, 2);
        assert_ne!(first, second, "two such rows are no duplicates");
        let mut with_key = cells.clone();
        with_key[0] = Some(b"1");
        plan.key_into(&mut given, &with_key, 0, 1);
        assert!(
            first < given && first[0] == 0,
            "NULL flag first: {first:?} {given:?}"
        );
    }
}
