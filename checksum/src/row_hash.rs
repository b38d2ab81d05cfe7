//! The SQL that fingerprints rows on the server, so that only a few numbers per chunk cross the
//! network.
//!
//! A row's canonical text is `CONCAT_WS(0xFF, v1, …, vn, nulls, lengths)`, a byte string, where
//! * each `v` is the column made explicit: character columns in other charsets converted to
//!   utf8mb4 (so a latin1 and a utf8mb4 column holding the same text agree), FLOAT as DOUBLE (all
//!   its digits, so a last-digit change shows), BIT as a number, everything else as the server
//!   prints it in the checker's `time_zone = '+00:00'` session (TIMESTAMP therefore compares
//!   instants); columns already in utf8mb4 are taken as they are, since converting them costs
//!   time and changes nothing;
//! * `nulls` is one `0`/`1` per column that may be NULL (`CONCAT_WS` skips NULLs, so NULL and
//!   `''` would otherwise look alike);
//! * `lengths` lists the byte length of each value that could contain the separator byte 0xFF:
//!   binary strings and text in charsets other than utf8 and ascii. Numbers, dates and UTF-8
//!   text never contain 0xFF, so for them the separator alone keeps two different rows from
//!   printing alike. The separator is `CAST(0xFF AS BINARY)`: a binary argument makes the whole
//!   text binary, so the columns' bytes go in as they are, unconverted.
//!
//! Both sides hash the same text, so what each column needs is decided once per table from
//! both sides' definitions ([`HashSql::new`]), and measured (MariaDB 10.11, server CPU ticks for
//! 250k sysbench rows, both hashes; `COUNT(*)` alone is 2):
//! * converting a latin1 column to utf8mb4 costs three times the rest of the hashing, so when
//!   every character column of a table has one charset and the target's columns have that same
//!   charset, the columns are hashed as they are (the same text is then the same bytes on both
//!   sides, and no two charsets meet inside `CONCAT_WS`);
//! * the NULL flags cost a quarter: a column that is NOT NULL on both sides has none;
//! * a `LENGTH()` per string column cost 20 ticks against 12 without (it reads the value a
//!   second time): hence the 0xFF separator, and lengths only where it is not enough.
//!   pt-table-checksum's single 32-bit CRC costs 9.
//!
//! The row hash is 64 bits: `CRC32` and `CRC32C` of that text where both servers have CRC32C
//! (MariaDB ≥ 10.8), else two 32-bit slices of its MD5. A chunk's fingerprint is
//! `COUNT(*)` with the `SUM` of each half: order-independent, and unlike `BIT_XOR` a duplicated
//! row does not cancel out.

use std::sync::Arc;

use sluice_core::{ColumnInfo, ColumnKind, Flavor, ServerInfo, TableInfo, TableName, quote_ident};

/// The hash SQL of every compared table, by the table's index in the run.
#[derive(Debug, Clone)]
pub struct HashSql {
    crc32c: bool,
    /// The canonical row text expression of each table (the same on both sides).
    texts: Arc<Vec<String>>,
}

/// How one column enters the row text.
struct Canon<'a> {
    column: &'a ColumnInfo,
    /// Converted to utf8mb4 (else hashed in its own charset, the same on both sides).
    convert: bool,
    /// NULL on either side: its `ISNULL` flag is part of the text.
    null_flag: bool,
}

fn is_character(c: &ColumnInfo) -> bool {
    c.kind == ColumnKind::Text && c.charset.as_deref().is_some_and(|cs| cs != "binary")
}

impl HashSql {
    /// The hash functions both servers have, and the row text of each `(source table, the
    /// same table on the target)` pair; a target table that is missing gets the safe text.
    pub fn new(
        a: &ServerInfo,
        b: &ServerInfo,
        pairs: &[(&TableInfo, Option<&TableInfo>)],
    ) -> HashSql {
        let has = |s: &ServerInfo| s.flavor == Flavor::MariaDb && s.version >= (10, 8, 0);
        HashSql {
            crc32c: has(a) && has(b),
            texts: Arc::new(pairs.iter().map(|(s, t)| row_text(s, *t)).collect()),
        }
    }

