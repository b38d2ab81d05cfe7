//! Parses `INSERT [IGNORE] INTO [db.]table [(cols)] VALUES (…), (…)` row by row into a
//! reused [`Row`], with every MySQL literal: quoted strings with backslash escapes and doubled
//! quotes, numbers, NULL, TRUE/FALSE, `0x…`/`X'…'` hex, `0b…`/`b'…'` bits, and charset
//! introducers (`_binary '…'`, `_utf8mb4 '…'`). Anything else (a function call, an expression)
//! is an error naming the byte offset, not a guess.

use crate::ImportError;
use crate::cell::{CellKind, Row};

/// What an INSERT names before its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertHead {
    pub database: Option<String>,
    pub table: String,
    pub columns: Option<Vec<String>>,
}

/// Why an INSERT was not read to its end.
#[derive(Debug)]
pub enum InsertError {
    /// The statement is not valid here: the byte offset in the statement, and what was
    /// expected.
    Syntax(usize, String),
    /// The receiver of the rows failed.
    Sink(ImportError),
}

impl From<(usize, String)> for InsertError {
    fn from((offset, why): (usize, String)) -> Self {
        InsertError::Syntax(offset, why)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

type Parsed<T> = Result<T, (usize, String)>;

impl<'a> Parser<'a> {
    fn fail<T>(&self, what: &str) -> Parsed<T> {
        Err(self.why(what))
    }

    /// The offset and message of an error: `what` was expected here.
    fn why(&self, what: &str) -> (usize, String) {
        let near: String =
            String::from_utf8_lossy(&self.s[self.pos..(self.pos + 20).min(self.s.len())])
                .into_owned();
        (self.pos, format!("expected {what} near `{near}`"))
    }

    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn keyword(&mut self, word: &str) -> bool {
        self.skip_ws();
        let w = word.as_bytes();
        let end = self.pos + w.len();
        let matches = self
            .s
            .get(self.pos..end)
            .is_some_and(|t| t.eq_ignore_ascii_case(w))
            && !self
                .s
                .get(end)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if matches {
            self.pos = end;
        }
        matches
    }

    fn expect(&mut self, c: u8) -> Parsed<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(&format!("`{}`", c as char))
        }
    }

