//! In which character set a worker reads a table's rows, and the client-side conversion that
//! makes `binary` results the same UTF-8 text as `utf8mb4` results.
//!
//! Why: with `character_set_results = utf8mb4` the server converts every string of a latin1
//! table to UTF-8 (`my_convert`, `net_store_data_cs`: about 6 % of its CPU on the sysbench
//! dump, perf), and on two cores the server's CPU is now what bounds the dump. mydumper reads
//! with `SET NAMES binary`. Sluice keeps its files in UTF-8, so:
//! * a table whose text columns are all utf8mb4, utf8mb3, ascii or binary is read as `binary`:
//!   the bytes are already what `utf8mb4` results would be;
//! * a table with latin1 columns too is read as `binary`, and its latin1 cells are converted
//!   here, only when they hold a byte ≥ 0x80 (ASCII is the same in both);
//! * any other character set (utf16, gbk, cp1251, …) keeps the server's conversion.
//!
//! MySQL's `latin1` is Windows-1252 with its five undefined bytes (0x81, 0x8D, 0x8F, 0x90,
//! 0x9D) mapped to the C1 controls of the same value; [`LATIN1_HIGH`] is that table for
//! 0x80–0x9F, and 0xA0–0xFF are U+00A0–U+00FF. `tests/tests/dump_types.rs` compares all 256
//! bytes with the server's own conversion.

use std::borrow::Cow;

use sluice_core::TableInfo;

/// How a table's rows are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultCharset {
    /// `utf8mb4`: the server converts.
    Utf8mb4,
    /// `binary`, converting the cells of these column positions from latin1.
    Binary { latin1: Vec<usize> },
}

impl ResultCharset {
    pub fn of(table: &TableInfo) -> ResultCharset {
        let mut latin1 = Vec::new();
        for (i, c) in table.columns.iter().enumerate() {
            match c.charset.as_deref() {
                None | Some("utf8mb4" | "utf8mb3" | "utf8" | "ascii" | "binary") => {}
                Some("latin1") => latin1.push(i),
                Some(_) => return ResultCharset::Utf8mb4,
            }
        }
        ResultCharset::Binary { latin1 }
    }

    /// The value for `SET character_set_results`.
    pub fn name(&self) -> &'static str {
        match self {
            ResultCharset::Utf8mb4 => "utf8mb4",
            ResultCharset::Binary { .. } => "binary",
        }
    }

    /// The latin1 columns whose cells need converting.
    pub fn latin1_columns(&self) -> &[usize] {
        match self {
            ResultCharset::Binary { latin1 } => latin1,
            ResultCharset::Utf8mb4 => &[],
        }
    }
}

/// Code points of MySQL latin1 bytes 0x80–0x9F.
const LATIN1_HIGH: [u16; 32] = [
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
];

/// A latin1 value as UTF-8; borrowed when it is ASCII.
pub fn latin1_to_utf8(bytes: &[u8]) -> Cow<'_, [u8]> {
    if bytes.is_ascii() {
        return Cow::Borrowed(bytes);
    }
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 2);
    for &b in bytes {
        let c = match b {
            0x80..=0x9F => u32::from(LATIN1_HIGH[usize::from(b - 0x80)]),
            _ => u32::from(b),
        };
        out.push(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
    }
    Cow::Owned(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::{ColumnInfo, ColumnKind, TableName};

    fn table(charsets: &[Option<&str>]) -> TableInfo {
        TableInfo {
            name: TableName::new("d", "t"),
            columns: charsets
                .iter()
                .enumerate()
                .map(|(i, cs)| ColumnInfo {
                    name: format!("c{i}"),
                    kind: ColumnKind::Text,
                    data_type: "varchar".into(),
                    unsigned: false,
                    precision: 0,
                    scale: 0,
                    charset: cs.map(str::to_owned),
                    nullable: true,
                })
                .collect(),
            primary_key: vec![],
            estimated_rows: 0,
        }
    }

    #[test]
    fn the_plan_follows_the_columns_charsets() {
        assert_eq!(
            ResultCharset::of(&table(&[
                None,
                Some("utf8mb4"),
                Some("latin1"),
                Some("ascii")
            ])),
            ResultCharset::Binary { latin1: vec![2] }
        );
        assert_eq!(
            ResultCharset::of(&table(&[Some("latin1"), Some("utf16")])),
            ResultCharset::Utf8mb4
        );
        assert_eq!(ResultCharset::of(&table(&[None])).name(), "binary");
    }

    #[test]
    fn latin1_converts_like_windows_1252_with_c1_gaps() {
        assert!(matches!(latin1_to_utf8(b"plain"), Cow::Borrowed(_)));
        assert_eq!(
            &*latin1_to_utf8(b"caf\xE9 \x80\x81\x9F\xFF"),
            "café €\u{81}Ÿÿ".as_bytes()
        );
    }
}
