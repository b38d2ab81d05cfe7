//! Parses `INSERT [IGNORE] INTO [db.]table [(cols)] VALUES (…), (…)` into rows of [`Cell`]s,
//! with every MySQL literal: quoted strings with backslash escapes and doubled quotes, numbers,
//! NULL, TRUE/FALSE, `0x…`/`X'…'` hex, `0b…`/`b'…'` bits, and charset introducers
//! (`_binary '…'`, `_utf8mb4 '…'`). Anything else (a function call, an expression) is an error
//! naming the byte offset, not a guess.

use crate::cell::Cell;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    pub database: Option<String>,
    pub table: String,
    pub columns: Option<Vec<String>>,
    pub rows: Vec<Vec<Cell>>,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

type Parsed<T> = Result<T, (usize, String)>;

impl<'a> Parser<'a> {
    fn fail<T>(&self, what: &str) -> Parsed<T> {
        let near: String =
            String::from_utf8_lossy(&self.s[self.pos..(self.pos + 20).min(self.s.len())])
                .into_owned();
        Err((self.pos, format!("expected {what} near `{near}`")))
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

    fn quoted(&mut self) -> Parsed<Vec<u8>> {
        let q = self.s[self.pos];
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            // Copy the plain run up to the next backslash or quote at once.
            let rest = &self.s[self.pos.min(self.s.len())..];
            let run = rest
                .iter()
                .position(|&c| c == q || c == b'\\')
                .unwrap_or(rest.len());
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
            } else if c == q {
                if self.s.get(self.pos) == Some(&q) {
                    out.push(q);
                    self.pos += 1;
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        // Adjacent string literals concatenate ('a' 'b' is 'ab').
        if matches!(self.peek(), Some(b'\'') | Some(b'"')) {
            let more = self.quoted()?;
            out.extend(more);
        }
        Ok(out)
    }

    fn hex_digits(&mut self, digits: &[u8]) -> Parsed<Vec<u8>> {
        let padded: Vec<u8> = if digits.len() % 2 == 1 {
            [b"0".as_slice(), digits].concat()
        } else {
            digits.to_vec()
        };
        padded
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .or_else(|_| self.fail("hex digits"))
    }

    fn bits(&mut self, digits: &[u8]) -> Parsed<Vec<u8>> {
        if !digits.iter().all(|d| *d == b'0' || *d == b'1') {
            return self.fail("binary digits");
        }
        let mut value: Vec<u8> = Vec::new();
        let padded_len = digits.len().div_ceil(8) * 8;
        let padded: Vec<u8> = std::iter::repeat_n(b'0', padded_len - digits.len())
            .chain(digits.iter().copied())
            .collect();
        for byte in padded.chunks(8) {
            value.push(byte.iter().fold(0u8, |acc, d| (acc << 1) | (d - b'0')));
        }
        Ok(value)
    }

    fn literal(&mut self) -> Parsed<Cell> {
        let Some(c) = self.peek() else {
            return self.fail("a value");
        };
        match c {
            b'\'' | b'"' => Ok(Cell::Text(self.quoted()?)),
            b'_' => {
                let name = self.identifier()?;
                if self.peek() != Some(b'\'') && self.peek() != Some(b'"') {
                    return self.fail("a quoted string after a charset introducer");
                }
                let bytes = self.quoted()?;
                Ok(if name.eq_ignore_ascii_case("_binary") {
                    Cell::Bytes(bytes)
                } else {
                    Cell::Text(bytes)
                })
            }
            b'x' | b'X' | b'b' | b'B' if self.s.get(self.pos + 1) == Some(&b'\'') => {
                self.pos += 2;
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(|c| *c != b'\'') {
                    self.pos += 1;
                }
                let digits = self.s[start..self.pos].to_vec();
                self.pos += 1;
                if c == b'x' || c == b'X' {
                    Ok(Cell::Bytes(self.hex_digits(&digits)?))
                } else {
                    Ok(Cell::Bytes(self.bits(&digits)?))
                }
            }
            b'0' if matches!(self.s.get(self.pos + 1), Some(b'x') | Some(b'b')) => {
                let kind = self.s[self.pos + 1];
                self.pos += 2;
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(u8::is_ascii_alphanumeric) {
                    self.pos += 1;
                }
                let digits = self.s[start..self.pos].to_vec();
                if kind == b'x' {
                    Ok(Cell::Bytes(self.hex_digits(&digits)?))
                } else {
                    Ok(Cell::Bytes(self.bits(&digits)?))
                }
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
                Ok(Cell::Bare(text.to_vec()))
            }
            _ => {
                if self.keyword("CONVERT") {
                    // CONVERT('text' USING charset): the text, whose charset the column decides.
                    self.expect(b'(')?;
                    let inner = self.literal()?;
                    if !self.keyword("USING") {
                        return self.fail("USING in CONVERT()");
                    }
                    let _charset = self.identifier()?;
                    self.expect(b')')?;
                    return Ok(inner);
                }
                if self.keyword("NULL") {
                    Ok(Cell::Null)
                } else if self.keyword("TRUE") {
                    Ok(Cell::Bare(b"TRUE".to_vec()))
                } else if self.keyword("FALSE") {
                    Ok(Cell::Bare(b"FALSE".to_vec()))
                } else {
                    self.fail("a literal value (expressions and functions are not supported)")
                }
            }
        }
    }
}

/// Parses an INSERT or REPLACE statement; `Ok(None)` for any other statement. An error carries
/// the byte offset in the statement and what was expected.
pub fn parse_insert(statement: &[u8]) -> Result<Option<Insert>, (usize, String)> {
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
        columns = Some(cols);
    }
    if !(p.keyword("VALUES") || p.keyword("VALUE")) {
        return p.fail("VALUES");
    }
    let mut rows = Vec::new();
    loop {
        p.expect(b'(')?;
        let mut row = Vec::new();
        if p.peek() == Some(b')') {
            p.pos += 1;
        } else {
            loop {
                row.push(p.literal()?);
                match p.peek() {
                    Some(b',') => p.pos += 1,
                    Some(b')') => {
                        p.pos += 1;
                        break;
                    }
                    _ => return p.fail("`,` or `)` after a value"),
                }
            }
        }
        rows.push(row);
        match p.peek() {
            Some(b',') => p.pos += 1,
            None | Some(b';') => break,
            _ => {
                if p.keyword("ON") {
                    return p.fail("no ON DUPLICATE KEY clause (not supported in dump files)");
                }
                return p.fail("`,` between rows or the end of the statement");
            }
        }
    }
    Ok(Some(Insert {
        database,
        table,
        columns,
        rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Insert {
        parse_insert(s.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn every_literal_kind() {
        let i = parse(
            "INSERT INTO `db`.`t``x` (`a`,b) VALUES (1,-2.5e-3,'it\\'s ''q'' \\\\ \\0\\n\\Z\\%',\"dq\",NULL,0xABCD,X'0F',b'101',0b11,_binary 'raw',_utf8mb4'u',TRUE,'a' 'b',CONVERT('c' USING utf8mb4)),()",
        );
        assert_eq!(i.database.as_deref(), Some("db"));
        assert_eq!(i.table, "t`x");
        assert_eq!(i.columns, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(
            i.rows[0],
            vec![
                Cell::Bare(b"1".to_vec()),
                Cell::Bare(b"-2.5e-3".to_vec()),
                Cell::Text(b"it's 'q' \\ \0\n\x1a\\%".to_vec()),
                Cell::Text(b"dq".to_vec()),
                Cell::Null,
                Cell::Bytes(vec![0xAB, 0xCD]),
                Cell::Bytes(vec![0x0F]),
                Cell::Bytes(vec![5]),
                Cell::Bytes(vec![3]),
                Cell::Bytes(b"raw".to_vec()),
                Cell::Text(b"u".to_vec()),
                Cell::Bare(b"TRUE".to_vec()),
                Cell::Text(b"ab".to_vec()),
                Cell::Text(b"c".to_vec()),
            ]
        );
        assert!(i.rows[1].is_empty());
    }

    #[test]
    fn other_statements_are_not_inserts() {
        assert_eq!(parse_insert(b"SET NAMES utf8mb4").unwrap(), None);
        assert_eq!(parse_insert(b"CREATE TABLE t (a int)").unwrap(), None);
    }

    #[test]
    fn expressions_are_refused_with_an_offset() {
        let (offset, why) = parse_insert(b"INSERT INTO t VALUES (1, NOW())").unwrap_err();
        assert_eq!(offset, 25);
        assert!(why.contains("literal"), "{why}");
        assert!(parse_insert(b"INSERT INTO t VALUES (1, 'open").is_err());
        assert!(parse_insert(b"INSERT INTO t VALUES (1) (2)").is_err());
    }
}
