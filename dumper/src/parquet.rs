//! Parquet output: each chunk becomes one Parquet file whose Arrow schema is mapped from the
//! column types, with row groups bounded by size.
//!
//! | MySQL type | Arrow type | notes |
//! |---|---|---|
//! | TINYINT, SMALLINT, MEDIUMINT, INT, BIGINT | Int8, Int16, Int32, Int32, Int64 | UNSIGNED: UInt8 … UInt64 |
//! | YEAR | UInt16 | 0 or 1901–2155 |
//! | DECIMAL(p,s), p ≤ 38 | Decimal128(p,s) | exact |
//! | DECIMAL(p,s), p > 38 | Utf8 | the exact decimal text (Arrow's Decimal128 holds 38 digits) |
//! | FLOAT, DOUBLE | Float32, Float64 | every bit kept |
//! | BIT(n) | UInt64 | |
//! | DATE | Date32 | days since 1970-01-01 |
//! | DATETIME(f) | Timestamp(µs) | wall-clock time, no zone |
//! | TIMESTAMP(f) | Timestamp(µs, "UTC") | read in a UTC session |
//! | TIME(f) | Duration(µs) | −838:59:59 … 838:59:59 |
//! | CHAR, VARCHAR, TEXT, ENUM, SET, JSON | Utf8 | |
//! | BINARY, VARBINARY, BLOB, spatial | Binary | raw bytes (spatial: MySQL's internal WKB) |
//!
//! Nothing is lossy: a value the Arrow type cannot hold (a zero date such as `0000-00-00`, a
//! date with a zero month or day) stops the dump with an error naming the table, column and
//! value, rather than being written as something else. Such tables dump exactly as SQL or CSV.
//! Compression is Parquet's own (per page): `--compress zstd` or `none`.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, Date32Builder, Decimal128Builder, DurationMicrosecondBuilder,
    Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sluice_core::layout::Compression;
use sluice_core::{ColumnInfo, ColumnKind, TableInfo, bit_value};

use crate::DumpError;

/// Rows per Arrow batch handed to the Parquet writer.
const BATCH_ROWS: usize = 4096;
/// A row group is closed once its encoded size passes this.
pub const ROW_GROUP_BYTES: usize = 64 << 20;

/// The Arrow type a column is stored as (see the module table).
pub fn arrow_type(c: &ColumnInfo) -> DataType {
    match (c.data_type.as_str(), c.unsigned) {
        ("tinyint", false) => DataType::Int8,
        ("tinyint", true) => DataType::UInt8,
        ("smallint", false) => DataType::Int16,
        ("smallint", true) => DataType::UInt16,
        ("mediumint" | "int" | "integer", false) => DataType::Int32,
        ("mediumint" | "int" | "integer", true) => DataType::UInt32,
        ("bigint", false) => DataType::Int64,
        ("bigint", true) => DataType::UInt64,
        ("year", _) => DataType::UInt16,
        ("decimal" | "numeric", _) if c.precision <= 38 => {
            DataType::Decimal128(c.precision.max(1), c.scale as i8)
        }
        ("float", _) => DataType::Float32,
        ("double" | "real" | "double precision", _) => DataType::Float64,
        ("bit", _) => DataType::UInt64,
        ("date", _) => DataType::Date32,
        ("datetime", _) => DataType::Timestamp(TimeUnit::Microsecond, None),
        ("timestamp", _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ("time", _) => DataType::Duration(TimeUnit::Microsecond),
        _ if c.kind == ColumnKind::Binary => DataType::Binary,
        _ => DataType::Utf8,
    }
}

enum Builder {
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder, u8, i8),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Dur(DurationMicrosecondBuilder),
    Bin(BinaryBuilder),
    Str(StringBuilder),
}

