//! `sluice stream` against real servers: after a dump and an import, a mixed workload (every
//! column type, primary-key changes, unique keys, a table without a key, rows over 16 MB, DDL
//! mid-stream, multi-table transactions) ends with the target equal to the source; `--until`
//! stops exactly; `--from-gtid` starts exactly; bad inputs are refused with the fix named.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use mysql_async::prelude::*;
use sluice_tests::stream::{Background, binlog_end, wait_for_checkpoint};
use sluice_tests::tools::{all_rows, checksum_table};
use sluice_tests::types_table::seed_types_table;
use sluice_tests::{MariaDb, Role, source, target, unique_name};

fn sluice(args: &[&str]) -> Output {
    sluice_tests::run_cli(env!("CARGO_BIN_EXE_sluice-under-test"), args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn assert_same(db: &str, tables: &[(&str, &str)]) {
    let mut s = source().conn().await;
    let mut t = target().conn().await;
    for (table, order) in tables {
        let name = format!("`{db}`.`{table}`");
        let (a, b) = (
            all_rows(&mut s, &name, order).await,
            all_rows(&mut t, &name, order).await,
        );
        assert_eq!(a.len(), b.len(), "{name}: row counts differ");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x, y, "{name}: row {i} differs");
        }
        assert_eq!(
            checksum_table(&mut s, &name).await,
            checksum_table(&mut t, &name).await,
            "{name}: CHECKSUM TABLE differs"
        );
    }
}

fn dump_and_import(db: &str, dir: &Path) {
    let src = source().url();
    let filter = format!("{db}.*");
    let o = sluice(&[
        "dump",
        "--source",
        &src,
        "--output",
        dir.to_str().unwrap(),
        "--filter",
        &filter,
        "--threads",
        "2",
    ]);
    assert!(o.status.success(), "dump: {}", stderr(&o));
    let tgt = target().url();
    let o = sluice(&["import", "--input", dir.to_str().unwrap(), "--target", &tgt]);
    assert!(o.status.success(), "import: {}", stderr(&o));
}

const TYPE_COLUMNS: &str = "ti, tiu, si, mi, miu, i, iu, bi, biu, dec1, dec2, f, d, bit1, bit9, bit64, dt, dt0, ts, dd, tm, yr, \
                            c, vc, tx, ltx, bn, vb, bl, en, st, js, lat, geo";

