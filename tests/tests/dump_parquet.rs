//! Parquet output: every value is stored in its mapped Arrow type exactly. The expected
//! numbers come from the server itself (TO_DAYS, TIMESTAMPDIFF, TIME_TO_SEC, CAST), not from
//! Sluice's own parsers, so the test is an independent oracle. A zero date stops the dump with
//! an error naming the column and value instead of being stored as something else.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use mysql_async::prelude::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice_tests::{source, unique_name};

const CREATE: &str = "CREATE TABLE pq (
    id INT PRIMARY KEY, ti TINYINT, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, mi MEDIUMINT,
    d DECIMAL(20,6), dbig DECIMAL(50,10), f FLOAT, db DOUBLE, b BIT(10),
    dd DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(6), yr YEAR,
    s VARCHAR(50), bl BLOB, js JSON, en ENUM('x','y'))";

const ROWS: &str = "(1, -128, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615, -8388608,
      -99999999999999.999999, -1234567890123456789012345678901234567890.0123456789, 1.2345678, 2.2250738585072014e-308, 1023,
      '1000-01-01', '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01', '-838:59:59.999999', 1901,
      'é😀 \\' \\\\', 0x00FF10, '{\"a\": [1, 2]}', 'y'),
    (2, 127, 2147483647, 0, 9223372036854775807, 0, 8388607,
      0.000001, 0, -3.4028235e38, 1.7976931348623157e308, 0,
      '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '838:59:59', 2155,
      '', '', 'null', 'x'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)";

/// The server's own numbers for what each Parquet cell must hold, as text (NULL as None).
const ORACLE: &str = "SELECT id, ti, i, iu, bi, biu, mi, CAST(d * 1000000 AS DECIMAL(65,0)), dbig, CAST(f AS DOUBLE), db, b + 0,
    TO_DAYS(dd) - 719528, TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', dt), TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ts),
    CAST(TIME_TO_SEC(tm) * 1000000 AS SIGNED), yr, s, HEX(bl), js, en FROM pq ORDER BY id";

fn cell_text(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    use arrow_schema::DataType as T;
    Some(match array.data_type() {
        T::Int8 => array.as_primitive::<Int8Type>().value(row).to_string(),
        T::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
        T::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        T::UInt16 => array.as_primitive::<UInt16Type>().value(row).to_string(),
        T::UInt32 => array.as_primitive::<UInt32Type>().value(row).to_string(),
        T::UInt64 => array.as_primitive::<UInt64Type>().value(row).to_string(),
        T::Decimal128(..) => array
            .as_primitive::<Decimal128Type>()
            .value(row)
            .to_string(),
        T::Float32 => f64::from(array.as_primitive::<Float32Type>().value(row)).to_string(),
        T::Float64 => array.as_primitive::<Float64Type>().value(row).to_string(),
        T::Date32 => array.as_primitive::<Date32Type>().value(row).to_string(),
        T::Timestamp(..) => array
            .as_primitive::<TimestampMicrosecondType>()
            .value(row)
            .to_string(),
        T::Duration(..) => array
            .as_primitive::<DurationMicrosecondType>()
            .value(row)
            .to_string(),
        T::Utf8 => array.as_string::<i32>().value(row).to_owned(),
        T::Binary => array
            .as_binary::<i32>()
            .value(row)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect(),
        other => panic!("unexpected Arrow type {other}"),
    })
}

fn normalize_float(text: Option<String>) -> Option<String> {
    text.map(|t| t.parse::<f64>().map(|f| f.to_string()).unwrap_or(t))
}

#[tokio::test]
async fn parquet_holds_every_value_exactly_in_its_mapped_type() {
    let db = unique_name("parquet");
    let mut conn = source().conn().await;
    conn.query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .unwrap();
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    conn.query_drop(CREATE).await.unwrap();
    conn.query_drop(format!("INSERT INTO pq VALUES {ROWS}"))
        .await
        .unwrap();

    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args(["dump", "--source", &source().url(), "--output"])
        .arg(out.path())
        .args([
            "--filter",
            &format!("{db}.*"),
            "--format",
            "parquet",
            "--compress",
            "zstd",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let file = std::fs::File::open(out.path().join(format!("{db}.pq.000000000.parquet"))).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3);
    let batch = &batches[0];
    let expected: Vec<mysql_async::Row> = conn.query(ORACLE).await.unwrap();
    for (r, want) in expected.iter().enumerate() {
        for c in 0..batch.num_columns() {
            let want_text: Option<String> = want.get::<Option<String>, _>(c).unwrap();
            let got = cell_text(batch.column(c).as_ref(), r);
            let name = batch.schema().field(c).name().clone();
            let (got, want_text) = if name == "f" || name == "db" {
                (normalize_float(got), normalize_float(want_text))
            } else {
                (got, want_text)
            };
            assert_eq!(got, want_text, "row {r}, column {name}");
        }
    }
}

#[tokio::test]
async fn parquet_refuses_a_zero_date_naming_the_column() {
    let db = unique_name("parquet_zero");
    let mut conn = source().conn().await;
    conn.query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .unwrap();
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.z (id INT PRIMARY KEY, dd DATE)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!(
        "INSERT INTO `{db}`.z VALUES (1, '2024-01-01'), (2, '0000-00-00')"
    ))
    .await
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args(["dump", "--source", &source().url(), "--output"])
        .arg(out.path())
        .args(["--filter", &format!("{db}.*"), "--format", "parquet"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("column dd") && err.contains("0000-00-00"),
        "{err}"
    );
    assert!(!out.path().join("metadata.json").exists());
    assert!(std::fs::read_dir(out.path()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".parquet")
    }));
}
