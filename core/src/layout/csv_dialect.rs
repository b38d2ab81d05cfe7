//! The CSV dialect of dump files: RFC 4180 (fields quoted with `"`, a quote inside a field
//! doubled, records ended by `\n`), plus a NULL marker and an optional header.
//!
//! Text and binary columns are always quoted; numbers never are. A NULL is the marker
//! (default `\N`) *unquoted*, so the string `"\N"` (quoted) stays a string: the reader tells
//! the two apart, which is why [`CsvRecordReader`] reports quotedness instead of using a plain
//! CSV parser.

use std::io::BufRead;

use crate::CoreError;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CsvDialect {
    /// Field separator, one byte (default `,`).
    pub delimiter: u8,
    /// Quote byte (always `"`).
    pub quote: u8,
    /// Unquoted text that means NULL (default `\N`).
    pub null: String,
    /// Whether the first record names the columns.
    pub header: bool,
    /// A backslash-style escape byte (`\n`, `\t`, `\0`, `\N` …), as MySQL's LOAD DATA and
    /// Lightning's `backslash-escape` read it. Sluice writes none: RFC 4180 quoting suffices.
    #[serde(default)]
    pub escape: Option<u8>,
}

impl Default for CsvDialect {
    fn default() -> Self {
        CsvDialect {
            delimiter: b',',
            quote: b'"',
            null: "\\N".to_owned(),
            header: false,
            escape: None,
        }
    }
}

impl CsvDialect {
    /// Checks that the dialect can be read back unambiguously.
    pub fn validate(&self) -> Result<(), CoreError> {
        let d = self.delimiter;
        if d == self.quote
            || d == b'\n'
            || d == b'\r'
            || d.is_ascii_digit()
            || d == b'-'
            || d == b'.'
        {
            return Err(CoreError::invalid(
                "CSV delimiter",
                char::from(d),
                "must not be a quote, newline, digit, sign or dot",
            ));
        }
        if self.null.is_empty()
            || self
                .null
                .bytes()
                .any(|b| b == d || b == self.quote || b == b'\n')
        {
            return Err(CoreError::invalid(
                "CSV NULL marker",
                &self.null,
                "must be non-empty and contain no delimiter, quote or newline",
            ));
        }
        Ok(())
    }

    /// Appends one field (`None` = NULL). `quote` is set for text and binary columns.
    pub fn write_field(&self, out: &mut Vec<u8>, value: Option<&[u8]>, quote: bool) {
        match value {
            None => out.extend_from_slice(self.null.as_bytes()),
            Some(v) if !quote => out.extend_from_slice(v),
            Some(v) => {
                out.reserve(v.len() + 2);
                out.push(self.quote);
                // Runs between quote bytes are copied whole; each quote is doubled.
                let mut rest = v;
                while let Some(i) = memchr::memchr(self.quote, rest) {
                    out.extend_from_slice(&rest[..=i]);
                    out.push(self.quote);
                    rest = &rest[i + 1..];
                }
                out.extend_from_slice(rest);
                out.push(self.quote);
            }
        }
    }
}

/// One record's cells; `None` is NULL.
pub type CsvRecord = Vec<Option<Vec<u8>>>;

/// Reads records of a [`CsvDialect`] from a stream, telling NULLs from strings, and counting
/// lines for error messages. Fields may span lines.
pub struct CsvRecordReader<R> {
    input: R,
    dialect: CsvDialect,
    /// 1-based line where the next record starts.
    line: u64,
    name: String,
}

impl<R: BufRead> CsvRecordReader<R> {
    /// `name` is used in errors (a file name).
    pub fn new(input: R, dialect: CsvDialect, name: impl Into<String>) -> Self {
        CsvRecordReader {
            input,
            dialect,
            line: 1,
            name: name.into(),
        }
    }

    /// The line the next record starts on.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The next record, `None` at the end. A cell is `None` for NULL.
    pub fn next_record(&mut self) -> Result<Option<CsvRecord>, CoreError> {
        let mut fields = CsvFields::default();
        if !self.read_record(&mut fields)? {
            return Ok(None);
        }
        Ok(Some(fields.iter().map(|f| f.map(<[u8]>::to_vec)).collect()))
    }

