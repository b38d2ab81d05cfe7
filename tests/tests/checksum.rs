//! `sluice checksum` against real servers: equal data is equal, every kind of difference is
//! found and located exactly, the fix SQL repairs the target, and the source is never written.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::{Command, Output};

use mysql_async::prelude::*;
use sluice_tests::tools::mariadb_client;
use sluice_tests::{MariaDb, Role, source, target, unique_name};

fn checksum(src: &MariaDb, dst: &MariaDb, db: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args([
            "checksum",
            "--source",
            &src.url(),
            "--target",
            &dst.url(),
            "--filter",
            &format!("{db}.*"),
        ])
        .args([
            "--chunk-rows",
            "50000",
            "--threads",
            "2",
            "--recheck-delay",
            "0.1",
            "--rechecks",
            "1",
            "--json",
        ])
        .args(extra)
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap()
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The same statements on both servers give them identical data.
fn seed_both(servers: &[&MariaDb], db: &str, big_rows: u64) {
    let sql = format!(
        "CREATE DATABASE `{db}`; USE `{db}`;
         CREATE TABLE big (id INT PRIMARY KEY, a VARCHAR(40), b BIGINT);
         INSERT INTO big SELECT seq, MD5(seq), seq * 7 FROM seq_1_to_{big_rows};
         CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(20), n VARCHAR(20) NULL, f FLOAT, d DOUBLE, bl BLOB, ts TIMESTAMP(3) NULL);
         INSERT INTO t VALUES
           (1, 'abc', 'x', 1.5, 0.1234567890123456, 0x000102, '2024-01-01 00:00:00.123'),
           (2, 'two', NULL, 2.5, 2.5, NULL, NULL),
           (3, 'three', NULL, 1.2345678, 1e-300, 0xFF, '2038-01-19 03:14:07'),
           (4, 'four', '', -0.5, -2.5, '', '1970-01-01 00:00:01');
         CREATE TABLE nokey (x INT, y VARCHAR(10));
         INSERT INTO nokey VALUES (1, 'a'), (1, 'a'), (2, NULL);"
    );
    for s in servers {
        mariadb_client(s, None, sql.as_bytes());
    }
}

/// The binlog file, position and GTID position of a server.
async fn binlog_state(conn: &mut mysql_async::Conn) -> (String, u64, String) {
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .unwrap()
        .unwrap();
    let gtid: String = conn
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    (
        row.get::<String, _>(0).unwrap(),
        row.get::<u64, _>(1).unwrap(),
        gtid,
    )
}

