//! Binlog cells as exact SQL literals for the target.
//!
//! `mysql_common` decodes a row event's cells from the TABLE_MAP types alone. On MariaDB (whose
//! default `binlog_row_metadata=NO_LOG` sends no signedness) several come out wrong, and this
//! module puts them right with the streamer's schema view (see ../shared/notes):
//!
//! * unsigned integers arrive as signed (`INT UNSIGNED` 4294967295 as −1): reinterpreted by the
//!   column's width;
//! * signed `MEDIUMINT` is not sign-extended (−1 as 16777215): the 24 bits are sign-extended;
//! * `YEAR` 0000 arrives as "1900" (the decoder adds 1900 to the byte; 1900 itself is not a
//!   valid YEAR), so "1900" means 0;
//! * `TIMESTAMP` arrives as UTC epoch seconds: written as the UTC date-time (every Sluice
//!   session runs with `time_zone = '+00:00'`), and epoch 0 as the zero timestamp;
//! * `FLOAT` arrives as an `f32`: written as the exact value of that `f32` as a double, so the
//!   target rounds it back to the same bits.
//!
//! Character columns in utf8mb4/utf8mb3/ascii are written as quoted strings; other character
//! sets and binary columns as hex, which the target stores as the bytes they are.

use mysql_async::Value;
use mysql_async::binlog::row::BinlogRow;
use mysql_async::binlog::value::BinlogValue;
use sluice_core::layout::civil_from_days;
use sluice_core::{ColumnKind, bit_value, sql_literal};

use crate::json::{apply_diffs, json_text};
use crate::schema_view::ColumnDef;

/// A row as SQL literals in table order (`NULL` for NULL).
pub type Row = Vec<Vec<u8>>;

pub const NULL: &[u8] = b"NULL";

/// A row image as SQL literals in table order (`before`: the before image, for an after
/// image's partial JSON updates); an error names the column that could not be converted.
pub fn row_literals(
    image: &BinlogRow,
    before: Option<&BinlogRow>,
    columns: &[ColumnDef],
) -> Result<Row, String> {
    // A MINIMAL or NOBLOB image holds only some columns, packed: never guess which.
    if image.len() != columns.len() {
        return Err(format!(
            "the row image holds {} of the table's {} columns (binlog_row_image is not FULL)",
            image.len(),
            columns.len()
        ));
    }
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            after_literal(image.as_ref(i), before.and_then(|b| b.as_ref(i)), c)
                .map_err(|e| format!("column `{}`: {e}", c.name))
        })
        .collect()
}

/// The literal of an after image's cell: a partial JSON update (MySQL PARTIAL_UPDATE_ROWS)
/// is applied to `before`, the same column's cell in the before image.
pub fn after_literal(
    value: Option<&BinlogValue<'_>>,
    before: Option<&BinlogValue<'_>>,
    column: &ColumnDef,
) -> Result<Vec<u8>, String> {
    let Some(BinlogValue::JsonDiff(diffs)) = value else {
        return literal(value, column);
    };
    let Some(BinlogValue::Jsonb(old)) = before else {
        return Err(
            "a partial JSON update without a JSON before image (binlog_row_image is not FULL)"
                .into(),
        );
    };
    let json = apply_diffs(old.clone(), diffs)?;
    let mut out = Vec::new();
    sql_literal(&mut out, ColumnKind::Text, Some(json.as_bytes()));
    Ok(out)
}

/// The SQL literal of one cell of `column`; an error names what could not be converted.
pub fn literal(value: Option<&BinlogValue<'_>>, column: &ColumnDef) -> Result<Vec<u8>, String> {
    let value = match value {
        None => {
            return Err("the row image lacks this column (binlog_row_image is not FULL)".into());
        }
        Some(BinlogValue::Value(v)) => v,
        Some(BinlogValue::Jsonb(j)) => {
            let json = json_text(j.clone())?;
            let mut out = Vec::new();
            sql_literal(&mut out, ColumnKind::Text, Some(json.as_bytes()));
            return Ok(out);
        }
        Some(BinlogValue::JsonDiff(_)) => {
            return Err("a partial JSON update without the column's before image".into());
        }
    };
    let mut out = Vec::new();
    match value {
        Value::NULL => out.extend_from_slice(NULL),
        Value::Int(i) => integer(&mut out, *i, column),
        Value::UInt(u) => out.extend_from_slice(u.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(format!("{:e}", f64::from(*f)).as_bytes()),
        Value::Double(d) => out.extend_from_slice(format!("{d:e}").as_bytes()),
        Value::Date(y, mo, d, h, mi, s, us) => {
            if column.data_type == "date" {
                out.extend_from_slice(format!("'{y:04}-{mo:02}-{d:02}'").as_bytes());
            } else {
                out.extend_from_slice(
                    format!("'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}'").as_bytes(),
                );
            }
        }
        Value::Time(neg, days, h, m, s, us) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            let sign = if *neg { "-" } else { "" };
            out.extend_from_slice(format!("'{sign}{hours}:{m:02}:{s:02}.{us:06}'").as_bytes());
        }
        Value::Bytes(b) => bytes(&mut out, b, column)?,
    }
    Ok(out)
}

fn integer(out: &mut Vec<u8>, v: i64, column: &ColumnDef) {
    let text = match (column.data_type.as_str(), column.unsigned) {
        ("tinyint", true) => (v as u8).to_string(),
        ("smallint", true) => (v as u16).to_string(),
        ("mediumint", true) => (v & 0xFF_FFFF).to_string(),
        ("mediumint", false) => {
            let raw = v & 0xFF_FFFF;
            (if raw >= 0x80_0000 {
                raw - 0x100_0000
            } else {
                raw
            })
            .to_string()
        }
        ("int" | "integer", true) => (v as u32).to_string(),
        ("bigint", true) => (v as u64).to_string(),
        ("timestamp", _) => return timestamp(out, v, 0),
        _ => v.to_string(),
    };
    out.extend_from_slice(text.as_bytes());
}

