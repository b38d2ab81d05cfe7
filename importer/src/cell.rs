//! Cells as a dump file spells them, before it is known what column they land in: a quoted
//! string, a bare number or word, raw bytes from a hex or bit literal, or NULL.
//!
//! A [`Row`] keeps all its cells' bytes in one buffer that the readers clear and refill: a
//! vector per cell was seven allocations per row, about a tenth of the importer's CPU (perf,
//! sysbench import). [`load_into`] turns a cell into what the loader sends for a column kind.

use sluice_core::{ColumnKind, bit_value};

/// How a cell was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Null,
    /// A quoted string's bytes, unescaped. Into a BIT column its bytes are the bits, as MySQL
    /// reads `INSERT … VALUES ('\x01U')` (mydumper writes BIT this way).
    Text,
    /// A CSV field: text; into a BIT column a number if it is all digits (Sluice's CSV), else
    /// the bits.
    Field,
    /// An unquoted literal: a number, or a word such as `TRUE`.
    Bare,
    /// Bytes from `0x…`, `X'…'`, `b'…'` or `_binary '…'`.
    Bytes,
}

/// One row's cells, their bytes side by side in one reused buffer.
#[derive(Debug, Default, Clone)]
pub struct Row {
    bytes: Vec<u8>,
    /// Each cell's kind and where its bytes end in `bytes` (each starts where the one before
    /// ends).
    cells: Vec<(CellKind, usize)>,
}

impl Row {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.cells.clear();
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Adds a cell with these bytes.
    pub fn push(&mut self, kind: CellKind, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.close(kind);
    }

    /// Where the next cell's bytes go: append them, then [`Row::close`] the cell.
    pub fn open(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Ends the cell whose bytes were appended since the last one.
    pub fn close(&mut self, kind: CellKind) {
        self.cells.push((kind, self.bytes.len()));
    }

    /// Cell `i`: its kind and bytes.
    pub fn get(&self, i: usize) -> (CellKind, &[u8]) {
        let start = if i == 0 { 0 } else { self.cells[i - 1].1 };
        let (kind, end) = self.cells[i];
        (kind, &self.bytes[start..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = (CellKind, &[u8])> + '_ {
        (0..self.cells.len()).map(|i| self.get(i))
    }
}

/// Appends to `out` the bytes a cell loads as into a column of `column` kind; `false` (nothing
/// appended) for NULL. Binary columns get the raw bytes (the loader hex-encodes them), BIT
/// columns a number, everything else the text.
pub fn load_into(kind: CellKind, bytes: &[u8], column: ColumnKind, out: &mut Vec<u8>) -> bool {
    use std::io::Write;
    let number = |out: &mut Vec<u8>| {
        let _ = write!(out, "{}", bit_value(bytes));
    };
    match (kind, column) {
        (CellKind::Null, _) => return false,
        (CellKind::Field, ColumnKind::Bit)
            if !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit) =>
        {
            out.extend_from_slice(bytes)
        }
        (CellKind::Bytes | CellKind::Text | CellKind::Field, ColumnKind::Bit) => number(out),
        (CellKind::Bytes, ColumnKind::Integer | ColumnKind::Decimal | ColumnKind::Float) => {
            number(out)
        }
        (CellKind::Bare, _) if bytes.eq_ignore_ascii_case(b"TRUE") => out.push(b'1'),
        (CellKind::Bare, _) if bytes.eq_ignore_ascii_case(b"FALSE") => out.push(b'0'),
        _ => out.extend_from_slice(bytes),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(kind: CellKind, bytes: &[u8], column: ColumnKind) -> Option<Vec<u8>> {
        let mut out = b"x".to_vec();
        load_into(kind, bytes, column, &mut out).then(|| out[1..].to_vec())
    }

    #[test]
    fn bit_columns_read_each_spelling() {
        let bit = ColumnKind::Bit;
        assert_eq!(load(CellKind::Bare, b"341", bit), Some(b"341".to_vec()));
        assert_eq!(load(CellKind::Text, &[1, b'U'], bit), Some(b"341".to_vec()));
        assert_eq!(
            load(CellKind::Bytes, &[1, 0x55], bit),
            Some(b"341".to_vec())
        );
        assert_eq!(load(CellKind::Field, b"341", bit), Some(b"341".to_vec()));
        assert_eq!(
            load(CellKind::Field, &[1, b'U'], bit),
            Some(b"341".to_vec())
        );
        assert_eq!(load(CellKind::Null, b"", ColumnKind::Text), None);
        assert_eq!(
            load(CellKind::Bytes, &[1, 0], ColumnKind::Integer),
            Some(b"256".to_vec())
        );
        assert_eq!(
            load(CellKind::Bare, b"true", ColumnKind::Integer),
            Some(b"1".to_vec())
        );
    }

    #[test]
    fn a_row_hands_back_each_cell_as_pushed() {
        let mut row = Row::default();
        row.push(CellKind::Bare, b"12");
        row.push(CellKind::Null, b"");
        row.open().extend_from_slice(b"ab");
        row.open().push(b'c');
        row.close(CellKind::Text);
        row.push(CellKind::Text, b"");
        let cells: Vec<_> = row.iter().collect();
        assert_eq!(
            cells,
            [
                (CellKind::Bare, &b"12"[..]),
                (CellKind::Null, &b""[..]),
                (CellKind::Text, &b"abc"[..]),
                (CellKind::Text, &b""[..]),
            ]
        );
        row.clear();
        assert_eq!(row.len(), 0);
    }
}
