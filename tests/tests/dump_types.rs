//! Every MySQL column type round-trips exactly through `sluice dump` in each format and
//! compression: dump from SOURCE, restore on TARGET, compare with CHECKSUM TABLE and row by row.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::path::Path;
use std::process::Command;

use sluice_tests::dumps::restore;
use sluice_tests::tools::{all_rows, checksum_table};
use sluice_tests::types_table::{ROWS, seed_types_table};
use sluice_tests::{source, target};

async fn seed() -> String {
    seed_types_table("types").await
}

fn dump(db: &str, out: &Path, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args(["dump", "--source", &source().url(), "--output"])
        .arg(out)
        .args(["--filter", &format!("{db}.*"), "--threads", "2"])
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success(), "sluice dump {extra:?} failed");
}

async fn assert_equal(db: &str) {
    let table = format!("`{db}`.t");
    let mut s = source().conn().await;
    let mut t = target().conn().await;
    let (src_rows, dst_rows) = (
        all_rows(&mut s, &table, "id").await,
        all_rows(&mut t, &table, "id").await,
    );
    assert_eq!(src_rows.len(), ROWS.len());
    for (a, b) in src_rows.iter().zip(&dst_rows) {
        assert_eq!(a, b, "row differs after the round trip");
    }
    assert_eq!(src_rows.len(), dst_rows.len());
    assert_eq!(
        checksum_table(&mut s, &table).await,
        checksum_table(&mut t, &table).await
    );
}

async fn round_trip(extra: &[&str]) {
    let db = seed().await;
    let out = tempfile::tempdir().unwrap();
    dump(&db, out.path(), extra);
    restore(target(), out.path()).await;
    assert_equal(&db).await;
}

#[tokio::test]
async fn sql_round_trips_every_type() {
    round_trip(&[]).await;
}

#[tokio::test]
async fn sql_gzip_round_trips_every_type() {
    round_trip(&["--compress", "gzip"]).await;
}

#[tokio::test]
async fn csv_round_trips_every_type() {
    round_trip(&["--format", "csv"]).await;
}

#[tokio::test]
async fn csv_zstd_with_header_and_tab_delimiter_round_trips_every_type() {
    round_trip(&[
        "--format",
        "csv",
        "--compress",
        "zstd",
        "--csv-header",
        "--csv-delimiter",
        "\\t",
        "--csv-null",
        "NULL",
    ])
    .await;
}

/// Tables read as `binary` results convert their latin1 cells in the client: every one of the
/// 256 latin1 bytes must come out as the server's own conversion to UTF-8 prints it, in an
/// ENUM label too, and a utf16 table (read with the server's conversion) stays exact.
#[tokio::test]
async fn latin1_cells_convert_as_the_server_converts_every_byte() {
    use mysql_async::prelude::Queryable;
    let db = sluice_tests::unique_name("dump_latin1");
    let mut s = source().conn().await;
    s.query_drop(format!(
        "CREATE DATABASE `{db}`; \
         CREATE TABLE `{db}`.l (id INT PRIMARY KEY, v VARCHAR(4), e ENUM('a', 'caf\u{e9} \u{20ac}') NOT NULL) CHARSET latin1; \
         INSERT INTO `{db}`.l SELECT seq, CONCAT('x', CHAR(seq USING latin1), 'y'), IF(seq % 2, 1, 2) FROM `{db}`.seq_0_to_255; \
         CREATE TABLE `{db}`.w (id INT PRIMARY KEY, v VARCHAR(10)) CHARSET utf16; \
         INSERT INTO `{db}`.w VALUES (1, 'd\u{e9}j\u{e0} \u{1F600}'), (2, 'plain');"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), &["--format", "csv"]);
    let expected: Vec<(i64, Vec<u8>, Vec<u8>)> = s
        .query(format!(
            "SELECT id, CONVERT(v USING utf8mb4), CONVERT(e USING utf8mb4) FROM `{db}`.l ORDER BY id"
        ))
        .await
        .unwrap();
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".l.000000000.csv"))
        .unwrap();
    let text = std::fs::read(&file).unwrap();
    let dialect = sluice_tests::dumps::read_metadata(dir.path()).csv.unwrap();
    let mut reader =
        sluice_core::layout::CsvRecordReader::new(&text[..], dialect, file.display().to_string());
    let mut got = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        let cell = |i: usize| r[i].clone().unwrap();
        got.push((
            std::str::from_utf8(&cell(0))
                .unwrap()
                .parse::<i64>()
                .unwrap(),
            cell(1),
            cell(2),
        ));
    }
    assert_eq!(got.len(), 256);
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(
            g,
            e,
            "latin1 byte {:#04x}: {:?} vs the server's {:?}",
            g.0,
            String::from_utf8_lossy(&g.1),
            String::from_utf8_lossy(&e.1)
        );
    }
    // Loaded back, both tables equal the source, byte for byte.
    restore(target(), dir.path()).await;
    let mut t = target().conn().await;
    for table in ["l", "w"] {
        let name = format!("`{db}`.{table}");
        assert_eq!(
            checksum_table(&mut t, &name).await,
            checksum_table(&mut s, &name).await,
            "{table}"
        );
    }
}
