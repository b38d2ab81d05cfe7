//! `sluice stream` from a MariaDB source that compresses its binlog (`log_bin_compress=ON`):
//! QUERY and rows events arrive as MariaDB's compressed types (165–171) and must apply exactly
//! as the plain ones do, every column type included.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::Command;

use mysql_async::prelude::*;
use sluice_tests::stream::binlog_end;
use sluice_tests::tools::{all_rows, checksum_table};
use sluice_tests::types_table::{CREATE, ROWS};
use sluice_tests::{MariaDb, Role, target, unique_name};

const COLUMNS: &str = "id, ti, tiu, si, mi, miu, i, iu, bi, biu, dec1, dec2, f, d, bit1, bit9, bit64, dt, dt0, \
                       ts, dd, tm, yr, c, vc, tx, ltx, bn, vb, bl, en, st, js, lat, geo";

#[tokio::test(flavor = "multi_thread")]
async fn a_compressed_binlog_streams_every_type_exactly() {
    let source = MariaDb::start_with(
        Role::Source,
        "log_bin_compress=ON\nlog_bin_compress_min_len=10",
    );
    let db = unique_name("stream_zbin");
    let mut s = source.conn().await;
    let start = binlog_end(&mut s).await;
    s.query_drop(format!("CREATE DATABASE `{db}`; USE `{db}`; {CREATE}"))
        .await
        .unwrap();
    for row in ROWS {
        s.query_drop(format!("INSERT INTO t ({COLUMNS}) VALUES {row}"))
            .await
            .unwrap();
    }
    s.query_drop(
        "UPDATE t SET vc = REPEAT('changed ', 20), mi = -mi, ltx = REPEAT('y', 5000) WHERE id <= 2; \
         UPDATE t SET id = 10 WHERE id = 5; DELETE FROM t WHERE id = 3; \
         ALTER TABLE t ADD COLUMN added VARCHAR(50) DEFAULT 'a default long enough to compress'; \
         INSERT INTO t (id, added) VALUES (20, REPEAT('z', 40))",
    )
    .await
    .unwrap();
    let end = binlog_end(&mut s).await;
    let compressed: u64 = {
        let events: Vec<mysql_async::Row> = s
            .query(format!("SHOW BINLOG EVENTS IN '{}'", end.0))
            .await
            .unwrap();
        events
            .iter()
            .filter(|e| {
                e.get::<String, _>("Event_type")
                    .is_some_and(|t| t.contains("compressed"))
            })
            .count() as u64
    };
    assert!(
        compressed >= 8,
        "the source wrote {compressed} compressed events"
    );
    let filter = format!("{db}.*");
    let o = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args([
            "stream",
            "--source",
            &source.url(),
            "--target",
            &target().url(),
            "--from",
            &format!("{}:{}", start.0, start.1),
            "--until",
            &format!("{}:{}", end.0, end.1),
            "--filter",
            &filter,
            "--task",
            &db,
        ])
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut t = target().conn().await;
    let table = format!("`{db}`.t");
    let (a, b) = (
        all_rows(&mut s, &table, "id").await,
        all_rows(&mut t, &table, "id").await,
    );
    assert_eq!(a.len(), 5);
    assert_eq!(a, b, "rows differ");
    assert_eq!(
        checksum_table(&mut s, &table).await,
        checksum_table(&mut t, &table).await
    );
}
