//! Turns one data file (SQL, CSV or Parquet; plain, gzip or zstd) into [`Row`]s of cells, each
//! with the line it came from, for the sorter. Errors name the file, line and what was expected.

use std::io::{BufRead, BufReader, Read};

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice_core::layout::{
    Compression, CsvDialect, CsvFields, CsvRecordReader, DataFormat, civil_from_days,
};

use crate::ImportError;
use crate::cell::{CellKind, Row};
use crate::insert::{InsertError, parse_insert};
use crate::source::DataFile;
use crate::sql_reader::SqlReader;

/// Receives each row: the file's column list (if it names one), the cells, and the line.
type RowSink<'a> = dyn FnMut(Option<&[String]>, &Row, u64) -> Result<(), ImportError> + 'a;

/// What reading a file learned besides its rows.
#[derive(Debug, Default, Clone)]
pub struct FileFacts {
    pub rows: u64,
    /// The column list the last INSERT statement named, if any.
    pub columns: Option<Vec<String>>,
    /// The charset a `SET NAMES` set (mydumper writes `binary`).
    pub charset: Option<String>,
}

pub(crate) fn decompress(
    data: Bytes,
    compression: Compression,
    name: &str,
) -> Result<Box<dyn BufRead + Send>, ImportError> {
    let reader: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(std::io::Cursor::new(data)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(
            data,
        ))),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(std::io::Cursor::new(data))
                .map_err(|e| ImportError::Input(format!("{name}: not a zstd stream: {e}")))?,
        ),
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, reader)))
}

/// Reads every row of `file` (its bytes in `data`) and hands each to `on_row`.
pub fn read_file(
    data: Bytes,
    file: &DataFile,
    dialect: &CsvDialect,
    mut on_row: impl FnMut(Option<&[String]>, &Row, u64) -> Result<(), ImportError>,
) -> Result<FileFacts, ImportError> {
    match file.format {
        DataFormat::Sql if file.compression == Compression::None => read_sql(
            SqlReader::whole(data, file.name.as_str()),
            &file.name,
            &mut on_row,
        ),
        DataFormat::Sql => read_sql(
            SqlReader::new(
                decompress(data, file.compression, &file.name)?,
                file.name.as_str(),
            ),
            &file.name,
            &mut on_row,
        ),
        DataFormat::Csv => read_csv(
            decompress(data, file.compression, &file.name)?,
            &file.name,
            dialect,
            &mut on_row,
        ),
        DataFormat::Parquet => read_parquet(data, &file.name, &mut on_row),
    }
}

fn read_sql<R: BufRead>(
    mut reader: SqlReader<R>,
    name: &str,
    on_row: &mut RowSink<'_>,
) -> Result<FileFacts, ImportError> {
    let mut facts = FileFacts::default();
    let mut row = Row::default();
    while let Some((text, statement_line)) = reader.next()? {
        if text.len() > 9 && text[..9].eq_ignore_ascii_case(b"SET NAMES") {
            let charset = String::from_utf8_lossy(&text[9..])
                .trim()
                .trim_matches('\'')
                .to_ascii_lowercase();
            facts.charset = Some(charset.split_whitespace().next().unwrap_or("").to_owned());
            continue;
        }
        // A row's line: the statement's, plus the line breaks before the row (Sluice writes a
        // row per line, other dumps all rows on one).
        let (mut line, mut counted) = (statement_line, 0);
        let line_at = |offset: usize, line: &mut u64, counted: &mut usize| {
            *line += memchr::memchr_iter(b'\n', &text[*counted..offset]).count() as u64;
            *counted = offset;
            *line
        };
        // Each INSERT may name its own columns (`INSERT INTO t (a) …` then `INSERT INTO t ()
        // …`): the rows are mapped per list, and the columns a list leaves out take their
        // defaults (see `plan.rs`).
        let mut columns_seen = false;
        let parsed = parse_insert(text, &mut row, |head, row, offset| {
            let at = line_at(offset, &mut line, &mut counted);
            if !columns_seen {
                columns_seen = true;
                facts.columns.clone_from(&head.columns);
            }
            facts.rows += 1;
            on_row(head.columns.as_deref(), row, at)
        });
        match parsed {
            Ok(_) => {}
            Err(InsertError::Sink(e)) => return Err(e),
            Err(InsertError::Syntax(offset, why)) => {
                let line = line_at(offset.min(text.len()), &mut line, &mut counted);
                return Err(ImportError::Input(format!(
                    "{name}:{line}: byte {offset} of the statement: {why}"
                )));
            }
        }
    }
    Ok(facts)
}

fn read_csv(
    input: Box<dyn BufRead + Send>,
    name: &str,
    dialect: &CsvDialect,
    on_row: &mut RowSink<'_>,
) -> Result<FileFacts, ImportError> {
    let mut reader = CsvRecordReader::new(input, dialect.clone(), name);
    let mut facts = FileFacts::default();
    let mut first = true;
    let mut fields = CsvFields::default();
    let mut row = Row::default();
    loop {
        let line = reader.line();
        if !reader.read_record(&mut fields)? {
            break;
        }
        if first && dialect.header {
            first = false;
            facts.columns = Some(
                fields
                    .iter()
                    .map(|c| String::from_utf8_lossy(c.unwrap_or_default()).into_owned())
                    .collect(),
            );
            continue;
        }
        first = false;
        row.clear();
        for cell in fields.iter() {
            match cell {
                Some(v) => row.push(CellKind::Field, v),
                None => row.push(CellKind::Null, b""),
            }
        }
        facts.rows += 1;
        on_row(facts.columns.as_deref(), &row, line)?;
    }
    Ok(facts)
}

