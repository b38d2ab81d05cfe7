//! Splits a SQL dump into statements as it streams: quotes, backquotes, `--`/`#`/`/* */`
//! comments, `/*!40101 … */` conditional comments (their content is kept: it is the SQL a
//! MySQL server would run) and the `DELIMITER` client command of mysqldump files.
//!
//! The input is read in large blocks into one window. A statement is first only delimited:
//! code bytes are looked at one by one, but the inside of a quoted string is skipped with a
//! vectorised search for its quote or a backslash, which is where a dump's bytes are. A
//! statement without comments inside (every data statement of a dump) is then handed out as
//! a slice of the window, never copied; only one with comments is rebuilt without them.
//! Memory follows the largest statement (bounded by the dump's max_allowed_packet), never the
//! file.

use std::io::BufRead;

use bytes::Bytes;
use sluice_core::CoreError;

/// One statement and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub text: Vec<u8>,
    pub line: u64,
}

/// Bytes read from the input at a time.
const BLOCK: usize = 1 << 20;
/// Bytes kept ahead of the scan, so that `--`, `/*!`, `*/` and a delimiter are seen whole.
const LOOKAHEAD: usize = 32;

pub struct SqlReader<R> {
    input: R,
    name: String,
    eof: bool,
    delimiter: Vec<u8>,
    /// The window: bytes read and not yet handed out.
    buf: Window,
    /// Where the statement being delimited starts in `buf` (after the previous delimiter).
    start: usize,
    /// 1-based line of `buf[counted]`.
    line: u64,
    counted: usize,
    /// The text of the last statement that had comments inside, rebuilt without them.
    stripped: Vec<u8>,
}

/// The bytes being split: the whole input when it was in memory already (an uncompressed
/// file), so that nothing is copied, or a window of what was read from a stream.
enum Window {
    Whole(Bytes),
    Read(Vec<u8>),
}

impl std::ops::Deref for Window {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Window::Whole(b) => b,
            Window::Read(v) => v,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Code,
    Quote(u8),
    LineComment,
    BlockComment,
}

/// Bytes that can change the scan's state in code: quotes, and the first bytes of comments
/// and comment ends (the delimiter's first byte is checked apart, as it can change).
const CODE_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let special = b"'\"`#-/*";
    let mut i = 0;
    while i < special.len() {
        table[special[i] as usize] = true;
        i += 1;
    }
    table
};

/// Where the scan of one statement stands.
struct Scan {
    state: State,
    escaped: bool,
    conditional_depth: u32,
    /// The first byte of code (not whitespace, not a comment): where the text starts.
    first_code: Option<usize>,
    /// A comment or conditional marker the text must lose lies after `first_code`.
    has_comments: bool,
    /// Nothing but whitespace since the last line break (for `DELIMITER`).
    line_blank: bool,
}

impl SqlReader<std::io::Empty> {
    /// Splits `data`, all of which is in memory: statements are slices of it.
    pub fn whole(data: Bytes, name: impl Into<String>) -> Self {
        SqlReader::over(std::io::empty(), name.into(), Window::Whole(data))
    }
}

impl<R: BufRead> SqlReader<R> {
    /// Splits what `input` streams, through a window of blocks.
    pub fn new(input: R, name: impl Into<String>) -> Self {
        let window = Window::Read(Vec::with_capacity(BLOCK + LOOKAHEAD));
        SqlReader::over(input, name.into(), window)
    }

    fn over(input: R, name: String, buf: Window) -> Self {
        SqlReader {
            input,
            name,
            // A whole input has nothing more to read.
            eof: matches!(buf, Window::Whole(_)),
            delimiter: b";".to_vec(),
            buf,
            start: 0,
            line: 1,
            counted: 0,
            stripped: Vec::new(),
        }
    }

    fn error(&self, line: u64, reason: &str) -> CoreError {
        CoreError::invalid("SQL", format!("{}:{line}", self.name), reason)
    }

    /// Appends up to a block of input to the window; sets `eof` at the end.
    fn fill(&mut self) -> Result<(), CoreError> {
        let available = self.input.fill_buf().map_err(|e| CoreError::Io {
            path: self.name.clone(),
            action: "read",
            source: e,
        })?;
        let Window::Read(buf) = &mut self.buf else {
            self.eof = true;
            return Ok(());
        };
        if available.is_empty() {
            self.eof = true;
            return Ok(());
        }
        let n = available.len().min(BLOCK);
        buf.extend_from_slice(&available[..n]);
        self.input.consume(n);
        Ok(())
    }

    /// The line of `buf[at]` (`at` never goes backwards).
    fn line_of(&mut self, at: usize) -> u64 {
        self.line += memchr::memchr_iter(b'\n', &self.buf[self.counted..at]).count() as u64;
        self.counted = at;
        self.line
    }

