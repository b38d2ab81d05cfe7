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