    fn identifier(&mut self) -> Parsed<String> {
        match self.peek() {
            Some(b'`') => {
                self.pos += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.pos) {
                        Some(b'`') if self.s.get(self.pos + 1) == Some(&b'`') => {
                            out.push(b'`');
                            self.pos += 2;
                        }
                        Some(b'`') => {
                            self.pos += 1;
                            break;
                        }
                        Some(&c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        None => return self.fail("a closing backquote"),
                    }
                }
                Ok(String::from_utf8_lossy(&out).into_owned())
            }
            Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 => {
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(|&c| {
                    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
                }) {
                    self.pos += 1;
                }
                Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
            }
            _ => self.fail("a name"),
        }
    }

    /// Appends a quoted string's bytes, unescaped, to `out`.
    fn quoted(&mut self, out: &mut Vec<u8>) -> Parsed<()> {
        let q = self.s[self.pos];
        self.pos += 1;
        loop {
            // Copy the plain run up to the next backslash or quote at once.
            let rest = &self.s[self.pos.min(self.s.len())..];
            let run = memchr::memchr2(q, b'\\', rest).unwrap_or(rest.len());
            out.extend_from_slice(&rest[..run]);
            self.pos += run;
            let Some(&c) = self.s.get(self.pos) else {
                return self.fail("a closing quote");
            };
            self.pos += 1;
            if c == b'\\' {
                let Some(&e) = self.s.get(self.pos) else {
                    return self.fail("an escaped character");
                };
                self.pos += 1;
                match e {
                    b'0' => out.push(0),
                    b'b' => out.push(8),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'Z' => out.push(0x1a),
                    b'%' | b'_' => out.extend_from_slice(&[b'\\', e]),
                    other => out.push(other),
                }
            } else if self.s.get(self.pos) == Some(&q) {
                out.push(q);
                self.pos += 1;
            } else {
                break;
            }
        }
        // Adjacent string literals concatenate ('a' 'b' is 'ab').
        if matches!(self.peek(), Some(b'\'') | Some(b'"')) {
            self.quoted(out)?;
        }
        Ok(())
    }

    /// Appends the bytes of hex digits (an odd count has a leading zero) to `out`.
    fn hex_digits(&self, digits: &[u8], out: &mut Vec<u8>) -> Parsed<()> {
        let nibble = |d: u8| (d as char).to_digit(16).map(|v| v as u8);
        let (first, rest) = digits.split_at(digits.len() % 2);
        for pair in [first]
            .into_iter()
            .filter(|f| !f.is_empty())
            .chain(rest.chunks(2))
        {
            let value = pair
                .iter()
                .try_fold(0u8, |acc, &d| nibble(d).map(|v| (acc << 4) | v));
            match value {
                Some(v) => out.push(v),
                None => return self.fail("hex digits"),
            }
        }
        Ok(())
    }

    /// Appends the bytes of binary digits (padded to whole bytes on the left) to `out`.
    fn bits(&self, digits: &[u8], out: &mut Vec<u8>) -> Parsed<()> {
        if !digits.iter().all(|d| *d == b'0' || *d == b'1') {
            return self.fail("binary digits");
        }
        let (first, rest) = digits.split_at(digits.len() % 8);
        for byte in [first]
            .into_iter()
            .filter(|f| !f.is_empty())
            .chain(rest.chunks(8))
        {
            out.push(byte.iter().fold(0u8, |acc, d| (acc << 1) | (d - b'0')));
        }
        Ok(())
    }

    /// Adds the literal at the current position to `row`.
    fn literal(&mut self, row: &mut Row) -> Parsed<()> {
        let Some(c) = self.peek() else {
            return self.fail("a value");
        };
        match c {
            b'\'' | b'"' => {
                self.quoted(row.open())?;
                row.close(CellKind::Text);
            }
            b'_' => {
                let name = self.identifier()?;
                if self.peek() != Some(b'\'') && self.peek() != Some(b'"') {
                    return self.fail("a quoted string after a charset introducer");
                }
                self.quoted(row.open())?;
                row.close(if name.eq_ignore_ascii_case("_binary") {
                    CellKind::Bytes
                } else {
                    CellKind::Text
                });
            }
            b'x' | b'X' | b'b' | b'B' if self.s.get(self.pos + 1) == Some(&b'\'') => {
                self.pos += 2;
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(|c| *c != b'\'') {
                    self.pos += 1;
                }
                let digits = &self.s[start..self.pos];
                self.pos += 1;
                if c == b'x' || c == b'X' {
                    self.hex_digits(digits, row.open())?;
                } else {
                    self.bits(digits, row.open())?;
                }
                row.close(CellKind::Bytes);
            }
            b'0' if matches!(self.s.get(self.pos + 1), Some(b'x') | Some(b'b')) => {
                let kind = self.s[self.pos + 1];
                self.pos += 2;
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(u8::is_ascii_alphanumeric) {
                    self.pos += 1;
                }
                let digits = &self.s[start..self.pos];
                if kind == b'x' {
                    self.hex_digits(digits, row.open())?;
                } else {
                    self.bits(digits, row.open())?;
                }
                row.close(CellKind::Bytes);
            }
            b'-' | b'+' | b'.' | b'0'..=b'9' => {
                let start = self.pos;
                self.pos += 1;
                while self.s.get(self.pos).is_some_and(|&c| {
                    c.is_ascii_digit()
                        || c == b'.'
                        || c == b'e'
                        || c == b'E'
                        || ((c == b'-' || c == b'+') && matches!(self.s[self.pos - 1], b'e' | b'E'))
                }) {
                    self.pos += 1;
                }
                let text = &self.s[start..self.pos];
                if !text.iter().any(u8::is_ascii_digit) {
                    return self.fail("a number");
                }
                row.push(CellKind::Bare, text);
            }
            _ => {
                if self.keyword("CONVERT") {
                    // CONVERT('text' USING charset): the text, whose charset the column decides.
                    self.expect(b'(')?;
                    self.literal(row)?;
                    if !self.keyword("USING") {
                        return self.fail("USING in CONVERT()");
                    }
                    let _charset = self.identifier()?;
                    self.expect(b')')?;
                } else if self.keyword("NULL") {
                    row.push(CellKind::Null, b"");
                } else if self.keyword("TRUE") {
                    row.push(CellKind::Bare, b"TRUE");
                } else if self.keyword("FALSE") {
                    row.push(CellKind::Bare, b"FALSE");
                } else {
                    return self
                        .fail("a literal value (expressions and functions are not supported)");
                }
            }
        }
        Ok(())
    }
}