    /// Reads the next record into `fields` (emptied first); `false` at the end. Runs of plain
    /// bytes are found with a vectorised search and copied whole: a byte-by-byte reader that
    /// pushed each byte twice took twice the CPU of SQL parsing (perf, sysbench import).
    pub fn read_record(&mut self, fields: &mut CsvFields) -> Result<bool, CoreError> {
        fields.clear();
        let start_line = self.line;
        let mut quoted = false; // the current field started with a quote
        let mut in_quotes = false; // inside the quotes right now
        let mut after_quote = false; // just saw a quote inside quotes (maybe doubled)
        let mut escaping = false; // just saw the escape byte
        // The field as written (before unescaping), against the NULL marker.
        let mut raw = NullMatch::default();
        let esc = self.dialect.escape;
        let mut any = false;
        let (d, q) = (self.dialect.delimiter, self.dialect.quote);
        let null = self.dialect.null.clone().into_bytes();
        loop {
            let buf = self.input.fill_buf().map_err(|source| CoreError::Io {
                path: self.name.clone(),
                action: "read",
                source,
            })?;
            if buf.is_empty() {
                if !any {
                    return Ok(false);
                }
                if in_quotes && !after_quote {
                    return Err(CoreError::invalid(
                        "CSV",
                        format!("{}:{start_line}", self.name),
                        "a quoted field is not closed before the end of the file",
                    ));
                }
                fields.end_field(!quoted && raw.is(&null));
                return Ok(true);
            }
            any = true;
            let mut i = 0;
            let mut done = false;
            while i < buf.len() {
                let b = buf[i];
                if escaping {
                    escaping = false;
                    if b == b'\n' {
                        self.line += 1;
                    }
                    fields.bytes.push(unescape(b));
                    raw.add(&null, &[b]);
                    i += 1;
                    continue;
                }
                if in_quotes && !after_quote {
                    // Inside quotes: copy up to the next quote or escape byte.
                    let rest = &buf[i..];
                    let run = match esc {
                        Some(e) => memchr::memchr2(q, e, rest),
                        None => memchr::memchr(q, rest),
                    }
                    .unwrap_or(rest.len());
                    self.line += memchr::memchr_iter(b'\n', &rest[..run]).count() as u64;
                    fields.bytes.extend_from_slice(&rest[..run]);
                    i += run;
                    if i < buf.len() {
                        if buf[i] == q {
                            after_quote = true;
                        } else {
                            escaping = true;
                        }
                        i += 1;
                    }
                    continue;
                }
                if in_quotes {
                    after_quote = false;
                    if b == q {
                        fields.bytes.push(q);
                        i += 1;
                        continue;
                    }
                    in_quotes = false; // the quote closed the field; fall through
                }
                if b == d {
                    fields.end_field(!quoted && raw.is(&null));
                    raw = NullMatch::default();
                    quoted = false;
                } else if b == b'\n' {
                    self.line += 1;
                    if !quoted && fields.open_field().last() == Some(&b'\r') {
                        fields.bytes.pop();
                        raw.unadd();
                    }
                    fields.end_field(!quoted && raw.is(&null));
                    done = true;
                    i += 1;
                    break;
                } else if b == q && fields.open_field().is_empty() && !quoted {
                    quoted = true;
                    in_quotes = true;
                } else if quoted && b == b'\r' {
                    // CRLF after a closing quote
                } else if quoted {
                    return Err(CoreError::invalid(
                        "CSV",
                        format!("{}:{}", self.name, self.line),
                        "text after a closing quote",
                    ));
                } else if esc == Some(b) {
                    escaping = true;
                    raw.add(&null, &[b]);
                } else {
                    // An unquoted run: up to the next delimiter, line end or escape byte.
                    let rest = &buf[i..];
                    let run = match esc {
                        Some(e) => memchr::memchr3(d, b'\n', e, rest),
                        None => memchr::memchr2(d, b'\n', rest),
                    }
                    .unwrap_or(rest.len());
                    fields.bytes.extend_from_slice(&rest[..run]);
                    raw.add(&null, &rest[..run]);
                    i += run;
                    continue;
                }
                i += 1;
            }
            self.input.consume(i);
            if done {
                return Ok(true);
            }
        }
    }
}

/// Whether a field as written so far is the start of the NULL marker.
#[derive(Default)]
struct NullMatch {
    len: usize,
    /// Where the field first differs from the marker.
    mismatch: Option<usize>,
}

impl NullMatch {
    fn add(&mut self, null: &[u8], bytes: &[u8]) {
        if self.mismatch.is_none() {
            let marker = null.get(self.len..).unwrap_or_default();
            self.mismatch = bytes
                .iter()
                .zip(marker)
                .position(|(a, b)| a != b)
                .or((bytes.len() > marker.len()).then_some(marker.len()))
                .map(|i| self.len + i);
        }
        self.len += bytes.len();
    }

    /// Takes back a `\r` dropped before the line end.
    fn unadd(&mut self) {
        self.len = self.len.saturating_sub(1);
        if self.mismatch.is_some_and(|m| m >= self.len) {
            self.mismatch = None;
        }
    }

    fn is(&self, null: &[u8]) -> bool {
        self.mismatch.is_none() && self.len == null.len()
    }
}

/// One record's fields, their bytes side by side in one buffer reused from record to record.
#[derive(Debug, Default, Clone)]
pub struct CsvFields {
    bytes: Vec<u8>,
    /// Where each field ends in `bytes`, and whether it is NULL.
    ends: Vec<(usize, bool)>,
}

impl CsvFields {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// The bytes of the field being read.
    fn open_field(&self) -> &[u8] {
        &self.bytes[self.ends.last().map_or(0, |e| e.0)..]
    }