fn read_parquet(
    data: Bytes,
    name: &str,
    on_row: &mut RowSink<'_>,
) -> Result<FileFacts, ImportError> {
    let bad = |e: parquet::errors::ParquetError| ImportError::Input(format!("{name}: {e}"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(data).map_err(bad)?;
    let columns: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let reader = builder.build().map_err(bad)?;
    let mut facts = FileFacts {
        columns: Some(columns),
        ..FileFacts::default()
    };
    let mut row = Row::default();
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| ImportError::Input(format!("{name}: {e}")))?;
        for index in 0..batch.num_rows() {
            row.clear();
            for col in batch.columns() {
                arrow_cell(col.as_ref(), index, &mut row).map_err(|e| {
                    ImportError::Input(format!("{name}: row {}: {e}", facts.rows + 1))
                })?;
            }
            facts.rows += 1;
            on_row(facts.columns.as_deref(), &row, facts.rows)?;
        }
    }
    Ok(facts)
}

/// Adds one Arrow cell to `out` as the text MySQL would print (the inverse of the dumper's
/// mapping).
fn arrow_cell(array: &dyn Array, row: usize, out: &mut Row) -> Result<(), String> {
    if array.is_null(row) {
        out.push(CellKind::Null, b"");
        return Ok(());
    }
    // Numbers are bare literals (a BIT column reads them as numbers), the rest text.
    let (kind, bytes): (CellKind, std::borrow::Cow<'_, [u8]>) = {
        let text = |s: String| (CellKind::Text, s.into_bytes().into());
        let number = |s: String| (CellKind::Bare, s.into_bytes().into());
        match array.data_type() {
            DataType::Int8 => number(array.as_primitive::<Int8Type>().value(row).to_string()),
            DataType::Int16 => number(array.as_primitive::<Int16Type>().value(row).to_string()),
            DataType::Int32 => number(array.as_primitive::<Int32Type>().value(row).to_string()),
            DataType::Int64 => number(array.as_primitive::<Int64Type>().value(row).to_string()),
            DataType::UInt8 => number(array.as_primitive::<UInt8Type>().value(row).to_string()),
            DataType::UInt16 => number(array.as_primitive::<UInt16Type>().value(row).to_string()),
            DataType::UInt32 => number(array.as_primitive::<UInt32Type>().value(row).to_string()),
            DataType::UInt64 => number(array.as_primitive::<UInt64Type>().value(row).to_string()),
            DataType::Float32 => number(array.as_primitive::<Float32Type>().value(row).to_string()),
            DataType::Float64 => number(array.as_primitive::<Float64Type>().value(row).to_string()),
            DataType::Decimal128(_, scale) => {
                let v = array.as_primitive::<Decimal128Type>().value(row);
                number(decimal_text(v, *scale))
            }
            DataType::Date32 => text(date_text(i64::from(
                array.as_primitive::<Date32Type>().value(row),
            ))),
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                let us = array.as_primitive::<TimestampMicrosecondType>().value(row);
                let (days, rest) = (us.div_euclid(86_400_000_000), us.rem_euclid(86_400_000_000));
                text(format!("{} {}", date_text(days), time_text(rest)))
            }
            DataType::Duration(TimeUnit::Microsecond) => text(time_text(
                array.as_primitive::<DurationMicrosecondType>().value(row),
            )),
            DataType::Utf8 => (
                CellKind::Text,
                array.as_string::<i32>().value(row).as_bytes().into(),
            ),
            DataType::LargeUtf8 => (
                CellKind::Text,
                array.as_string::<i64>().value(row).as_bytes().into(),
            ),
            DataType::Binary => (CellKind::Bytes, array.as_binary::<i32>().value(row).into()),
            DataType::LargeBinary => (CellKind::Bytes, array.as_binary::<i64>().value(row).into()),
            DataType::Boolean => (
                CellKind::Text,
                if array.as_boolean().value(row) {
                    b"1"
                } else {
                    b"0"
                }
                .as_slice()
                .into(),
            ),
            other => return Err(format!("Arrow type {other} is not supported")),
        }
    };
    out.push(kind, &bytes);
    Ok(())
}

fn decimal_text(v: i128, scale: i8) -> String {
    if scale <= 0 {
        return (v * 10i128.pow(u32::from(scale.unsigned_abs()))).to_string();
    }
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{}{whole}.{fraction}", if v < 0 { "-" } else { "" })
}

fn date_text(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Microseconds as `[-]HH:MM:SS.ffffff` (hours may pass 24, as in MySQL's TIME).
fn time_text(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "" };
    let us = us.unsigned_abs();
    let (secs, frac) = (us / 1_000_000, us % 1_000_000);
    format!(
        "{sign}{:02}:{:02}:{:02}.{frac:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_values_print_as_mysql_text() {
        assert_eq!(decimal_text(-1_234_500, 4), "-123.4500");
        assert_eq!(decimal_text(5, 3), "0.005");
        assert_eq!(decimal_text(7, 0), "7");
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(time_text(-3_020_399_500_000), "-838:59:59.500000");
    }

    #[test]
    fn sql_rows_carry_their_lines_and_errors_name_the_line() {
        let sql = b"/*!40101 SET NAMES binary*/;\nINSERT INTO `t` VALUES\n(1,'a'),\n(2,'b');\nINSERT INTO t VALUES (3, NOW());\n";
        let file = DataFile {
            name: "db.t.0.sql".into(),
            format: DataFormat::Sql,
            compression: Compression::None,
        };
        let mut lines = Vec::new();
        let err = read_file(
            Bytes::from_static(sql),
            &file,
            &CsvDialect::default(),
            |_, _, line| {
                lines.push(line);
                Ok(())
            },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(lines, [3, 4]);
        assert!(err.contains("db.t.0.sql:5"), "{err}");
    }
}
