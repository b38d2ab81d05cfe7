//! The SQL that fingerprints rows on the server, so that only a few numbers per chunk cross the
//! network.
//!
//! A row's canonical text is `CONCAT_WS('#', v1, …, vn, nulls, lengths)` where
//! * each `v` is the column made explicit: character columns in other charsets converted to
//!   utf8mb4 (so a latin1 and a utf8mb4 column holding the same text agree), FLOAT as DOUBLE (all its digits, so a
//!   last-digit change shows), BIT as a number, everything else as the server prints it in the
//!   checker's `time_zone = '+00:00'` session (TIMESTAMP therefore compares instants); columns
//!   already in utf8mb4 are taken as they are, since converting them costs time and changes
//!   nothing;
//! * `nulls` is one `0`/`1` per column (`CONCAT_WS` skips NULLs, so NULL and `''` would otherwise
//!   look alike);
//! * `lengths` lists the length of each string value (bytes for utf8mb4 and binary columns,
//!   characters for others, so the figure does not depend on the charset), so that a separator
//!   inside a value cannot make two different rows print alike.
//!
//! The row hash is 64 bits: `CRC32` and `CRC32C` of that text where both servers have CRC32C
//! (MariaDB ≥ 10.8), else two 32-bit slices of its MD5. A chunk's fingerprint is
//! `COUNT(*)` with the `SUM` of each half: order-independent, and unlike `BIT_XOR` a duplicated
//! row does not cancel out.

use sluice_core::{ColumnKind, Flavor, ServerInfo, TableInfo, quote_ident};

#[derive(Debug, Clone, Copy)]
pub struct HashSql {
    crc32c: bool,
}

impl HashSql {
    /// The hash functions both servers have.
    pub fn for_servers(a: &ServerInfo, b: &ServerInfo) -> HashSql {
        let has = |s: &ServerInfo| s.flavor == Flavor::MariaDb && s.version >= (10, 8, 0);
        HashSql {
            crc32c: has(a) && has(b),
        }
    }

    fn canonical(column: &sluice_core::ColumnInfo) -> String {
        let c = quote_ident(&column.name);
        match column.kind {
            ColumnKind::Float => format!("({c} + 0e0)"),
            ColumnKind::Bit => format!("({c} + 0)"),
            // Converting costs a third of the hashing time: only where the bytes would differ.
            ColumnKind::Text
                if column
                    .charset
                    .as_deref()
                    .is_some_and(|cs| cs != "utf8mb4" && cs != "binary") =>
            {
                format!("CONVERT({c} USING utf8mb4)")
            }
            _ => c,
        }
    }

    /// The canonical row text expression of a table.
    pub fn row_text(&self, table: &TableInfo) -> String {
        let values: Vec<String> = table.columns.iter().map(Self::canonical).collect();
        let nulls: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("ISNULL({})", quote_ident(&c.name)))
            .collect();
        // Only strings can contain the separator; numbers and dates cannot.
        let lengths: Vec<String> = table
            .columns
            .iter()
            .filter(|c| matches!(c.kind, ColumnKind::Text | ColumnKind::Binary))
            .map(|c| match c.charset.as_deref() {
                Some("utf8mb4") | Some("binary") | None => {
                    format!("LENGTH({})", quote_ident(&c.name))
                }
                Some(_) => format!("CHAR_LENGTH({})", quote_ident(&c.name)),
            })
            .collect();
        let mut parts = values;
        parts.push(format!("CONCAT({})", nulls.join(", ")));
        parts.extend(lengths);
        format!("CONCAT_WS('#', {})", parts.join(", "))
    }

    /// The two 32-bit halves of the row hash.
    pub fn row_hash(&self, table: &TableInfo) -> (String, String) {
        let text = self.row_text(table);
        if self.crc32c {
            (format!("CRC32({text})"), format!("CRC32C({text})"))
        } else {
            (
                format!("CONV(SUBSTRING(MD5({text}), 1, 8), 16, 10)"),
                format!("CONV(SUBSTRING(MD5({text}), 9, 8), 16, 10)"),
            )
        }
    }

    fn where_clause(predicate: Option<&str>) -> String {
        predicate.map(|p| format!(" WHERE {p}")).unwrap_or_default()
    }

    /// `COUNT(*)` and the two hash sums of a chunk.
    pub fn chunk_sql(&self, table: &TableInfo, predicate: Option<&str>) -> String {
        let (h1, h2) = self.row_hash(table);
        format!(
            "SELECT COUNT(*), COALESCE(SUM({h1}), 0), COALESCE(SUM({h2}), 0) FROM {}{}",
            table.name,
            Self::where_clause(predicate)
        )
    }

    /// Primary key columns and the row hash of every row of a chunk.
    pub fn row_hashes_sql(&self, table: &TableInfo, predicate: Option<&str>) -> String {
        let (h1, h2) = self.row_hash(table);
        let keys: Vec<String> = table
            .key_columns()
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        format!(
            "SELECT {}, {h1}, {h2} FROM {}{}",
            keys.join(", "),
            table.name,
            Self::where_clause(predicate)
        )
    }

    /// For a table without a key: how many rows have each row hash.
    pub fn multiset_sql(&self, table: &TableInfo) -> String {
        let (h1, h2) = self.row_hash(table);
        format!(
            "SELECT {h1} AS h1, {h2} AS h2, COUNT(*) FROM {} GROUP BY h1, h2",
            table.name
        )
    }

    /// Rows of a keyless table with a given row hash.
    pub fn rows_with_hash_sql(&self, table: &TableInfo, h1: &str, h2: &str) -> String {
        let (e1, e2) = self.row_hash(table);
        format!(
            "SELECT {} FROM {} WHERE {e1} = {h1} AND {e2} = {h2}",
            table.select_list(),
            table.name
        )
    }
}
