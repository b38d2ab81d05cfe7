//! Cells as the text protocol delivers them, and exact SQL literals for them: what the dumper
//! writes into INSERT statements, the planner into chunk boundaries and the checksum into fix
//! SQL.

use std::borrow::Cow;

use mysql_async::{Row, Value};

use crate::{ColumnKind, bit_value};

/// One cell as bytes (`None` = NULL). The text protocol only sends bytes and NULL; other
/// variants are printed for safety.
pub fn cell(value: &Value) -> Option<Cow<'_, [u8]>> {
    match value {
        Value::NULL => None,
        Value::Bytes(b) => Some(Cow::Borrowed(b.as_slice())),
        Value::Int(i) => Some(Cow::Owned(i.to_string().into_bytes())),
        Value::UInt(u) => Some(Cow::Owned(u.to_string().into_bytes())),
        Value::Float(f) => Some(Cow::Owned(f.to_string().into_bytes())),
        Value::Double(d) => Some(Cow::Owned(d.to_string().into_bytes())),
        other => Some(Cow::Owned(
            other.as_sql(true).trim_matches('\'').as_bytes().to_vec(),
        )),
    }
}

/// The cells of a row, in column order.
pub fn cells(row: &Row) -> Vec<Option<Cow<'_, [u8]>>> {
    (0..row.len())
        .map(|i| row.as_ref(i).and_then(cell))
        .collect()
}

/// Appends `value` as a SQL literal for a column of `kind`.
pub fn sql_literal(out: &mut Vec<u8>, kind: ColumnKind, value: Option<&[u8]>) {
    let Some(v) = value else {
        out.extend_from_slice(b"NULL");
        return;
    };
    match kind {
        ColumnKind::Integer | ColumnKind::Decimal | ColumnKind::Float => out.extend_from_slice(v),
        ColumnKind::Bit => out.extend_from_slice(bit_value(v).to_string().as_bytes()),
        ColumnKind::Binary if v.is_empty() => out.extend_from_slice(b"''"),
        ColumnKind::Binary => push_hex(out, v),
        ColumnKind::Text => push_quoted(out, v),
    }
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(2 + bytes.len() * 2);
    out.extend_from_slice(b"0x");
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// The bytes [`push_quoted`] escapes, as a table: one load per byte on the hot path.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\'' as usize] = true;
    t[b'\\' as usize] = true;
    t[0] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[0x1a] = true;
    t
};

/// A single-quoted string with MySQL's backslash escapes (the dump's session never sets
/// NO_BACKSLASH_ESCAPES; the file header pins sql_mode).
fn push_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'\'');
    // Copy runs of plain bytes at once; only the six special bytes are escaped one by one.
    let mut rest = bytes;
    while let Some(i) = rest.iter().position(|&b| NEEDS_ESCAPE[usize::from(b)]) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(match rest[i] {
            b'\'' => b"\\'",
            b'\\' => b"\\\\",
            0 => b"\\0",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => b"\\Z",
        });
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(kind: ColumnKind, v: Option<&[u8]>) -> String {
        let mut out = Vec::new();
        sql_literal(&mut out, kind, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn literals_are_exact() {
        assert_eq!(lit(ColumnKind::Text, None), "NULL");
        assert_eq!(
            lit(ColumnKind::Text, Some(b"it's \\ \0\n\r\x1a")),
            "'it\\'s \\\\ \\0\\n\\r\\Z'"
        );
        assert_eq!(lit(ColumnKind::Binary, Some(&[0, 0xAB, 0xFF])), "0x00ABFF");
        assert_eq!(lit(ColumnKind::Binary, Some(b"")), "''");
        assert_eq!(
            lit(
                ColumnKind::Decimal,
                Some(b"-12345678901234567890.123456789")
            ),
            "-12345678901234567890.123456789"
        );
        assert_eq!(lit(ColumnKind::Bit, Some(&[1, 0])), "256");
    }
}