    /// The two 32-bit halves of the row hash of table `t`.
    fn row_hash(&self, t: usize) -> (String, String) {
        let text = &self.texts[t];
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
    pub fn chunk_sql(&self, t: usize, name: &TableName, predicate: Option<&str>) -> String {
        let (h1, h2) = self.row_hash(t);
        format!(
            "SELECT COUNT(*), COALESCE(SUM({h1}), 0), COALESCE(SUM({h2}), 0) FROM {}{}",
            name,
            Self::where_clause(predicate)
        )
    }

    /// Primary key columns and the row hash of every row of a chunk.
    pub fn row_hashes_sql(&self, t: usize, table: &TableInfo, predicate: Option<&str>) -> String {
        let (h1, h2) = self.row_hash(t);
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
    pub fn multiset_sql(&self, t: usize, table: &TableInfo) -> String {
        let (h1, h2) = self.row_hash(t);
        format!(
            "SELECT {h1} AS h1, {h2} AS h2, COUNT(*) FROM {} GROUP BY h1, h2",
            table.name
        )
    }

    /// Rows of a keyless table with a given row hash.
    pub fn rows_with_hash_sql(&self, t: usize, table: &TableInfo, h1: &str, h2: &str) -> String {
        let (e1, e2) = self.row_hash(t);
        format!(
            "SELECT {} FROM {} WHERE {e1} = {h1} AND {e2} = {h2}",
            table.select_list(),
            table.name
        )
    }
}

/// The canonical row text of `source`, given the same table on the target.
fn row_text(source: &TableInfo, target: Option<&TableInfo>) -> String {
    let on_target =
        |c: &ColumnInfo| target.and_then(|t| t.columns.iter().find(|x| x.name == c.name));
    // One charset for every character column, and the target's columns in it too: no conversion.
    let mut charsets = source
        .columns
        .iter()
        .filter(|c| is_character(c))
        .map(|c| c.charset.as_deref());
    let first = charsets.next();
    let one_charset = charsets.all(|cs| cs == first.flatten())
        && source
            .columns
            .iter()
            .filter(|c| is_character(c))
            .all(|c| on_target(c).is_some_and(|t| t.charset == c.charset));
    let canon: Vec<Canon<'_>> = source
        .columns
        .iter()
        .map(|c| Canon {
            column: c,
            convert: is_character(c)
                && !one_charset
                && c.charset.as_deref().is_some_and(|cs| cs != "utf8mb4"),
            null_flag: c.nullable || on_target(c).is_none_or(|t| t.nullable),
        })
        .collect();
    let mut parts: Vec<String> = canon.iter().map(canonical).collect();
    let nulls: Vec<String> = canon
        .iter()
        .filter(|c| c.null_flag)
        .map(|c| format!("ISNULL({})", quote_ident(&c.column.name)))
        .collect();
    if !nulls.is_empty() {
        parts.push(format!("CONCAT({})", nulls.join(", ")));
    }
    // Only values that can hold the byte 0xFF need their length: binary strings and text
    // hashed in a charset other than utf8 or ascii (converted columns are utf8mb4).
    parts.extend(
        canon
            .iter()
            .filter(|c| may_hold_separator(c))
            .map(|c| format!("LENGTH({})", quote_ident(&c.column.name))),
    );
    format!("CONCAT_WS({SEPARATOR}, {})", parts.join(", "))
}

/// The field separator of the row text: a byte no UTF-8 text, number or date contains, and
/// binary so that the text is bytes.
const SEPARATOR: &str = "CAST(0xFF AS BINARY)";

fn may_hold_separator(canon: &Canon<'_>) -> bool {
    match canon.column.kind {
        ColumnKind::Binary => true,
        // No charset: a date, time or JSON value, printed in ASCII or UTF-8.
        ColumnKind::Text if !canon.convert => canon
            .column
            .charset
            .as_deref()
            .is_some_and(|cs| !matches!(cs, "utf8mb4" | "utf8mb3" | "utf8" | "ascii")),
        _ => false,
    }
}

fn canonical(canon: &Canon<'_>) -> String {
    let c = quote_ident(&canon.column.name);
    match canon.column.kind {
        ColumnKind::Float => format!("({c} + 0e0)"),
        ColumnKind::Bit => format!("({c} + 0)"),
        _ if canon.convert => format!("CONVERT({c} USING utf8mb4)"),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, kind: ColumnKind, charset: Option<&str>, nullable: bool) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            kind,
            data_type: String::new(),
            unsigned: false,
            precision: 0,
            scale: 0,
            charset: charset.map(str::to_owned),
            nullable,
        }
    }

    fn table(columns: Vec<ColumnInfo>) -> TableInfo {
        TableInfo {
            name: TableName::new("db", "t"),
            columns,
            primary_key: vec![0],
            estimated_rows: 0,
        }
    }

    #[test]
    fn one_charset_on_both_sides_is_hashed_as_it_is() {
        let source = table(vec![
            column("id", ColumnKind::Integer, None, false),
            column("c", ColumnKind::Text, Some("latin1"), false),
            column("n", ColumnKind::Text, Some("latin1"), true),
        ]);
        let text = row_text(&source, Some(&source));
        assert_eq!(
            text,
            "CONCAT_WS(CAST(0xFF AS BINARY), `id`, `c`, `n`, CONCAT(ISNULL(`n`)), LENGTH(`c`), LENGTH(`n`))"
        );
    }

    #[test]
    fn only_values_that_can_hold_the_separator_byte_get_a_length() {
        let source = table(vec![
            column("id", ColumnKind::Integer, None, false),
            column("u", ColumnKind::Text, Some("utf8mb4"), false),
            column("b", ColumnKind::Binary, Some("binary"), false),
            column("d", ColumnKind::Text, None, false),
        ]);
        let text = row_text(&source, Some(&source));
        assert_eq!(
            text,
            "CONCAT_WS(CAST(0xFF AS BINARY), `id`, `u`, `b`, `d`, LENGTH(`b`))"
        );
    }

    #[test]
    fn charsets_that_differ_are_converted_and_nullable_anywhere_is_flagged() {
        let source = table(vec![
            column("id", ColumnKind::Integer, None, false),
            column("c", ColumnKind::Text, Some("latin1"), false),
        ]);
        let target = table(vec![
            column("id", ColumnKind::Integer, None, true),
            column("c", ColumnKind::Text, Some("utf8mb4"), false),
        ]);
        let text = row_text(&source, Some(&target));
        assert_eq!(
            text,
            "CONCAT_WS(CAST(0xFF AS BINARY), `id`, CONVERT(`c` USING utf8mb4), CONCAT(ISNULL(`id`)))"
        );
        // Two charsets in one table: each converted, whatever the target says.
        let mixed = table(vec![
            column("a", ColumnKind::Text, Some("latin1"), false),
            column("b", ColumnKind::Text, Some("cp1251"), false),
        ]);
        let text = row_text(&mixed, Some(&mixed));
        assert!(
            text.contains("CONVERT(`a` USING utf8mb4), CONVERT(`b` USING utf8mb4)"),
            "{text}"
        );
        // A missing target table: every column may be NULL there.
        assert!(row_text(&source, None).contains("CONCAT(ISNULL(`id`), ISNULL(`c`))"));
    }
}
