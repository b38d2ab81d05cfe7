//! Row encoders: the server's text for each cell becomes an exact SQL literal or CSV field.
//!
//! Rows are read with the text protocol, so every value arrives as the server prints it in a
//! `utf8mb4`, `time_zone = '+00:00'` session: decimals with all their digits, temporal values
//! with their fractional seconds and zero dates as `0000-00-00`, JSON as text, ENUM/SET as their
//! labels. Only three kinds need more than quoting: binary strings (written as hex in SQL, raw
//! bytes in CSV), BIT (bytes on the wire, written as the number), and FLOAT (selected as DOUBLE,
//! see `schema.rs`).

use sluice_core::layout::CsvDialect;
use sluice_core::{ColumnKind, bit_value, quote_ident, sql_literal};

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

    pub fn row(&mut self, out: &mut Vec<u8>, cells: &[Option<&[u8]>]) {
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

    pub fn row(&mut self, out: &mut Vec<u8>, cells: &[Option<&[u8]>]) {
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

    #[test]
    fn statements_split_at_the_size_limit() {
        let mut enc = SqlEncoder::new("t", &["a".into()], vec![ColumnKind::Integer], 40);
        let mut out = Vec::new();
        for i in 0..4 {
            let v = i.to_string().into_bytes();
            enc.row(&mut out, &[Some(&v[..])]);
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
