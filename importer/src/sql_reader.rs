//! Splits a SQL dump into statements as it streams: quotes, backquotes, `--`/`#`/`/* */`
//! comments, `/*!40101 … */` conditional comments (their content is kept: it is the SQL a
//! MySQL server would run) and the `DELIMITER` client command of mysqldump files.
//!
//! Statements are read one at a time, so memory follows the largest statement (bounded by the
//! dump's max_allowed_packet), never the file.

use std::io::BufRead;

use sluice_core::CoreError;

/// One statement and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub text: Vec<u8>,
    pub line: u64,
}

pub struct SqlReader<R> {
    input: R,
    name: String,
    delimiter: Vec<u8>,
    /// The current line and how far it has been scanned.
    pending: Vec<u8>,
    pos: usize,
    /// 1-based number of the line in `pending`.
    pending_line: u64,
    state: State,
    conditional_depth: u32,
    escaped: bool,
    /// The statement being collected, and the line it started on.
    text: Vec<u8>,
    start_line: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Code,
    Quote(u8),
    LineComment,
    BlockComment,
}

impl<R: BufRead> SqlReader<R> {
    pub fn new(input: R, name: impl Into<String>) -> Self {
        SqlReader {
            input,
            name: name.into(),
            delimiter: b";".to_vec(),
            pending: Vec::new(),
            pos: 0,
            pending_line: 0,
            state: State::Code,
            conditional_depth: 0,
            escaped: false,
            text: Vec::new(),
            start_line: 1,
        }
    }

    fn error(&self, line: u64, reason: &str) -> CoreError {
        CoreError::invalid("SQL", format!("{}:{line}", self.name), reason)
    }

    /// Reads the next line into `pending`; false at the end of the input.
    fn next_line(&mut self) -> Result<bool, CoreError> {
        self.pending.clear();
        self.pos = 0;
        let n = self
            .input
            .read_until(b'\n', &mut self.pending)
            .map_err(|e| CoreError::Io {
                path: self.name.clone(),
                action: "read",
                source: e,
            })?;
        self.pending_line += 1;
        Ok(n > 0)
    }

    /// The next statement, without its delimiter and with comments removed.
    pub fn next_statement(&mut self) -> Result<Option<Statement>, CoreError> {
        loop {
            if self.pos >= self.pending.len() {
                if !self.next_line()? {
                    return match self.state {
                        State::Quote(q) => Err(self.error(
                            self.start_line,
                            &format!("the file ends inside a {} quote", q as char),
                        )),
                        State::BlockComment => {
                            Err(self.error(self.start_line, "the file ends inside a /* comment"))
                        }
                        _ if self.text.iter().all(u8::is_ascii_whitespace) => Ok(None),
                        _ => Ok(Some(Statement {
                            text: trim(std::mem::take(&mut self.text)),
                            line: self.start_line,
                        })),
                    };
                }
                if self.state == State::Code
                    && self.text.iter().all(u8::is_ascii_whitespace)
                    && starts_with_ci(trim_start(&self.pending), b"DELIMITER ")
                {
                    let line = trim(trim_start(&self.pending)[10..].to_vec());
                    self.delimiter = line;
                    self.pos = self.pending.len();
                    continue;
                }
            }
            if let Some(statement) = self.scan()? {
                return Ok(Some(statement));
            }
        }
    }

