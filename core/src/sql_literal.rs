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

/// A single-quoted string with MySQL's backslash escapes (the dump's session never sets
/// NO_BACKSLASH_ESCAPES; the file header pins sql_mode).
fn push_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'\'');
    escape_with(
        out,
        bytes,
        [b'\'', b'\\', 0],
        [b'\n', b'\r', 0x1a],
        |b| match b {
            b'\'' => b"\\'",
            b'\\' => b"\\\\",
            0 => b"\\0",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => b"\\Z",
        },
    );
    out.push(b'\'');
}

/// Appends `bytes` with each byte of `a` or `b` replaced by `escape(byte)`: runs of plain
/// bytes are copied whole, and the special bytes are found with two SIMD searches of three
/// bytes each (repeat a byte to search for fewer). Each search's next hit is kept until it is
/// passed, so the input is scanned about twice whatever it holds. Shared by the dump's SQL
/// literals and the importer's LOAD DATA stream, the hot paths of both.
pub fn escape_with(
    out: &mut Vec<u8>,
    bytes: &[u8],
    a: [u8; 3],
    b: [u8; 3],
    escape: impl Fn(u8) -> &'static [u8],
) {
    let find_a = |from: usize| memchr::memchr3(a[0], a[1], a[2], &bytes[from..]).map(|i| from + i);
    let find_b = |from: usize| memchr::memchr3(b[0], b[1], b[2], &bytes[from..]).map(|i| from + i);
    let (mut next_a, mut next_b) = (find_a(0), find_b(0));
    let mut at = 0;
    loop {
        let i = match (next_a, next_b) {
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => break,
        };
        out.extend_from_slice(&bytes[at..i]);
        out.extend_from_slice(escape(bytes[i]));
        at = i + 1;
        if next_a == Some(i) {
            next_a = find_a(at);
        }
        if next_b == Some(i) {
            next_b = find_b(at);
        }
    }
    out.extend_from_slice(&bytes[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(kind: ColumnKind, v: Option<&[u8]>) -> String {
        let mut out = Vec::new();
        sql_literal(&mut out, kind, v);
        String::from_utf8(out).unwrap()
    }

    /// Byte by byte, the way the escaping is defined.
    fn quoted_reference(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![b'\''];
        for &b in bytes {
            match b {
                b'\'' => out.extend_from_slice(b"\\'"),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0 => out.extend_from_slice(b"\\0"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                0x1a => out.extend_from_slice(b"\\Z"),
                _ => out.push(b),
            }
        }
        out.push(b'\'');
        out
    }

    #[test]
    fn quoting_matches_the_byte_by_byte_definition() {
        // Strings of every length up to 300 drawn mostly from the special bytes.
        let alphabet = [b'\'', b'\\', 0, b'\n', b'\r', 0x1a, b'a', 0xFF, b'"'];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..300 {
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let mut out = Vec::new();
            push_quoted(&mut out, &s);
            assert_eq!(out, quoted_reference(&s), "{s:?}");
        }
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
