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
        let start_line = self.line;
        let mut record = Vec::new();
        let mut field = Vec::new();
        let mut quoted = false; // the current field started with a quote
        let mut in_quotes = false; // inside the quotes right now
        let mut after_quote = false; // just saw a quote inside quotes (maybe doubled)
        let mut escaping = false; // just saw the escape byte
        let mut raw = Vec::new(); // an unquoted field as written, to compare with the NULL marker
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
                    return Ok(None);
                }
                if in_quotes && !after_quote {
                    return Err(CoreError::invalid(
                        "CSV",
                        format!("{}:{start_line}", self.name),
                        "a quoted field is not closed before the end of the file",
                    ));
                }
                record.push(finish_field(&mut field, &mut raw, quoted, &null));
                return Ok(Some(record));
            }
            let mut used = 0;
            let mut done = false;
            for &b in buf {
                used += 1;
                any = true;
                if escaping {
                    escaping = false;
                    if b == b'\n' {
                        self.line += 1;
                    }
                    field.push(unescape(b));
                    raw.push(b);
                    continue;
                }
                if in_quotes && !after_quote && esc == Some(b) {
                    escaping = true;
                    continue;
                }
                if in_quotes {
                    if after_quote {
                        after_quote = false;
                        if b == q {
                            field.push(q);
                            continue;
                        }
                        in_quotes = false; // the quote closed the field; fall through
                    } else if b == q {
                        after_quote = true;
                        continue;
                    } else {
                        if b == b'\n' {
                            self.line += 1;
                        }
                        field.push(b);
                        continue;
                    }
                }
                if b == d {
                    record.push(finish_field(&mut field, &mut raw, quoted, &null));
                    quoted = false;
                } else if b == b'\n' {
                    self.line += 1;
                    if field.last() == Some(&b'\r') && !quoted {
                        field.pop();
                    }
                    record.push(finish_field(&mut field, &mut raw, quoted, &null));
                    done = true;
                    break;
                } else if b == q && field.is_empty() && !quoted {
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
                    raw.push(b);
                } else {
                    field.push(b);
                    raw.push(b);
                }
            }
            self.input.consume(used);
            if done {
                return Ok(Some(record));
            }
        }
    }
}

/// Ends a field: an unquoted NULL marker (as written, before unescaping) is NULL, anything
/// else a value.
fn finish_field(
    field: &mut Vec<u8>,
    raw: &mut Vec<u8>,
    quoted: bool,
    null: &[u8],
) -> Option<Vec<u8>> {
    let value = std::mem::take(field);
    let written = std::mem::take(raw);
    if !quoted && written == null {
        None
    } else {
        Some(value)
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