    /// Drops the bytes already handed out, so the window holds only the current statement.
    fn compact(&mut self) {
        if self.start >= BLOCK && self.start * 2 >= self.buf.len() {
            self.line_of(self.start);
            let Window::Read(buf) = &mut self.buf else {
                return;
            };
            buf.drain(..self.start);
            self.counted -= self.start;
            self.start = 0;
        }
    }

    /// The next statement, without its delimiter and with comments removed.
    pub fn next_statement(&mut self) -> Result<Option<Statement>, CoreError> {
        Ok(self.next()?.map(|(text, line)| Statement {
            text: text.to_vec(),
            line,
        }))
    }

    /// The next statement's text (borrowed until the next call) and the line it starts on.
    pub fn next(&mut self) -> Result<Option<(&[u8], u64)>, CoreError> {
        self.compact();
        let mut scan = Scan {
            state: State::Code,
            escaped: false,
            conditional_depth: 0,
            first_code: None,
            has_comments: false,
            line_blank: self.start == 0 || self.buf.get(self.start - 1) == Some(&b'\n'),
        };
        let mut i = self.start;
        let end = loop {
            if !self.eof && self.buf.len().saturating_sub(i) < LOOKAHEAD {
                self.fill()?;
                continue;
            }
            let Some(&b) = self.buf.get(i) else {
                // The end of the input.
                let at = scan.first_code.unwrap_or(i);
                match scan.state {
                    State::Quote(q) => {
                        let line = self.line_of(at);
                        return Err(self
                            .error(line, &format!("the file ends inside a {} quote", q as char)));
                    }
                    State::BlockComment => {
                        let line = self.line_of(at);
                        return Err(self.error(line, "the file ends inside a /* comment"));
                    }
                    _ if scan.first_code.is_none() => {
                        self.start = i;
                        return Ok(None);
                    }
                    _ => break (i, i),
                }
            };
            let next = self.buf.get(i + 1).copied();
            match scan.state {
                State::Quote(q) if !scan.escaped => {
                    match memchr::memchr2(q, b'\\', &self.buf[i..]) {
                        None => i = self.buf.len(),
                        Some(run) => {
                            i += run + 1;
                            if self.buf[i - 1] == b'\\' && q != b'`' {
                                scan.escaped = true;
                            } else if self.buf[i - 1] == q {
                                scan.state = State::Code;
                            }
                        }
                    }
                    continue;
                }
                State::Quote(_) => scan.escaped = false,
                State::LineComment => {
                    match memchr::memchr(b'\n', &self.buf[i..]) {
                        None => i = self.buf.len(),
                        Some(n) => {
                            i += n + 1;
                            scan.state = State::Code;
                            scan.line_blank = true;
                        }
                    }
                    continue;
                }
                State::BlockComment => {
                    if b == b'*' && next == Some(b'/') {
                        scan.state = State::Code;
                        i += 1;
                    }
                }
                State::Code => {
                    let delimiter = self.delimiter.first().copied();
                    if scan.first_code.is_some() && !CODE_SPECIAL[usize::from(b)] {
                        // Plain code inside a statement (numbers, names, commas, spaces): skip
                        // to the next byte that can start a quote, comment or delimiter.
                        let run = self.buf[i..]
                            .iter()
                            .position(|&c| CODE_SPECIAL[usize::from(c)] || Some(c) == delimiter)
                            .unwrap_or(self.buf.len() - i);
                        if run > 0 {
                            i += run;
                            continue;
                        }
                    }
                    if b == b'\n' {
                        scan.line_blank = true;
                        i += 1;
                        continue;
                    }
                    if b.is_ascii_whitespace() {
                        i += 1;
                        continue;
                    }
                    let comment = b == b'#'
                        || (b == b'-'
                            && next == Some(b'-')
                            && self.buf.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()));
                    let line_start = std::mem::replace(&mut scan.line_blank, false);
                    if comment {
                        scan.has_comments |= scan.first_code.is_some();
                        scan.state = State::LineComment;
                    } else if b == b'/' && next == Some(b'*') {
                        if self.buf.get(i + 2) == Some(&b'!') {
                            // Conditional comment: its content is code, its markers are not.
                            scan.conditional_depth += 1;
                            scan.has_comments = true;
                            i += 3;
                            while self.buf.get(i).is_some_and(u8::is_ascii_digit) {
                                i += 1;
                            }
                            continue;
                        }
                        scan.has_comments |= scan.first_code.is_some();
                        scan.state = State::BlockComment;
                        i += 1;
                    } else if b == b'*' && next == Some(b'/') && scan.conditional_depth > 0 {
                        scan.conditional_depth -= 1;
                        i += 1;
                    } else if self.delimiter.first() == Some(&b)
                        && self.buf[i..].starts_with(&self.delimiter)
                    {
                        if scan.first_code.is_some() {
                            break (i, i + self.delimiter.len());
                        }
                        // An empty statement: go on after it.
                        i += self.delimiter.len();
                        self.start = i;
                        continue;
                    } else if line_start
                        && scan.first_code.is_none()
                        && starts_with_ci(&self.buf[i..], b"DELIMITER ")
                    {
                        // The client command: the rest of the line is the new delimiter.
                        let line_end = loop {
                            match memchr::memchr(b'\n', &self.buf[i..]) {
                                Some(n) => break i + n,
                                None if self.eof => break self.buf.len(),
                                None => self.fill()?,
                            }
                        };
                        self.delimiter = trim(&self.buf[i + 10..line_end]).to_vec();
                        i = (line_end + 1).min(self.buf.len());
                        self.start = i;
                        scan.line_blank = true;
                        continue;
                    } else {
                        if scan.first_code.is_none() {
                            scan.first_code = Some(i);
                        }
                        if b == b'\'' || b == b'"' || b == b'`' {
                            scan.state = State::Quote(b);
                        }
                    }
                }
            }
            i += 1;
        };
        let (text_end, next_start) = end;
        let raw_start = self.start;
        self.start = next_start;
        let first = scan.first_code.unwrap_or(text_end);
        let line = self.line_of(first);
        if !scan.has_comments {
            return Ok(Some((trim(&self.buf[first..text_end]), line)));
        }
        self.stripped.clear();
        strip_comments(&self.buf[raw_start..text_end], &mut self.stripped);
        Ok(Some((trim(&self.stripped), line)))
    }
}