fn bytes(out: &mut Vec<u8>, b: &[u8], column: &ColumnDef) -> Result<(), String> {
    match column.data_type.as_str() {
        "year" => {
            let text = std::str::from_utf8(b).map_err(|_| "YEAR is not text".to_owned())?;
            out.extend_from_slice(if text == "1900" {
                b"0"
            } else {
                text.as_bytes()
            });
        }
        "timestamp" => {
            let text = std::str::from_utf8(b).map_err(|_| "TIMESTAMP is not text".to_owned())?;
            let (secs, micros) = text.split_once('.').unwrap_or((text, "0"));
            let secs: i64 = secs.parse().map_err(|_| format!("TIMESTAMP `{text}`"))?;
            let micros: u32 = format!("{micros:0<6}")[..6]
                .parse()
                .map_err(|_| format!("TIMESTAMP `{text}`"))?;
            timestamp(out, secs, micros);
        }
        "set" => {
            let mask = b
                .iter()
                .rev()
                .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte));
            out.extend_from_slice(mask.to_string().as_bytes());
        }
        "bit" => out.extend_from_slice(bit_value(b).to_string().as_bytes()),
        _ => match column.kind {
            ColumnKind::Integer | ColumnKind::Decimal | ColumnKind::Float => {
                if !b.iter().all(|c| c.is_ascii_digit() || b"+-.eE".contains(c)) || b.is_empty() {
                    return Err(format!("`{}` is not a number", String::from_utf8_lossy(b)));
                }
                out.extend_from_slice(b);
            }
            ColumnKind::Text if column.utf8 => sql_literal(out, ColumnKind::Text, Some(b)),
            _ => sql_literal(out, ColumnKind::Binary, Some(b)),
        },
    }
    Ok(())
}

/// Epoch seconds as a UTC date-time literal; 0 is MySQL's zero timestamp.
fn timestamp(out: &mut Vec<u8>, secs: i64, micros: u32) {
    if secs == 0 && micros == 0 {
        out.extend_from_slice(b"'0000-00-00 00:00:00'");
        return;
    }
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    out.extend_from_slice(
        format!(
            "'{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}'",
            t / 3600,
            t / 60 % 60,
            t % 60
        )
        .as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, unsigned: bool) -> ColumnDef {
        ColumnDef {
            name: "c".into(),
            data_type: data_type.into(),
            kind: ColumnKind::from_data_type(data_type),
            unsigned,
            generated: false,
            utf8: true,
        }
    }

    fn lit(v: Value, c: &ColumnDef) -> String {
        String::from_utf8(literal(Some(&BinlogValue::Value(v)), c).unwrap()).unwrap()
    }

    #[test]
    fn puts_mariadb_integers_right() {
        assert_eq!(lit(Value::Int(-1), &col("int", true)), "4294967295");
        assert_eq!(lit(Value::Int(-1), &col("tinyint", true)), "255");
        assert_eq!(
            lit(Value::Int(-1), &col("bigint", true)),
            "18446744073709551615"
        );
        assert_eq!(
            lit(Value::Int(i64::MIN), &col("bigint", true)),
            "9223372036854775808"
        );
        assert_eq!(lit(Value::Int(16_777_215), &col("mediumint", false)), "-1");
        assert_eq!(
            lit(Value::Int(8_388_608), &col("mediumint", false)),
            "-8388608"
        );
        assert_eq!(
            lit(Value::Int(16_777_215), &col("mediumint", true)),
            "16777215"
        );
        assert_eq!(lit(Value::Int(-5), &col("int", false)), "-5");
    }

    #[test]
    fn years_timestamps_floats_and_times() {
        assert_eq!(
            lit(Value::Bytes(b"1900".to_vec()), &col("year", false)),
            "0"
        );
        assert_eq!(
            lit(Value::Bytes(b"2155".to_vec()), &col("year", false)),
            "2155"
        );
        assert_eq!(
            lit(
                Value::Bytes(b"2147483647.999999".to_vec()),
                &col("timestamp", false)
            ),
            "'2038-01-19 03:14:07.999999'"
        );
        assert_eq!(
            lit(Value::Bytes(b"0".to_vec()), &col("timestamp", false)),
            "'0000-00-00 00:00:00'"
        );
        let f = lit(Value::Float(1.234_567_8), &col("float", false));
        assert_eq!(f.parse::<f64>().unwrap() as f32, 1.234_567_8_f32);
        assert_eq!(
            lit(Value::Time(true, 34, 22, 59, 59, 0), &col("time", false)),
            "'-838:59:59.000000'"
        );
        assert_eq!(lit(Value::Bytes(vec![5, 0]), &col("set", false)), "5");
        assert_eq!(lit(Value::Bytes(vec![1, 2]), &col("bit", false)), "258");
    }

    #[test]
    fn strings_quote_or_hex_by_charset() {
        assert_eq!(
            lit(Value::Bytes(b"a'b".to_vec()), &col("varchar", false)),
            "'a\\'b'"
        );
        let mut latin1 = col("varchar", false);
        latin1.utf8 = false;
        assert_eq!(lit(Value::Bytes(vec![0xE9]), &latin1), "0xE9");
        assert_eq!(lit(Value::Bytes(vec![0, 1]), &col("blob", false)), "0x0001");
        assert!(literal(None, &col("int", false)).is_err());
    }
}