    fn end_field(&mut self, null: bool) {
        if null {
            let start = self.ends.last().map_or(0, |e| e.0);
            self.bytes.truncate(start);
        }
        self.ends.push((self.bytes.len(), null));
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i`, `None` for NULL.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let start = if i == 0 { 0 } else { self.ends[i - 1].0 };
        let (end, null) = self.ends[i];
        (!null).then(|| &self.bytes[start..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        (0..self.ends.len()).map(|i| self.get(i))
    }
}

/// The byte an escape sequence stands for (MySQL's LOAD DATA set).
fn unescape(b: u8) -> u8 {
    match b {
        b'0' => 0,
        b'b' => 8,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'Z' => 0x1a,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell to write, and whether it is quoted.
    type Cell<'a> = (Option<&'a [u8]>, bool);

    fn write(dialect: &CsvDialect, rows: &[Vec<Cell<'_>>]) -> Vec<u8> {
        let mut out = Vec::new();
        for row in rows {
            for (i, (v, q)) in row.iter().enumerate() {
                if i > 0 {
                    out.push(dialect.delimiter);
                }
                dialect.write_field(&mut out, *v, *q);
            }
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn round_trips_hostile_values() {
        let d = CsvDialect::default();
        let rows = vec![
            vec![
                (Some(&b"1"[..]), false),
                (Some(&b"a,\"b\"\nc"[..]), true),
                (None, true),
            ],
            vec![
                (Some(&b"-2.50"[..]), false),
                (Some(&b"\\N"[..]), true),
                (Some(&b""[..]), true),
            ],
            vec![
                (None, false),
                (Some(&[0u8, 255, b'\r', b'\n'][..]), true),
                (Some(&b"x"[..]), true),
            ],
        ];
        let bytes = write(&d, &rows);
        assert!(
            bytes.starts_with(b"1,\"a,\"\"b\"\"\nc\",\\N\n"),
            "quotes are doubled"
        );
        let mut r = CsvRecordReader::new(&bytes[..], d, "t.csv");
        for row in &rows {
            let got = r.next_record().unwrap().unwrap();
            let want: Vec<Option<Vec<u8>>> =
                row.iter().map(|(v, _)| v.map(|v| v.to_vec())).collect();
            assert_eq!(got, want);
        }
        assert_eq!(r.next_record().unwrap(), None);
        assert_eq!(r.line(), 6, "fields with newlines count their lines");
    }

    #[test]
    fn crlf_lines_end_their_null_markers_and_fields() {
        // The default dialect has no escape byte: `\N` is the marker as written.
        let d = CsvDialect::default();
        let text = b"1,\\N\r\n\\N,\"q\"\r\n\\Nx,\\\\N\r\n,\r\n";
        let mut r = CsvRecordReader::new(&text[..], d, "crlf.csv");
        let mut fields = CsvFields::default();
        let mut rows = Vec::new();
        while r.read_record(&mut fields).unwrap() {
            rows.push(
                fields
                    .iter()
                    .map(|f| f.map(<[u8]>::to_vec))
                    .collect::<Vec<_>>(),
            );
        }
        let v = |s: &str| Some(s.as_bytes().to_vec());
        assert_eq!(
            rows,
            [
                vec![v("1"), None],
                vec![None, v("q")],
                vec![v("\\Nx"), v("\\\\N")],
                vec![v(""), v("")],
            ]
        );
        assert_eq!(r.line(), 5);
    }

    #[test]
    fn reports_file_and_line_of_bad_input() {
        let d = CsvDialect::default();
        let mut r = CsvRecordReader::new(&b"1,\"ok\"\n2,\"open\n"[..], d.clone(), "x.csv");
        r.next_record().unwrap();
        let err = r.next_record().unwrap_err().to_string();
        assert!(err.contains("x.csv:2"), "{err}");
        let mut r = CsvRecordReader::new(&b"\"a\"b\n"[..], d, "y.csv");
        assert!(r.next_record().unwrap_err().to_string().contains("y.csv:1"));
    }

    #[test]
    fn backslash_escapes_when_the_dialect_has_them() {
        let d = CsvDialect {
            escape: Some(b'\\'),
            ..CsvDialect::default()
        };
        let text = b"1,\\N,\"a\\\"b\\nc\",x\\,y,\"\\N\"\n";
        let mut r = CsvRecordReader::new(&text[..], d, "e.csv");
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(
            rec,
            vec![
                Some(b"1".to_vec()),
                None,
                Some(b"a\"b\nc".to_vec()),
                Some(b"x,y".to_vec()),
                Some(b"N".to_vec())
            ]
        );
    }

    #[test]
    fn rejects_ambiguous_dialects() {
        let bad = CsvDialect {
            delimiter: b'"',
            ..CsvDialect::default()
        };
        assert!(bad.validate().is_err());
        let bad = CsvDialect {
            null: "a,b".into(),
            ..CsvDialect::default()
        };
        assert!(bad.validate().is_err());
        assert!(CsvDialect::default().validate().is_ok());
    }
}