/// Parses an INSERT or REPLACE statement, handing each row to `on_row` with the byte offset
/// where the row starts; `Ok(None)` for any other statement. `row` is the buffer the rows are
/// built in, reused from statement to statement.
pub fn parse_insert(
    statement: &[u8],
    row: &mut Row,
    mut on_row: impl FnMut(&InsertHead, &Row, usize) -> Result<(), ImportError>,
) -> Result<Option<InsertHead>, InsertError> {
    let Some((head, values)) = insert_head(statement)? else {
        return Ok(None);
    };
    insert_rows(statement, values, row, |row, offset| {
        on_row(&head, row, offset)
    })?;
    Ok(Some(head))
}

/// Reads what an INSERT or REPLACE names before its rows, and the offset of its first row;
/// `Ok(None)` for any other statement.
pub fn insert_head(statement: &[u8]) -> Result<Option<(InsertHead, usize)>, (usize, String)> {
    let mut p = Parser {
        s: statement,
        pos: 0,
    };
    if !(p.keyword("INSERT") || p.keyword("REPLACE")) {
        return Ok(None);
    }
    let _ = p.keyword("LOW_PRIORITY") || p.keyword("DELAYED") || p.keyword("HIGH_PRIORITY");
    let _ = p.keyword("IGNORE");
    let _ = p.keyword("INTO");
    let first = p.identifier()?;
    let (database, table) = if p.peek() == Some(b'.') {
        p.pos += 1;
        (Some(first), p.identifier()?)
    } else {
        (None, first)
    };
    let mut columns = None;
    if p.peek() == Some(b'(') {
        p.pos += 1;
        let mut cols = Vec::new();
        // `INSERT INTO t () VALUES ()`: no column given, every one takes its default.
        if p.peek() == Some(b')') {
            p.pos += 1;
        } else {
            loop {
                cols.push(p.identifier()?);
                match p.peek() {
                    Some(b',') => p.pos += 1,
                    Some(b')') => {
                        p.pos += 1;
                        break;
                    }
                    _ => return p.fail("`,` or `)` in the column list"),
                }
            }
        }
        columns = Some(cols);
    }
    if !(p.keyword("VALUES") || p.keyword("VALUE")) {
        return p.fail("VALUES");
    }
    let head = InsertHead {
        database,
        table,
        columns,
    };
    Ok(Some((head, p.pos)))
}