impl Builder {
    fn for_type(t: &DataType) -> Builder {
        match t {
            DataType::Int8 => Builder::I8(Int8Builder::new()),
            DataType::Int16 => Builder::I16(Int16Builder::new()),
            DataType::Int32 => Builder::I32(Int32Builder::new()),
            DataType::Int64 => Builder::I64(Int64Builder::new()),
            DataType::UInt8 => Builder::U8(UInt8Builder::new()),
            DataType::UInt16 => Builder::U16(UInt16Builder::new()),
            DataType::UInt32 => Builder::U32(UInt32Builder::new()),
            DataType::UInt64 => Builder::U64(UInt64Builder::new()),
            DataType::Float32 => Builder::F32(Float32Builder::new()),
            DataType::Float64 => Builder::F64(Float64Builder::new()),
            DataType::Decimal128(p, s) => Builder::Dec(Decimal128Builder::new(), *p, *s),
            DataType::Date32 => Builder::Date(Date32Builder::new()),
            DataType::Timestamp(_, tz) => Builder::Ts(
                TimestampMicrosecondBuilder::new(),
                tz.as_ref().map(|z| Arc::from(z.as_ref())),
            ),
            DataType::Duration(_) => Builder::Dur(DurationMicrosecondBuilder::new()),
            DataType::Binary => Builder::Bin(BinaryBuilder::new()),
            _ => Builder::Str(StringBuilder::new()),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::I8(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::U8(b) => Arc::new(b.finish()),
            Builder::U16(b) => Arc::new(b.finish()),
            Builder::U32(b) => Arc::new(b.finish()),
            Builder::U64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Dec(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .unwrap_or_else(|_| b.finish()),
            ),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
            Builder::Dur(b) => Arc::new(b.finish()),
            Builder::Bin(b) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
        }
    }

    /// Appends one cell; `Err` carries the reason a value does not fit.
    fn append(&mut self, value: Option<&[u8]>, kind: ColumnKind) -> Result<(), String> {
        let Some(v) = value else {
            self.append_null();
            return Ok(());
        };
        let text = || std::str::from_utf8(v).map_err(|_| "not UTF-8".to_owned());
        let int = || -> Result<i128, String> {
            if kind == ColumnKind::Bit {
                return Ok(i128::from(bit_value(v)));
            }
            text()?.parse::<i128>().map_err(|e| e.to_string())
        };
        let range = |_| "out of range".to_owned();
        match self {
            Builder::I8(b) => b.append_value(i8::try_from(int()?).map_err(range)?),
            Builder::I16(b) => b.append_value(i16::try_from(int()?).map_err(range)?),
            Builder::I32(b) => b.append_value(i32::try_from(int()?).map_err(range)?),
            Builder::I64(b) => b.append_value(i64::try_from(int()?).map_err(range)?),
            Builder::U8(b) => b.append_value(u8::try_from(int()?).map_err(range)?),
            Builder::U16(b) => b.append_value(u16::try_from(int()?).map_err(range)?),
            Builder::U32(b) => b.append_value(u32::try_from(int()?).map_err(range)?),
            Builder::U64(b) => b.append_value(u64::try_from(int()?).map_err(range)?),
            Builder::F32(b) => {
                b.append_value(text()?.parse::<f64>().map_err(|e| e.to_string())? as f32)
            }
            Builder::F64(b) => b.append_value(text()?.parse::<f64>().map_err(|e| e.to_string())?),
            Builder::Dec(b, _, s) => b.append_value(parse_decimal(text()?, *s)?),
            Builder::Date(b) => b.append_value(parse_date(text()?)? as i32),
            Builder::Ts(b, _) => b.append_value(parse_datetime(text()?)?),
            Builder::Dur(b) => b.append_value(parse_time(text()?)?),
            Builder::Bin(b) => b.append_value(v),
            Builder::Str(b) => b.append_value(text()?),
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            Builder::I8(b) => b.append_null(),
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::U8(b) => b.append_null(),
            Builder::U16(b) => b.append_null(),
            Builder::U32(b) => b.append_null(),
            Builder::U64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Dec(b, ..) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Ts(b, _) => b.append_null(),
            Builder::Dur(b) => b.append_null(),
            Builder::Bin(b) => b.append_null(),
            Builder::Str(b) => b.append_null(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::I8(b) => b.len(),
            Builder::I16(b) => b.len(),
            Builder::I32(b) => b.len(),
            Builder::I64(b) => b.len(),
            Builder::U8(b) => b.len(),
            Builder::U16(b) => b.len(),
            Builder::U32(b) => b.len(),
            Builder::U64(b) => b.len(),
            Builder::F32(b) => b.len(),
            Builder::F64(b) => b.len(),
            Builder::Dec(b, ..) => b.len(),
            Builder::Date(b) => b.len(),
            Builder::Ts(b, _) => b.len(),
            Builder::Dur(b) => b.len(),
            Builder::Bin(b) => b.len(),
            Builder::Str(b) => b.len(),
        }
    }
}

/// `-123.4500` with scale 4 → -1234500.
fn parse_decimal(text: &str, scale: i8) -> Result<i128, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.len() != scale.max(0) as usize {
        return Err(format!("expected {scale} fraction digits"));
    }
    let joined: String = [whole, fraction].concat();
    let value: i128 = joined.parse().map_err(|_| "not a decimal".to_owned())?;
    Ok(if negative { -value } else { value })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_date(text: &str) -> Result<i64, String> {
    let mut parts = text
        .splitn(3, '-')
        .map(|p| p.parse::<i64>().map_err(|_| "not a date".to_owned()));
    let (y, m, d) = (
        parts.next().ok_or("not a date")??,
        parts.next().ok_or("not a date")??,
        parts.next().ok_or("not a date")??,
    );
    if m == 0 || d == 0 || m > 12 || d > 31 {
        return Err("a zero or partial date has no calendar day".to_owned());
    }
    Ok(days_from_civil(y, m, d))
}

/// `HH:MM:SS[.ffffff]` (hours may exceed 24 and carry a sign) → microseconds.
fn parse_time(text: &str) -> Result<i64, String> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (hms, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut parts = hms
        .split(':')
        .map(|p| p.parse::<i64>().map_err(|_| "not a time".to_owned()));
    let h = parts.next().ok_or("not a time")??;
    let m = parts.next().ok_or("not a time")??;
    let s = parts.next().ok_or("not a time")??;
    let micros = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}")
            .get(..6)
            .ok_or("bad fraction")?
            .parse::<i64>()
            .map_err(|_| "bad fraction".to_owned())?
    };
    let total = ((h * 60 + m) * 60 + s) * 1_000_000 + micros;
    Ok(if negative { -total } else { total })
}

