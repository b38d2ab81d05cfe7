//! Turns one data file (SQL, CSV or Parquet; plain, gzip or zstd) into rows of [`Cell`]s, each
//! with the line it came from, for the sorter. Errors name the file, line and what was expected.

use std::io::{BufRead, BufReader, Read};

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice_core::layout::{Compression, CsvDialect, CsvRecordReader, DataFormat, civil_from_days};

use crate::ImportError;
use crate::cell::Cell;
use crate::insert::parse_insert;
use crate::source::DataFile;
use crate::sql_reader::SqlReader;

/// Receives each row: the file's column list (if it names one), the cells, and the line.
type RowSink<'a> = dyn FnMut(Option<&[String]>, Vec<Cell>, u64) -> Result<(), ImportError> + 'a;

/// What reading a file learned besides its rows.
#[derive(Debug, Default, Clone)]
pub struct FileFacts {
    pub rows: u64,
    /// The column list the INSERT statements named, if any.
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
    mut on_row: impl FnMut(Option<&[String]>, Vec<Cell>, u64) -> Result<(), ImportError>,
) -> Result<FileFacts, ImportError> {
    match file.format {
        DataFormat::Sql => read_sql(
            decompress(data, file.compression, &file.name)?,
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

fn read_sql(
    input: Box<dyn BufRead + Send>,
    name: &str,
    on_row: &mut RowSink<'_>,
) -> Result<FileFacts, ImportError> {
    let mut reader = SqlReader::new(input, name);
    let mut facts = FileFacts::default();
    while let Some(statement) = reader.next_statement()? {
        let text = &statement.text;
        if text.len() > 9 && text[..9].eq_ignore_ascii_case(b"SET NAMES") {
            let charset = String::from_utf8_lossy(&text[9..])
                .trim()
                .trim_matches('\'')
                .to_ascii_lowercase();
            facts.charset = Some(charset.split_whitespace().next().unwrap_or("").to_owned());
            continue;
        }
        let insert = parse_insert(text).map_err(|(offset, why)| {
            let line = statement.line
                + text[..offset.min(text.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64;
            ImportError::Input(format!(
                "{name}:{line}: byte {offset} of the statement: {why}"
            ))
        })?;
        let Some(insert) = insert else { continue };
        if facts.columns.is_none() {
            facts.columns = insert.columns.clone();
        } else if insert.columns.is_some() && insert.columns != facts.columns {
            return Err(ImportError::Input(format!(
                "{name}:{}: the INSERT names other columns than the one before",
                statement.line
            )));
        }
        // Sluice writes one row per line after the INSERT line; other dumps put all on one.
        let multiline = text.iter().filter(|&&b| b == b'\n').count() >= insert.rows.len();
        for (i, row) in insert.rows.into_iter().enumerate() {
            let line = if multiline {
                statement.line + 1 + i as u64
            } else {
                statement.line
            };
            facts.rows += 1;
            on_row(insert.columns.as_deref(), row, line)?;
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
    loop {
        let line = reader.line();
        let Some(record) = reader.next_record()? else {
            break;
        };
        if first && dialect.header {
            first = false;
            facts.columns = Some(
                record
                    .iter()
                    .map(|c| String::from_utf8_lossy(c.as_deref().unwrap_or_default()).into_owned())
                    .collect(),
            );
            continue;
        }
        first = false;
        let cells = record
            .into_iter()
            .map(|c| c.map(Cell::Field).unwrap_or(Cell::Null))
            .collect();
        facts.rows += 1;
        on_row(facts.columns.as_deref(), cells, line)?;
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
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| ImportError::Input(format!("{name}: {e}")))?;
        for row in 0..batch.num_rows() {
            let cells = batch
                .columns()
                .iter()
                .map(|col| arrow_cell(col.as_ref(), row))
                .collect::<Result<Vec<Cell>, String>>()
                .map_err(|e| ImportError::Input(format!("{name}: row {}: {e}", facts.rows + 1)))?;
            facts.rows += 1;
            on_row(facts.columns.as_deref(), cells, facts.rows)?;
        }
    }
    Ok(facts)
}

/// One Arrow cell as the text MySQL would print (the inverse of the dumper's mapping).
fn arrow_cell(array: &dyn Array, row: usize) -> Result<Cell, String> {
    if array.is_null(row) {
        return Ok(Cell::Null);
    }
    // Numbers are bare literals (a BIT column reads them as numbers), the rest text.
    let text = |s: String| Ok(Cell::Text(s.into_bytes()));
    let number = |s: String| Ok(Cell::Bare(s.into_bytes()));
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
        DataType::Utf8 => text(array.as_string::<i32>().value(row).to_owned()),
        DataType::LargeUtf8 => text(array.as_string::<i64>().value(row).to_owned()),
        DataType::Binary => Ok(Cell::Bytes(array.as_binary::<i32>().value(row).to_vec())),
        DataType::LargeBinary => Ok(Cell::Bytes(array.as_binary::<i64>().value(row).to_vec())),
        DataType::Boolean => text(if array.as_boolean().value(row) {
            "1".into()
        } else {
            "0".into()
        }),
        other => Err(format!("Arrow type {other} is not supported")),
    }
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