    /// Scans the rest of the current line; returns a statement if its delimiter is reached.
    fn scan(&mut self) -> Result<Option<Statement>, CoreError> {
        let line = std::mem::take(&mut self.pending);
        let mut i = self.pos;
        let mut result = None;
        while i < line.len() {
            let b = line[i];
            let next = line.get(i + 1).copied();
            match self.state {
                State::Quote(q) if !self.escaped && b != q && b != b'\\' => {
                    // Inside a string most bytes are plain: copy the run up to the next quote or
                    // backslash at once.
                    let run = line[i..]
                        .iter()
                        .position(|&c| c == q || c == b'\\')
                        .unwrap_or(line.len() - i);
                    self.text.extend_from_slice(&line[i..i + run]);
                    i += run;
                    continue;
                }
                State::Quote(q) => {
                    self.text.push(b);
                    if self.escaped {
                        self.escaped = false;
                    } else if b == b'\\' && q != b'`' {
                        self.escaped = true;
                    } else if b == q {
                        self.state = State::Code;
                    }
                }
                State::LineComment => {
                    if b == b'\n' {
                        self.state = State::Code;
                        self.push_code(b'\n');
                    }
                }
                State::BlockComment => {
                    if b == b'*' && next == Some(b'/') {
                        self.state = State::Code;
                        i += 1;
                        self.push_code(b' ');
                    }
                }
                State::Code => {
                    if b == b'\'' || b == b'"' || b == b'`' {
                        self.push_code(b);
                        self.state = State::Quote(b);
                    } else if b == b'#'
                        || (b == b'-'
                            && next == Some(b'-')
                            && line.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()))
                    {
                        self.state = State::LineComment;
                    } else if b == b'/' && next == Some(b'*') {
                        if line.get(i + 2) == Some(&b'!') {
                            // Conditional comment: keep the content, drop the marker and version.
                            let mut j = i + 3;
                            while line.get(j).is_some_and(|c| c.is_ascii_digit()) {
                                j += 1;
                            }
                            self.conditional_depth += 1;
                            self.push_code(b' ');
                            i = j;
                            continue;
                        }
                        self.state = State::BlockComment;
                        i += 1;
                    } else if b == b'*' && next == Some(b'/') && self.conditional_depth > 0 {
                        self.conditional_depth -= 1;
                        self.push_code(b' ');
                        i += 1;
                    } else if self.delimiter.first() == Some(&b)
                        && line[i..].starts_with(&self.delimiter)
                    {
                        i += self.delimiter.len();
                        let text = trim(std::mem::take(&mut self.text));
                        if !text.is_empty() {
                            result = Some(Statement {
                                text,
                                line: self.start_line,
                            });
                            break;
                        }
                        continue;
                    } else {
                        self.push_code(b);
                    }
                }
            }
            i += 1;
        }
        self.pending = line;
        self.pos = i;
        Ok(result)
    }

    /// Adds a byte of code, noting the line a statement starts on.
    fn push_code(&mut self, b: u8) {
        if self.text.iter().all(u8::is_ascii_whitespace) {
            if b.is_ascii_whitespace() {
                return;
            }
            self.text.clear();
            self.start_line = self.pending_line;
        }
        self.text.push(b);
    }
}

fn trim_start(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    &v[start..]
}

fn starts_with_ci(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len() && haystack[..needle.len()].eq_ignore_ascii_case(needle)
}

fn trim(mut v: Vec<u8>) -> Vec<u8> {
    while v.last().is_some_and(|b| b.is_ascii_whitespace()) {
        v.pop();
    }
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    v.drain(..start);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(sql: &str) -> Vec<String> {
        let mut r = SqlReader::new(
            std::io::BufReader::with_capacity(7, sql.as_bytes()),
            "t.sql",
        );
        let mut out = Vec::new();
        while let Some(s) = r.next_statement().unwrap() {
            out.push(format!("{}:{}", s.line, String::from_utf8(s.text).unwrap()));
        }
        out
    }

    #[test]
    fn splits_statements_around_quotes_and_comments() {
        let sql = "-- header\n/*!40101 SET NAMES utf8mb4*/;\n# hash comment\nINSERT INTO `t;x` VALUES ('a;b','c\\'d;', \"e;\"), /* c;c */ (1);\n\nSELECT 1";
        assert_eq!(
            all(sql),
            [
                "2:SET NAMES utf8mb4",
                "4:INSERT INTO `t;x` VALUES ('a;b','c\\'d;', \"e;\"),   (1)",
                "6:SELECT 1"
            ]
        );
    }

    #[test]
    fn follows_delimiter_changes() {
        let sql = "DELIMITER ;;\nCREATE TRIGGER x BEFORE INSERT ON t FOR EACH ROW BEGIN SET @a = 1; END ;;\nDELIMITER ;\nSELECT 2;\n";
        assert_eq!(
            all(sql),
            [
                "2:CREATE TRIGGER x BEFORE INSERT ON t FOR EACH ROW BEGIN SET @a = 1; END",
                "4:SELECT 2"
            ]
        );
    }

    #[test]
    fn unclosed_quote_names_file_and_line() {
        let mut r = SqlReader::new(
            "SELECT 1;\nINSERT INTO t VALUES ('open".as_bytes(),
            "bad.sql",
        );
        r.next_statement().unwrap();
        let err = r.next_statement().unwrap_err().to_string();
        assert!(err.contains("bad.sql:2"), "{err}");
    }
}