fn parse_datetime(text: &str) -> Result<i64, String> {
    let (date, time) = text.split_once(' ').unwrap_or((text, "00:00:00"));
    Ok(parse_date(date)? * 86_400_000_000 + parse_time(time)?)
}

/// Encodes one chunk's rows into Parquet, handing out the file's bytes as they are produced.
pub struct ParquetEncoder {
    schema: SchemaRef,
    builders: Vec<Builder>,
    kinds: Vec<ColumnKind>,
    names: Vec<String>,
    table: String,
    writer: ArrowWriter<Vec<u8>>,
    row_group_bytes: usize,
}

impl ParquetEncoder {
    /// `row_group_bytes` bounds a row group (at most [`ROW_GROUP_BYTES`]); a file is only ever
    /// split between row groups.
    pub fn new(
        table: &TableInfo,
        compression: Compression,
        row_group_bytes: usize,
    ) -> Result<ParquetEncoder, DumpError> {
        let fields: Vec<Field> = table
            .columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(c), true))
            .collect();
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        let builders = schema
            .fields()
            .iter()
            .map(|f| Builder::for_type(f.data_type()))
            .collect();
        let codec = match compression {
            Compression::Zstd => Codec::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()),
            _ => Codec::UNCOMPRESSED,
        };
        let props = WriterProperties::builder().set_compression(codec).build();
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
            .map_err(|e| DumpError::Worker(e.to_string()))?;
        Ok(ParquetEncoder {
            schema,
            builders,
            kinds: table.columns.iter().map(|c| c.kind).collect(),
            names: table.column_names(),
            table: table.name.plain(),
            writer,
            row_group_bytes: row_group_bytes.min(ROW_GROUP_BYTES),
        })
    }

    /// Appends a row; every `BATCH_ROWS` rows the batch goes to the Parquet writer.
    pub fn row(&mut self, cells: &[Option<&[u8]>]) -> Result<(), DumpError> {
        for (i, cell) in cells.iter().enumerate() {
            self.builders[i]
                .append(cell.as_deref(), self.kinds[i])
                .map_err(|reason| DumpError::Value {
                    table: self.table.clone(),
                    column: self.names[i].clone(),
                    value: String::from_utf8_lossy(cell.as_deref().unwrap_or_default())
                        .into_owned(),
                    reason: format!(
                        "{reason}; this value cannot be stored as Parquet {}",
                        self.schema.field(i).data_type()
                    ),
                })?;
        }
        if self.builders.first().is_some_and(|b| b.len() >= BATCH_ROWS) {
            self.write_batch()?;
        }
        Ok(())
    }

    fn write_batch(&mut self) -> Result<(), DumpError> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| DumpError::Worker(e.to_string()))?;
        self.writer
            .write(&batch)
            .map_err(|e| DumpError::Worker(e.to_string()))?;
        if self.writer.in_progress_size() >= self.row_group_bytes {
            self.writer
                .flush()
                .map_err(|e| DumpError::Worker(e.to_string()))?;
        }
        Ok(())
    }

    /// Moves the file bytes produced so far into `out`.
    pub fn drain_into(&mut self, out: &mut Vec<u8>) {
        let produced = self.writer.inner_mut();
        if !produced.is_empty() {
            out.append(produced);
        }
    }

    /// Writes the last batch and the footer into `out`.
    pub fn finish_into(mut self, out: &mut Vec<u8>) -> Result<(), DumpError> {
        if self.builders.first().is_some_and(|b| b.len() > 0) {
            self.write_batch()?;
        }
        let rest = self
            .writer
            .into_inner()
            .map_err(|e| DumpError::Worker(e.to_string()))?;
        out.extend_from_slice(&rest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_temporal_and_decimal_text() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2000-03-01"), Ok(11_017));
        assert_eq!(parse_date("1000-01-01"), Ok(-354_285));
        assert!(parse_date("0000-00-00").is_err());
        assert!(parse_date("2024-02-00").is_err());
        assert_eq!(parse_time("-838:59:59.5"), Ok(-(3_020_399_500_000)));
        assert_eq!(parse_time("00:00:00.000001"), Ok(1));
        assert_eq!(parse_datetime("1970-01-02 00:00:01.25"), Ok(86_401_250_000));
        assert_eq!(parse_decimal("-123.4500", 4), Ok(-1_234_500));
        assert_eq!(parse_decimal("7", 0), Ok(7));
        assert!(parse_decimal("1.5", 2).is_err());
    }
}
