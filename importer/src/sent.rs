//! The fingerprint of the rows sent to the target, so that a load the target took without a
//! single warning is verified against the dump's fingerprint without reading the table back.
//!
//! The dumper fingerprints each row as the source printed it; the importer sends exactly those
//! texts, except BIT, which LOAD DATA takes as a number and the server prints as its
//! big-endian bytes: here BIT goes back to bytes. What the target did with the rows is
//! covered by the row count and by LOAD DATA's warning count: a value truncated, converted or
//! refused raises a warning, and a load with any warning is read back as before.

use sluice_core::ColumnKind;
use sluice_core::layout::RowFingerprint;

use crate::plan::RowPlan;

#[derive(Debug)]
pub struct SentFingerprint {
    rows: RowFingerprint,
    /// The byte width of each BIT column (`None` for the others); empty when there are none.
    bit_widths: Vec<Option<usize>>,
}

impl SentFingerprint {
    /// `None` when the plan has a BIT column whose width is unknown.
    pub fn new(plan: &RowPlan) -> Option<SentFingerprint> {
        let mut bit_widths = Vec::new();
        if plan.columns.iter().any(|c| c.kind == ColumnKind::Bit) {
            for c in &plan.columns {
                bit_widths.push(match c.kind {
                    ColumnKind::Bit if c.precision == 0 => return None,
                    ColumnKind::Bit => Some(usize::from(c.precision).div_ceil(8)),
                    _ => None,
                });
            }
        }
        Some(SentFingerprint {
            rows: RowFingerprint::new(plan.fingerprint),
            bit_widths,
        })
    }

    /// Adds a row given as the canonical cells sent (BIT as a decimal number).
    pub fn add(&mut self, cells: &[Option<&[u8]>]) {
        if self.bit_widths.is_empty() {
            self.rows.add_row(cells.iter().copied());
            return;
        }
        let bits: Vec<Option<Vec<u8>>> = cells
            .iter()
            .zip(&self.bit_widths)
            .map(|(cell, width)| {
                let (Some(v), Some(w)) = (cell, width) else {
                    return None;
                };
                let n: u64 = std::str::from_utf8(v).ok()?.parse().ok()?;
                Some(n.to_be_bytes()[8 - (*w).min(8)..].to_vec())
            })
            .collect();
        self.rows.add_row(
            cells
                .iter()
                .zip(&bits)
                .map(|(cell, bytes)| bytes.as_deref().or(*cell)),
        );
    }

    pub fn finish(self) -> RowFingerprint {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::{ColumnInfo, TableInfo, TableName};

    fn column(name: &str, kind: ColumnKind, precision: u8) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            kind,
            data_type: String::new(),
            unsigned: false,
            precision,
            scale: 0,
            charset: None,
            nullable: true,
        }
    }

    #[test]
    fn bit_is_fingerprinted_as_the_bytes_the_server_prints() {
        let table = TableInfo {
            name: TableName::new("db", "t"),
            columns: vec![
                column("id", ColumnKind::Integer, 10),
                column("b", ColumnKind::Bit, 12),
            ],
            primary_key: vec![0],
            estimated_rows: 0,
        };
        let plan = RowPlan::new(&table, None).unwrap();
        let mut sent = SentFingerprint::new(&plan).unwrap();
        sent.add(&[Some(b"1"), Some(b"258")]);
        sent.add(&[Some(b"2"), None]);
        let mut read_back = RowFingerprint::default();
        read_back.add_row([Some(&b"1"[..]), Some(&[1u8, 2][..])]);
        read_back.add_row([Some(&b"2"[..]), None]);
        assert_eq!(sent.finish().hex(), read_back.hex());

        let mut unknown = table.clone();
        unknown.columns[1].precision = 0;
        assert!(SentFingerprint::new(&RowPlan::new(&unknown, None).unwrap()).is_none());
    }
}