#[tokio::test]
async fn a_mixed_workload_after_dump_and_import_ends_equal() {
    let db = seed_types_table("stream_mixed").await;
    let mut s = source().conn().await;
    s.query_drop(format!(
        "USE `{db}`;
         CREATE TABLE k (id INT PRIMARY KEY, u INT UNIQUE, v VARCHAR(50));
         CREATE TABLE nopk (a INT, b VARCHAR(10));
         CREATE TABLE big (id INT PRIMARY KEY, b LONGBLOB);
         INSERT INTO k VALUES (1, 1, 'one'), (2, 2, 'two');
         INSERT INTO nopk VALUES (1, 'x'), (1, 'x'), (2, NULL);"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    dump_and_import(&db, dir.path());

    let filter = format!("{db}.*");
    let (src, tgt) = (source().url(), target().url());
    let stream = Background::start(
        env!("CARGO_BIN_EXE_sluice-under-test"),
        &[
            "--source",
            &src,
            "--target",
            &tgt,
            "--from-dump",
            dir.path().to_str().unwrap(),
            "--filter",
            &filter,
            "--workers",
            "2",
            "--task",
            &db,
        ],
    );

    // Every column type through row events: copies of the seeded rows, then updates of each.
    s.query_drop(format!(
        "INSERT INTO t (id, {TYPE_COLUMNS}) SELECT id + 10, {TYPE_COLUMNS} FROM t"
    ))
    .await
    .unwrap();
    s.query_drop(
        "UPDATE t SET ti = -1, tiu = 254, mi = -8388607, miu = 1, iu = 4294967294, biu = 18446744073709551614, \
         f = -3.5, d = 1e-300, yr = 0, ts = '2001-02-03 04:05:06.5', vc = 'é😀', bl = 0x00, bit64 = 1 WHERE id = 12",
    )
    .await
    .unwrap();
    // A primary-key change, a delete, keys swapped through a third value, a keyless table.
    s.query_drop(
        "UPDATE t SET id = 100 WHERE id = 11;
         DELETE FROM t WHERE id = 13;
         BEGIN; UPDATE k SET u = 3 WHERE id = 1; UPDATE k SET u = 1 WHERE id = 2; UPDATE k SET u = 2 WHERE id = 1; COMMIT;
         INSERT INTO nopk VALUES (3, 'y');
         UPDATE nopk SET b = 'z' WHERE a = 1 LIMIT 1;
         DELETE FROM nopk WHERE a = 2;",
    )
    .await
    .unwrap();
    for i in 3..200 {
        s.query_drop(format!("INSERT INTO k VALUES ({i}, {i}, 'row {i}')"))
            .await
            .unwrap();
    }
    s.query_drop(
        "BEGIN;
         INSERT INTO k VALUES (500, 500, 'multi');
         UPDATE t SET vc = 'multi-table' WHERE id = 14;
         DELETE FROM nopk WHERE a = 3;
         DELETE FROM k WHERE id BETWEEN 10 AND 20;
         COMMIT;",
    )
    .await
    .unwrap();
    // DDL mid-stream: later row events must decode against the new columns.
    s.query_drop(
        "ALTER TABLE k ADD COLUMN extra INT NOT NULL DEFAULT 7;
         INSERT INTO k VALUES (600, 600, 'with extra', 8);
         UPDATE k SET extra = 9 WHERE id < 5;
         ALTER TABLE k DROP COLUMN v;
         INSERT INTO k VALUES (601, 601, 10);
         CREATE TABLE later (id BIGINT UNSIGNED PRIMARY KEY, note TEXT);
         INSERT INTO later VALUES (18446744073709551615, 'max'), (1, 'one');
         RENAME TABLE later TO renamed;
         UPDATE renamed SET note = 'after rename' WHERE id = 1;
         CREATE TABLE doomed (id INT PRIMARY KEY);
         INSERT INTO doomed VALUES (1);
         DROP TABLE doomed;
         TRUNCATE TABLE nopk;
         INSERT INTO nopk VALUES (9, 'after truncate');",
    )
    .await
    .unwrap();
    // Rows over 16 MB, in an insert and in an update (before and after images).
    s.query_drop(
        "INSERT INTO big VALUES (1, REPEAT('x', 17 * 1024 * 1024)), (2, 'small');
         UPDATE big SET b = CONCAT(b, 'y') WHERE id = 1;",
    )
    .await
    .unwrap();

    let end = binlog_end(&mut s).await;
    wait_for_checkpoint(target(), &db, &end, Duration::from_secs(120), || {
        format!("the stream said:\n{}", stream.log())
    })
    .await;
    // A new binlog file and no transaction after it: the file's FORMAT_DESCRIPTION, GTID_LIST
    // and BINLOG_CHECKPOINT are the source's last events, and the checkpoint must pass them
    // (it once stayed behind them for good on an idle source).
    s.query_drop("FLUSH BINARY LOGS").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let end = binlog_end(&mut s).await;
    wait_for_checkpoint(target(), &db, &end, Duration::from_secs(30), || {
        format!("the stream said:\n{}", stream.log())
    })
    .await;
    let (status, log) = stream.stop();
    assert!(status.success(), "stream: {log}");
    assert_same(
        &db,
        &[
            ("t", "id"),
            ("k", "id"),
            ("nopk", "a, b"),
            ("big", "id"),
            ("renamed", "id"),
        ],
    )
    .await;
    let mut t = target().conn().await;
    let gone: Option<String> = t
        .query_first(format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME IN ('doomed', 'later')"
        ))
        .await
        .unwrap();
    assert_eq!(
        gone, None,
        "dropped and renamed tables are gone on the target"
    );
}

/// Creates `db.n (id INT PRIMARY KEY, v INT)` on both servers; returns the source's binlog end.
async fn fresh_table_on_both(db: &str) -> (String, u64) {
    let ddl = format!("CREATE DATABASE `{db}`; CREATE TABLE `{db}`.n (id INT PRIMARY KEY, v INT);");
    let mut t = target().conn().await;
    t.query_drop(&ddl).await.unwrap();
    let mut s = source().conn().await;
    s.query_drop(&ddl).await.unwrap();
    binlog_end(&mut s).await
}

async fn ids(db: &str) -> Vec<i32> {
    let mut t = target().conn().await;
    t.query(format!("SELECT id FROM `{db}`.n ORDER BY id"))
        .await
        .unwrap()
}

#[tokio::test]
async fn until_stops_exactly_and_from_gtid_starts_exactly() {
    let db = unique_name("stream_until");
    let start = fresh_table_on_both(&db).await;
    let mut s = source().conn().await;
    let mut ends = Vec::new();
    let mut gtids = Vec::new();
    for i in 1..=8 {
        s.query_drop(format!("INSERT INTO `{db}`.n VALUES ({i}, {i})"))
            .await
            .unwrap();
        ends.push(binlog_end(&mut s).await);
        let g: String = s.query_first("SELECT @@last_gtid").await.unwrap().unwrap();
        gtids.push(g);
    }
    let (src, tgt) = (source().url(), target().url());
    let filter = format!("{db}.*");
    // From the end of transaction 2 until the end of transaction 6: rows 3..=6 exactly.
    let from = format!("{}:{}", ends[1].0, ends[1].1);
    let until = format!("{}:{}", ends[5].0, ends[5].1);
    let task = format!("{db}_a");
    let o = sluice(&[
        "stream",
        "--source",
        &src,
        "--target",
        &tgt,
        "--from",
        &from,
        "--until",
        &until,
        "--filter",
        &filter,
        "--task",
        &task,
        "--json",
        "--no-compact",
    ]);
    assert!(o.status.success(), "stream --until: {}", stderr(&o));
    assert_eq!(ids(&db).await, [3, 4, 5, 6]);
    let summary: serde_json::Value =
        serde_json::from_slice(o.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(summary["ended"], "until");
    assert_eq!(summary["position"], until.as_str(), "{summary}");
    let _ = start;

    // From the GTID of transaction 6 until the GTID of transaction 8: rows 7 and 8.
    let task = format!("{db}_b");
    let o = sluice(&[
        "stream",
        "--source",
        &src,
        "--target",
        &tgt,
        "--from-gtid",
        &gtids[5],
        "--until",
        &gtids[7],
        "--filter",
        &filter,
        "--task",
        &task,
    ]);
    assert!(o.status.success(), "stream --from-gtid: {}", stderr(&o));
    assert_eq!(ids(&db).await, [3, 4, 5, 6, 7, 8]);

    // The same command again continues from its checkpoint: nothing is applied twice.
    let o = sluice(&[
        "stream",
        "--source",
        &src,
        "--target",
        &tgt,
        "--from-gtid",
        &gtids[5],
        "--until",
        &gtids[7],
        "--filter",
        &filter,
        "--task",
        &task,
    ]);
    assert!(o.status.success(), "rerun: {}", stderr(&o));
    assert_eq!(ids(&db).await, [3, 4, 5, 6, 7, 8]);
}

#[tokio::test]
async fn bad_inputs_are_refused_with_the_fix_named() {
    let (src, tgt) = (source().url(), target().url());
    // No start point and no checkpoint.
    let o = sluice(&[
        "stream",
        "--source",
        &src,
        "--target",
        &tgt,
        "--task",
        "never_ran",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("has no checkpoint"), "{}", stderr(&o));
    // A binlog file the source does not have (purged): the oldest one is named.
    let o = sluice(&[
        "stream",
        "--source",
        &src,
        "--target",
        &tgt,
        "--from",
        "mysql-bin.000000:4",
        "--task",
        "purged",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("oldest binlog there is mysql-bin."),
        "{}",
        stderr(&o)
    );
    // A MySQL GTID set for a MariaDB source.
    let o = sluice(&[
        "stream",
        "--source",
        &src,
        "--target",
        &tgt,
        "--from-gtid",
        "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5",
        "--task",
        "wrong_flavor",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a MySQL (uuid:interval) GTID set, but the source is MariaDB"),
        "{}",
        stderr(&o)
    );
    // A row event for a table the target lacks: named with its position.
    let db = unique_name("stream_missing");
    let mut s = source().conn().await;
    s.query_drop(format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.m (id INT PRIMARY KEY)"
    ))
    .await
    .unwrap();
    let from = binlog_end(&mut s).await;
    s.query_drop(format!("INSERT INTO `{db}`.m VALUES (1)"))
        .await
        .unwrap();
    let until = binlog_end(&mut s).await;
    let filter = format!("{db}.*");
    let (from, until) = (
        format!("{}:{}", from.0, from.1),
        format!("{}:{}", until.0, until.1),
    );
    let o = sluice(&[
        "stream", "--source", &src, "--target", &tgt, "--from", &from, "--until", &until,
        "--filter", &filter, "--task", &db,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{db}.m at mysql-bin."))
            && stderr(&o).contains("no such table"),
        "{}",
        stderr(&o)
    );
    // A DDL the target rejects stops with the statement; --skip-ddl-errors goes on.
    let db = unique_name("stream_ddl");
    let mut t = target().conn().await;
    t.query_drop(format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.x (id INT PRIMARY KEY)"
    ))
    .await
    .unwrap();
    let from = binlog_end(&mut s).await;
    s.query_drop(format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.x (id INT PRIMARY KEY); INSERT INTO `{db}`.x VALUES (5)"
    ))
    .await
    .unwrap();
    let until = binlog_end(&mut s).await;
    let filter = format!("{db}.*");
    let (from, until) = (
        format!("{}:{}", from.0, from.1),
        format!("{}:{}", until.0, until.1),
    );
    let args = [
        "stream", "--source", &src, "--target", &tgt, "--from", &from, "--until", &until,
        "--filter", &filter, "--task", &db,
    ];
    let o = sluice(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("target rejected the DDL") && stderr(&o).contains("CREATE DATABASE"),
        "{}",
        stderr(&o)
    );
    let mut skipping = args.to_vec();
    skipping.push("--skip-ddl-errors");
    let o = sluice(&skipping);
    assert!(o.status.success(), "{}", stderr(&o));
    let n: Option<i32> = t
        .query_first(format!("SELECT id FROM `{db}`.x"))
        .await
        .unwrap();
    assert_eq!(n, Some(5));
}

#[tokio::test]
async fn a_source_that_is_not_row_full_is_refused_naming_the_variables() {
    let server = MariaDb::start_with(
        Role::Source,
        "binlog_format=STATEMENT\nbinlog_row_image=MINIMAL",
    );
    let tgt = target().url();
    let o = sluice(&[
        "stream",
        "--source",
        &server.url(),
        "--target",
        &tgt,
        "--from",
        "mysql-bin.000001:4",
        "--task",
        "statement_source",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("binlog_format is STATEMENT") && e.contains("SET GLOBAL binlog_format = 'ROW'"),
        "{e}"
    );
    assert!(e.contains("binlog_row_image is MINIMAL"), "{e}");
}
