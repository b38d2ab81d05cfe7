//! A cell as a dump file spells it, before it is known what column it lands in: a quoted
//! string, a bare number or word, raw bytes from a hex or bit literal, or NULL. [`Cell::for_load`]
//! turns it into what the loader sends for a column of a given kind.

use sluice_core::{ColumnKind, bit_value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    /// A quoted string's bytes, unescaped. Into a BIT column its bytes are the bits, as MySQL
    /// reads `INSERT … VALUES ('\x01U')` (mydumper writes BIT this way).
    Text(Vec<u8>),
    /// A CSV field: text; into a BIT column a number if it is all digits (Sluice's CSV), else
    /// the bits.
    Field(Vec<u8>),
    /// An unquoted literal: a number, or a word such as `TRUE`.
    Bare(Vec<u8>),
    /// Bytes from `0x…`, `X'…'`, `b'…'` or `_binary '…'`.
    Bytes(Vec<u8>),
}

impl Cell {
    /// The cell's bytes as the loader writes them for a column of `kind`, `None` for NULL:
    /// binary columns get their raw bytes (the loader hex-encodes them), BIT columns a number,
    /// everything else the text.
    pub fn into_load(self, kind: ColumnKind) -> Option<Vec<u8>> {
        match (&self, kind) {
            (Cell::Null, _) => None,
            (Cell::Bytes(b) | Cell::Text(b), ColumnKind::Bit) => {
                Some(bit_value(b).to_string().into_bytes())
            }
            (Cell::Field(b), ColumnKind::Bit)
                if !b.is_empty() && b.iter().all(u8::is_ascii_digit) =>
            {
                self.into_bytes()
            }
            (Cell::Field(b), ColumnKind::Bit) => Some(bit_value(b).to_string().into_bytes()),
            (Cell::Bytes(b), ColumnKind::Integer | ColumnKind::Decimal | ColumnKind::Float) => {
                Some(bit_value(b).to_string().into_bytes())
            }
            (Cell::Bare(v), _) if v.eq_ignore_ascii_case(b"TRUE") => Some(b"1".to_vec()),
            (Cell::Bare(v), _) if v.eq_ignore_ascii_case(b"FALSE") => Some(b"0".to_vec()),
            _ => self.into_bytes(),
        }
    }

    fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Cell::Null => None,
            Cell::Text(v) | Cell::Field(v) | Cell::Bare(v) | Cell::Bytes(v) => Some(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_columns_read_each_spelling() {
        assert_eq!(
            Cell::Bare(b"341".to_vec()).into_load(ColumnKind::Bit),
            Some(b"341".to_vec())
        );
        assert_eq!(
            Cell::Text(vec![1, b'U']).into_load(ColumnKind::Bit),
            Some(b"341".to_vec())
        );
        assert_eq!(
            Cell::Bytes(vec![1, 0x55]).into_load(ColumnKind::Bit),
            Some(b"341".to_vec())
        );
        assert_eq!(
            Cell::Field(b"341".to_vec()).into_load(ColumnKind::Bit),
            Some(b"341".to_vec())
        );
        assert_eq!(
            Cell::Field(vec![1, b'U']).into_load(ColumnKind::Bit),
            Some(b"341".to_vec())
        );
        assert_eq!(Cell::Null.into_load(ColumnKind::Text), None);
    }
}
