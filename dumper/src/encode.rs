//! Row encoders: the server's text for each cell becomes an exact SQL literal or CSV field.
//!
//! Rows are read with the text protocol, so every value arrives as the server prints it in a
//! `utf8mb4`, `time_zone = '+00:00'` session: decimals with all their digits, temporal values
//! with their fractional seconds and zero dates as `0000-00-00`, JSON as text, ENUM/SET as their
//! labels. Only three kinds need more than quoting: binary strings (written as hex in SQL, raw
//! bytes in CSV), BIT (bytes on the wire, written as the number), and FLOAT (selected as DOUBLE,
//! see `schema.rs`).

use std::borrow::Cow;

use mysql_async::{Row, Value};
use sluice_core::layout::CsvDialect;
use sluice_core::{ColumnKind, bit_value, quote_ident};

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

/// Writes rows as multi-row INSERT statements of bounded size.
pub struct SqlEncoder {
    insert_prefix: Vec<u8>,
    kinds: Vec<ColumnKind>,
    max_statement: usize,
    statement_len: usize,
}

impl SqlEncoder {
    pub fn new(
        table: &str,
        columns: &[String],
        kinds: Vec<ColumnKind>,
        max_statement: usize,
    ) -> SqlEncoder {
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let insert_prefix = format!(
            "INSERT INTO {} ({}) VALUES\n",
            quote_ident(table),
            cols.join(",")
        )
        .into_bytes();
        SqlEncoder {
            insert_prefix,
            kinds,
            max_statement,
            statement_len: 0,
        }
    }

    /// Session settings every file starts with, so that each file loads on its own.
    pub fn file_header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            b"/*!40101 SET NAMES utf8mb4*/;\n/*!40103 SET TIME_ZONE='+00:00'*/;\n\
              /*!40101 SET SQL_MODE='NO_AUTO_VALUE_ON_ZERO'*/;\n/*!40014 SET FOREIGN_KEY_CHECKS=0*/;\n\
              /*!40014 SET UNIQUE_CHECKS=0*/;\n",
        );
    }

    pub fn row(&mut self, out: &mut Vec<u8>, cells: &[Option<Cow<'_, [u8]>>]) {
        let start = out.len();
        if self.statement_len == 0 {
            out.extend_from_slice(&self.insert_prefix);
        } else {
            out.extend_from_slice(b",\n");
        }
        out.push(b'(');
        for (i, (kind, value)) in self.kinds.iter().zip(cells).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            sql_literal(out, *kind, value.as_deref());
        }
        out.push(b')');
        self.statement_len += out.len() - start;
        if self.statement_len >= self.max_statement {
            self.end_statement(out);
        }
    }

    /// Closes the open statement, if any; call once after the last row.
    pub fn end_statement(&mut self, out: &mut Vec<u8>) {
        if self.statement_len > 0 {
            out.extend_from_slice(b";\n");
            self.statement_len = 0;
        }
    }
}

/// Writes rows as CSV in the dump's dialect.
pub struct CsvEncoder {
    dialect: CsvDialect,
    kinds: Vec<ColumnKind>,
}

impl CsvEncoder {
    pub fn new(dialect: CsvDialect, kinds: Vec<ColumnKind>) -> CsvEncoder {
        CsvEncoder { dialect, kinds }
    }

    pub fn file_header(&self, out: &mut Vec<u8>, columns: &[String]) {
        if !self.dialect.header {
            return;
        }
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                out.push(self.dialect.delimiter);
            }
            self.dialect.write_field(out, Some(c.as_bytes()), true);
        }
        out.push(b'\n');
    }

    pub fn row(&mut self, out: &mut Vec<u8>, cells: &[Option<Cow<'_, [u8]>>]) {
        for (i, (kind, value)) in self.kinds.iter().zip(cells).enumerate() {
            if i > 0 {
                out.push(self.dialect.delimiter);
            }
            match (kind, value) {
                (ColumnKind::Bit, Some(v)) => {
                    out.extend_from_slice(bit_value(v).to_string().as_bytes());
                }
                (kind, value) => {
                    self.dialect
                        .write_field(out, value.as_deref(), !kind.is_numeric())
                }
            }
        }
        out.push(b'\n');
    }
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

    #[test]
    fn statements_split_at_the_size_limit() {
        let mut enc = SqlEncoder::new("t", &["a".into()], vec![ColumnKind::Integer], 40);
        let mut out = Vec::new();
        for i in 0..4 {
            let v = i.to_string().into_bytes();
            enc.row(&mut out, &[Some(Cow::Owned(v))]);
        }
        enc.end_statement(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.matches("INSERT INTO `t` (`a`) VALUES").count(),
            2,
            "{text}"
        );
        assert!(text.ends_with(";\n"));
    }
}