/// Reads the rows of an INSERT from offset `from` (see [`insert_head`]) to its end, handing
/// each to `on_row` with the offset where it starts.
pub fn insert_rows(
    statement: &[u8],
    from: usize,
    row: &mut Row,
    mut on_row: impl FnMut(&Row, usize) -> Result<(), ImportError>,
) -> Result<(), InsertError> {
    let mut p = Parser {
        s: statement,
        pos: from,
    };
    loop {
        p.expect(b'(')?;
        let start = p.pos - 1;
        row.clear();
        if p.peek() == Some(b')') {
            p.pos += 1;
        } else {
            loop {
                p.literal(row)?;
                match p.peek() {
                    Some(b',') => p.pos += 1,
                    Some(b')') => {
                        p.pos += 1;
                        break;
                    }
                    _ => return Err(p.why("`,` or `)` after a value").into()),
                }
            }
        }
        on_row(row, start).map_err(InsertError::Sink)?;
        match p.peek() {
            Some(b',') => p.pos += 1,
            None | Some(b';') => return Ok(()),
            _ => {
                let why = if p.keyword("ON") {
                    "no ON DUPLICATE KEY clause (not supported in dump files)"
                } else {
                    "`,` between rows or the end of the statement"
                };
                return Err(p.why(why).into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Cells = Vec<(CellKind, Vec<u8>)>;
    type Parsed = Option<(InsertHead, Vec<Cells>)>;

    fn parse(s: &[u8]) -> Result<Parsed, (usize, String)> {
        let mut rows = Vec::new();
        let head = parse_insert(s, &mut Row::default(), |_, row, _| {
            rows.push(row.iter().map(|(k, v)| (k, v.to_vec())).collect());
            Ok(())
        });
        match head {
            Ok(head) => Ok(head.map(|h| (h, rows))),
            Err(InsertError::Syntax(offset, why)) => Err((offset, why)),
            Err(InsertError::Sink(e)) => panic!("{e}"),
        }
    }

    #[test]
    fn every_literal_kind() {
        let (head, rows) = parse(
            b"INSERT INTO `db`.`t``x` (`a`,b) VALUES (1,-2.5e-3,'it\\'s ''q'' \\\\ \\0\\n\\Z\\%',\"dq\",NULL,0xABCD,X'0F',b'101',0b11,_binary 'raw',_utf8mb4'u',TRUE,'a' 'b',CONVERT('c' USING utf8mb4),x'ABC',b'100000001'),()",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.database.as_deref(), Some("db"));
        assert_eq!(head.table, "t`x");
        assert_eq!(head.columns, Some(vec!["a".to_owned(), "b".to_owned()]));
        use CellKind::*;
        let expected: Cells = vec![
            (Bare, b"1".to_vec()),
            (Bare, b"-2.5e-3".to_vec()),
            (Text, b"it's 'q' \\ \0\n\x1a\\%".to_vec()),
            (Text, b"dq".to_vec()),
            (Null, vec![]),
            (Bytes, vec![0xAB, 0xCD]),
            (Bytes, vec![0x0F]),
            (Bytes, vec![5]),
            (Bytes, vec![3]),
            (Bytes, b"raw".to_vec()),
            (Text, b"u".to_vec()),
            (Bare, b"TRUE".to_vec()),
            (Text, b"ab".to_vec()),
            (Text, b"c".to_vec()),
            (Bytes, vec![0x0A, 0xBC]),
            (Bytes, vec![1, 1]),
        ];
        assert_eq!(rows[0], expected);
        assert!(rows[1].is_empty());
    }

    #[test]
    fn an_empty_column_list_gives_no_column() {
        let (head, rows) = parse(b"INSERT INTO t () VALUES (), ()").unwrap().unwrap();
        assert_eq!(head.columns, Some(Vec::new()));
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(Vec::is_empty));
    }

    #[test]
    fn other_statements_are_not_inserts() {
        assert_eq!(parse(b"SET NAMES utf8mb4").unwrap(), None);
        assert_eq!(parse(b"CREATE TABLE t (a int)").unwrap(), None);
    }

    #[test]
    fn expressions_are_refused_with_an_offset() {
        let (offset, why) = parse(b"INSERT INTO t VALUES (1, NOW())").unwrap_err();
        assert_eq!(offset, 25);
        assert!(why.contains("literal"), "{why}");
        assert!(parse(b"INSERT INTO t VALUES (1, 'open").is_err());
        assert!(parse(b"INSERT INTO t VALUES (1) (2)").is_err());
        assert!(parse(b"INSERT INTO t VALUES (X'0G')").is_err());
    }
}