/// Appends a delimited statement's code to `out` with its comments and conditional markers
/// replaced: a comment by a space (a `--` or `#` comment by its line break), a marker by a
/// space.
fn strip_comments(s: &[u8], out: &mut Vec<u8>) {
    let mut state = State::Code;
    let mut escaped = false;
    let mut depth = 0u32;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        let next = s.get(i + 1).copied();
        match state {
            State::Quote(q) => {
                out.push(b);
                if escaped {
                    escaped = false;
                } else if b == b'\\' && q != b'`' {
                    escaped = true;
                } else if b == q {
                    state = State::Code;
                }
            }
            State::LineComment => {
                if b == b'\n' {
                    state = State::Code;
                    out.push(b'\n');
                }
            }
            State::BlockComment => {
                if b == b'*' && next == Some(b'/') {
                    state = State::Code;
                    i += 1;
                    out.push(b' ');
                }
            }
            State::Code => {
                if b == b'\'' || b == b'"' || b == b'`' {
                    out.push(b);
                    state = State::Quote(b);
                } else if b == b'#'
                    || (b == b'-'
                        && next == Some(b'-')
                        && s.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()))
                {
                    state = State::LineComment;
                } else if b == b'/' && next == Some(b'*') {
                    if s.get(i + 2) == Some(&b'!') {
                        i += 3;
                        while s.get(i).is_some_and(u8::is_ascii_digit) {
                            i += 1;
                        }
                        depth += 1;
                        out.push(b' ');
                        continue;
                    }
                    state = State::BlockComment;
                    i += 1;
                } else if b == b'*' && next == Some(b'/') && depth > 0 {
                    depth -= 1;
                    out.push(b' ');
                    i += 1;
                } else {
                    out.push(b);
                }
            }
        }
        i += 1;
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

fn trim(v: &[u8]) -> &[u8] {
    let v = trim_start(v);
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &v[..end]
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
        let mut r = SqlReader::whole(Bytes::from(sql.to_owned()), "t.sql");
        let mut borrowed = Vec::new();
        while let Some((text, line)) = r.next().unwrap() {
            borrowed.push(format!("{line}:{}", String::from_utf8_lossy(text)));
        }
        assert_eq!(
            out, borrowed,
            "the statements depend on how the input is read"
        );
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
    fn statements_across_many_blocks_keep_their_lines() {
        let mut sql = String::from("-- a dump\n");
        for i in 0..40_000 {
            sql.push_str(&format!(
                "INSERT INTO t VALUES\n({i},'{}\\'; x'),\n({i},'-- not a comment');\n",
                "y".repeat(i % 97)
            ));
        }
        let mut r = SqlReader::new(sql.as_bytes(), "big.sql");
        let mut n = 0u64;
        while let Some((text, line)) = r.next().unwrap() {
            assert_eq!(line, 2 + 3 * n, "statement {n}");
            assert!(text.starts_with(b"INSERT") && text.ends_with(b"comment')"));
            n += 1;
        }
        assert_eq!(n, 40_000);
        assert!(
            r.buf.len() < 4 * BLOCK,
            "the window keeps {} bytes",
            r.buf.len()
        );
    }

    #[test]
    fn a_file_cut_inside_a_marker_or_comment_ends_cleanly() {
        assert_eq!(all("SELECT 1; /*!"), ["1:SELECT 1"]);
        assert_eq!(all("/*!40101 SET a=1"), ["1:SET a=1"]);
        assert_eq!(all("SELECT 1;\n-- tail"), ["1:SELECT 1"]);
        assert_eq!(all("SELECT 1 --"), ["1:SELECT 1"]);
        let mut r = SqlReader::new("SELECT 1; /* open".as_bytes(), "cut.sql");
        r.next().unwrap();
        assert!(r.next().is_err());
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
