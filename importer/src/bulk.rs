//! Rows as MariaDB bulk-execution parameters: how the loaders send a batch when the target runs
//! `COM_STMT_BULK_EXECUTE` (see `sluice_core::bulk` for the protocol and the measurements).
//!
//! A batch buffer holds the parameter types, one type and flag byte pair per column, then the
//! rows. The statement mirrors the LOAD DATA one value for value:
//! * binary columns go as `BLOB` parameters: raw bytes, no hex and no `UNHEX()`;
//! * BIT columns as their number, through `CAST(? AS UNSIGNED)`;
//! * every other value as the same text LOAD DATA would read, which the server stores with
//!   `Field::store`, exactly as LOAD DATA does. That text goes as `BLOB` (no conversion) while
//!   it is plain ASCII and every column reads ASCII as itself, the rule `LoadSpec::
//!   batch_charset` applies to LOAD DATA; the first other value turns the batch's text
//!   parameters into utf8mb4 `VAR_STRING`, converted to each column's charset by the server.
//! * Duplicates: `INSERT IGNORE` keeps the target's row, `REPLACE` replaces it, as LOAD DATA's
//!   `IGNORE` and `REPLACE` do.

use sluice_core::bulk::{PARAM_BLOB, PARAM_TEXT, push_param};
use sluice_core::{ColumnKind, quote_ident};

use crate::load::LoadSpec;

/// The statement each row of a batch runs.
pub(crate) fn insert_statement(spec: &LoadSpec) -> String {
    let names: Vec<String> = spec.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let values: Vec<&str> = spec
        .columns
        .iter()
        .map(|c| match c.kind {
            ColumnKind::Bit => "CAST(? AS UNSIGNED)",
            _ => "?",
        })
        .collect();
    let verb = if spec.replace {
        "REPLACE"
    } else {
        "INSERT IGNORE"
    };
    format!(
        "{verb} INTO {} ({}) VALUES ({})",
        spec.table,
        names.join(", "),
        values.join(", ")
    )
}

/// Appends one row (cells in `columns` order) to a batch; an empty batch first gets the
/// parameter types.
pub(crate) fn encode_row(spec: &LoadSpec, out: &mut Vec<u8>, cells: &[Option<&[u8]>]) {
    // A short row would make the server read the next row's values as this one's.
    debug_assert_eq!(
        cells.len(),
        spec.columns.len(),
        "a bulk row has every column"
    );
    if out.is_empty() {
        let raw = spec.ascii_goes_raw() || spec.charset == "binary";
        for c in &spec.columns {
            let kind = if raw || c.kind == ColumnKind::Binary {
                PARAM_BLOB
            } else {
                PARAM_TEXT
            };
            out.extend_from_slice(&[kind, 0]);
        }
    }
    for (i, (c, v)) in spec.columns.iter().zip(cells).enumerate() {
        if let Some(v) = v
            && out[2 * i] == PARAM_BLOB
            && c.kind != ColumnKind::Binary
            && spec.charset != "binary"
            && !v.is_ascii()
        {
            text_from_now(spec, out);
        }
        push_param(out, *v);
    }
}

/// Makes the batch's text parameters utf8mb4 text: a value that is not ASCII must be converted
/// to its column's charset. The rows already in the batch are ASCII, which converts to itself.
fn text_from_now(spec: &LoadSpec, out: &mut [u8]) {
    for (i, c) in spec.columns.iter().enumerate() {
        if c.kind != ColumnKind::Binary {
            out[2 * i] = PARAM_TEXT;
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_core::{ColumnInfo, TableName};

    use super::*;
    use crate::config::LoadMethod;

    fn col(name: &str, kind: ColumnKind, charset: Option<&str>) -> ColumnInfo {
        ColumnInfo {
            charset: charset.map(Into::into),
            ..crate::load::tests::col(name, kind)
        }
    }

    fn spec(charset: &str) -> LoadSpec {
        LoadSpec {
            table: TableName::new("db", "t"),
            columns: vec![
                col("a", ColumnKind::Integer, None),
                col("b", ColumnKind::Binary, None),
                col("c", ColumnKind::Text, Some("latin1")),
                col("d", ColumnKind::Bit, None),
            ],
            charset: charset.into(),
            replace: false,
            method: LoadMethod::BulkInsert,
            batch_bytes: 1 << 20,
            max_row_bytes: 2 << 20,
        }
    }

    #[test]
    fn the_statement_casts_bits_and_keeps_or_replaces_rows() {
        let mut s = spec("utf8mb4");
        assert_eq!(
            insert_statement(&s),
            "INSERT IGNORE INTO `db`.`t` (`a`, `b`, `c`, `d`) VALUES (?, ?, ?, CAST(? AS UNSIGNED))"
        );
        s.replace = true;
        assert!(insert_statement(&s).starts_with("REPLACE INTO `db`.`t` "));
    }

    #[test]
    fn ascii_goes_raw_until_a_value_needs_converting() {
        let s = spec("utf8mb4");
        let mut out = Vec::new();
        encode_row(
            &s,
            &mut out,
            &[Some(b"1"), Some(&[0, 0xFF]), Some(b"ab"), None],
        );
        assert_eq!(
            out,
            [
                PARAM_BLOB, 0, PARAM_BLOB, 0, PARAM_BLOB, 0, PARAM_BLOB, 0, // types
                0, 1, b'1', 0, 2, 0, 0xFF, 0, 2, b'a', b'b', 1
            ]
        );
        encode_row(
            &s,
            &mut out,
            &[Some(b"2"), Some(&[0x80]), Some("é".as_bytes()), Some(b"5")],
        );
        assert_eq!(
            out[..8],
            [PARAM_TEXT, 0, PARAM_BLOB, 0, PARAM_TEXT, 0, PARAM_TEXT, 0]
        );
        assert_eq!(
            out[20..],
            [0, 1, b'2', 0, 1, 0x80, 0, 2, 0xC3, 0xA9, 0, 1, b'5']
        );
        // A dump whose text is in the columns' own charsets (mydumper's) stays raw.
        let raw = spec("binary");
        let mut out = Vec::new();
        encode_row(&raw, &mut out, &[Some(b"1"), None, Some(&[0xE9]), None]);
        assert_eq!(
            out[..8],
            [PARAM_BLOB, 0, PARAM_BLOB, 0, PARAM_BLOB, 0, PARAM_BLOB, 0]
        );
    }

    #[test]
    fn text_that_is_not_itself_in_ascii_is_always_converted() {
        let mut s = spec("utf8mb4");
        s.columns[2].charset = Some("utf16".into());
        let mut out = Vec::new();
        encode_row(&s, &mut out, &[Some(b"1"), None, Some(b"ab"), None]);
        assert_eq!(
            out[..8],
            [PARAM_TEXT, 0, PARAM_BLOB, 0, PARAM_TEXT, 0, PARAM_TEXT, 0]
        );
    }
}