#[tokio::test]
async fn equal_databases_exit_0_and_the_source_is_never_written() {
    // A private source: nothing else writes to it, so its binlog must not move at all.
    let src = MariaDb::start(Role::Source);
    let db = unique_name("checksum_equal");
    seed_both(&[&src, target()], &db, 20_000);
    let mut conn = src.conn().await;
    conn.query_drop(format!(
        "CREATE USER 'reader'@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON `{db}`.* TO 'reader'@'%'"
    ))
    .await
    .unwrap();
    let before = binlog_state(&mut conn).await;
    // A user with SELECT on the database only.
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args([
            "checksum",
            "--source",
            &format!("mysql://reader:pw@127.0.0.1:{}", src.port),
            "--target",
            &target().url(),
        ])
        .args([
            "--filter",
            &format!("{db}.*"),
            "--chunk-rows",
            "3000",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    assert_eq!(r["rows"], 20_000 + 4 + 3);
    assert!(
        r["chunks"].as_u64().unwrap() >= 7,
        "big should split into chunks: {r}"
    );
    assert_eq!(
        binlog_state(&mut conn).await,
        before,
        "the checker moved the source's binlog"
    );
}

#[tokio::test]
async fn every_kind_of_difference_is_found_located_and_fixed() {
    let db = unique_name("checksum_diff");
    seed_both(&[source(), target()], &db, 1_000_000);
    // A composite key of an integer and a string: bisection splits on tuples.
    let composite = format!(
        "USE `{db}`;
         CREATE TABLE pairs (a INT, b VARCHAR(10), v INT, PRIMARY KEY (a, b));
         INSERT INTO pairs SELECT seq DIV 4, CONCAT('k', seq MOD 4), seq FROM seq_1_to_8000;"
    );
    for s in [source(), target()] {
        mariadb_client(s, None, composite.as_bytes());
    }
    let breakage = format!(
        "USE `{db}`;
         UPDATE pairs SET v = 0 WHERE a = 1200 AND b = 'k2';
         DELETE FROM pairs WHERE a = 1999 AND b = 'k0';
         UPDATE big SET b = b + 1 WHERE id = 654321;
         DELETE FROM t WHERE id = 2;
         INSERT INTO t VALUES (100, 'extra', NULL, 0, 0, NULL, NULL);
         UPDATE t SET n = '' WHERE id = 3;
         UPDATE t SET d = 0.1234567890123457 WHERE id = 1;
         UPDATE t SET s = 'four ' WHERE id = 4;
         UPDATE t SET bl = 0xFE WHERE id = 3;
         DELETE FROM nokey WHERE x = 1 LIMIT 1;
         INSERT INTO nokey VALUES (3, 'new');"
    );
    mariadb_client(target(), None, breakage.as_bytes());
    let fix = tempfile::NamedTempFile::new().unwrap();
    let out = checksum(
        source(),
        target(),
        &db,
        &["--fix-sql", fix.path().to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    let table = |name: &str| {
        r["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == format!("{db}.{name}"))
            .unwrap()
            .clone()
    };
    let diffs = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = table(name)["differences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let cols = d
                    .get("columns")
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default();
                format!(
                    "{} {}{cols}",
                    d["key"].as_str().unwrap(),
                    d["kind"].as_str().unwrap()
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(diffs("big"), ["id=654321 changed [\"b\"]"]);
    assert_eq!(
        diffs("t"),
        [
            "id=1 changed [\"d\"]",
            "id=100 extra_on_target",
            "id=2 missing_on_target",
            "id=3 changed [\"n\",\"bl\"]",
            "id=4 changed [\"s\"]",
        ]
    );
    assert_eq!(
        diffs("pairs"),
        [
            "a=1200, b=k2 changed [\"v\"]",
            "a=1999, b=k0 missing_on_target"
        ]
    );
    let listed = table("pairs")["rows_listed"].as_u64().unwrap();
    assert!(
        listed <= 2048,
        "pairs: {listed} rows listed for two differences"
    );
    assert_eq!(
        diffs("nokey"),
        ["x=1, y=a missing_on_target", "x=3, y=new extra_on_target"]
    );
    assert_eq!(
        table("big")["mismatched_chunks"].as_array().unwrap().len(),
        1,
        "one chunk of the big table differs"
    );
    // The 50,000-row chunk was bisected: only a leaf range's rows were listed (≤ 512 per side).
    let listed = table("big")["rows_listed"].as_u64().unwrap();
    assert!(
        (1..=1024).contains(&listed),
        "the mismatching chunk should be narrowed before its rows are listed: {listed} listed"
    );

    let sql = std::fs::read(fix.path()).unwrap();
    mariadb_client(target(), None, &sql);
    let again = checksum(source(), target(), &db, &[]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "after the fix: {}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[tokio::test]
async fn apply_fix_repairs_and_a_missing_table_is_reported() {
    let db = unique_name("checksum_apply");
    seed_both(&[source(), target()], &db, 1000);
    mariadb_client(
        target(),
        None,
        format!("USE `{db}`; UPDATE t SET f = 1.2345679 WHERE id = 3; DROP TABLE nokey;")
            .as_bytes(),
    );
    let out = checksum(source(), target(), &db, &["--apply-fix"]);
    assert_eq!(out.status.code(), Some(1));
    let r = report(&out);
    assert_eq!(r["fix_applied"], true);
    let nokey = r["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == format!("{db}.nokey"))
        .unwrap();
    assert_eq!(nokey["missing_on_target"], true);
    mariadb_client(target(), None, format!("USE `{db}`; CREATE TABLE nokey (x INT, y VARCHAR(10)); INSERT INTO nokey VALUES (1, 'a'), (1, 'a'), (2, NULL);").as_bytes());
    assert_eq!(
        checksum(source(), target(), &db, &[]).status.code(),
        Some(0)
    );
}

#[tokio::test]
async fn unreachable_target_and_empty_filter_are_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args([
            "checksum",
            "--source",
            &source().url(),
            "--target",
            "mysql://root@127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = checksum(source(), target(), "no_such_database_anywhere", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("matches no table"));
}

/// The same text in a latin1 column and a utf8mb4 column is equal; a `#` moved across the
/// column boundary is not.
#[tokio::test]
async fn charsets_compare_by_text_and_separators_cannot_hide_a_change() {
    let db = unique_name("checksum_charset");
    let create = |charset: &str| {
        format!(
            "CREATE DATABASE `{db}`; USE `{db}`; CREATE TABLE c (id INT PRIMARY KEY, a VARCHAR(20) CHARACTER SET {charset}, b VARCHAR(20));
             INSERT INTO c VALUES (1, 'café', 'x'), (2, 'x#', 'y');
             CREATE TABLE bin (id INT PRIMARY KEY, a VARBINARY(10), b VARBINARY(10));
             INSERT INTO bin VALUES (1, 0x41FF, 0x42);
             CREATE TABLE l1 (id INT PRIMARY KEY, a VARCHAR(10), b VARCHAR(10)) DEFAULT CHARSET latin1;
             INSERT INTO l1 VALUES (1, 'aÿ', 'b');"
        )
    };
    mariadb_client(source(), None, create("latin1").as_bytes());
    mariadb_client(target(), None, create("utf8mb4").as_bytes());
    let out = checksum(source(), target(), &db, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    mariadb_client(
        target(),
        None,
        format!(
            "USE `{db}`; UPDATE c SET a = 'x', b = '#y' WHERE id = 2;
             UPDATE bin SET a = 0x41, b = 0xFF42; UPDATE l1 SET a = 'a', b = 'ÿb';"
        )
        .as_bytes(),
    );
    let out = checksum(source(), target(), &db, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A byte moved across a column boundary (the separator byte 0xFF in binary and latin1
    // values, '#' in text) is a change in every table.
    let r = report(&out);
    for t in r["tables"].as_array().unwrap() {
        assert_eq!(
            t["differences"].as_array().unwrap().len(),
            1,
            "{}: {t}",
            t["table"]
        );
    }
}
