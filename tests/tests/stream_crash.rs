//! `sluice stream` survives what production throws at it: killed with SIGKILL at 20 random
//! moments of a running workload (two appliers, so the safe-mode window is exercised) and
//! restarted each time, it ends with the target equal to the source; a source server that is
//! stopped and started again mid-stream is reconnected to without loss.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::Command;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use sluice_tests::stream::{Background, binlog_end, wait_for_checkpoint};
use sluice_tests::tools::{all_rows, checksum_table};
use sluice_tests::{MariaDb, Role, source, target, unique_name};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice-under-test");

/// A small deterministic generator: the same moments and changes on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

const TABLES: &str =
    "CREATE TABLE a (id INT PRIMARY KEY, v INT NOT NULL, u INT UNIQUE, note VARCHAR(40));
                      CREATE TABLE b (id BIGINT UNSIGNED PRIMARY KEY, m MEDIUMINT, w VARCHAR(20));";

async fn create_on(server: &MariaDb, db: &str) {
    let mut c = server.conn().await;
    c.query_drop(format!("CREATE DATABASE `{db}`; USE `{db}`; {TABLES}"))
        .await
        .unwrap();
}

/// Random multi-statement transactions on `a` and `b` for `seconds`.
async fn workload(server_url: String, db: String, seconds: u64, seed: u64) -> u64 {
    let endpoint: sluice_core::Endpoint = server_url.parse().unwrap();
    let mut c = endpoint.connect().await.unwrap();
    c.query_drop(format!("USE `{db}`")).await.unwrap();
    let mut r = Lcg(seed);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let id = r.next(300);
        let sql = match r.next(6) {
            0 | 1 => format!(
                "BEGIN; REPLACE INTO a VALUES ({id}, {}, NULL, 'n{id}'); INSERT INTO b VALUES ({}, {}, 'w') \
                 ON DUPLICATE KEY UPDATE m = m - 1; COMMIT",
                r.next(1000),
                r.next(300),
                r.next(16_000_000) as i64 - 8_000_000
            ),
            2 => format!(
                "UPDATE a SET v = v + 1, note = CONCAT('u', v) WHERE id BETWEEN {id} AND {}",
                id + 5
            ),
            3 => format!(
                "BEGIN; DELETE FROM a WHERE id = {id}; DELETE FROM b WHERE id = {id}; COMMIT"
            ),
            4 => format!("UPDATE a SET u = {} WHERE id = {id}", r.next(100_000)),
            _ => format!(
                "UPDATE IGNORE a SET id = {} WHERE id = {id}",
                300 + r.next(300)
            ),
        };
        // A unique-key collision of the random workload is fine: that transaction fails.
        if c.query_drop(&sql).await.is_err() {
            let _ = c.query_drop("ROLLBACK").await;
        }
        n += 1;
    }
    n
}

async fn assert_same(src: &MariaDb, db: &str) {
    let mut s = src.conn().await;
    let mut t = target().conn().await;
    for table in ["a", "b"] {
        let name = format!("`{db}`.`{table}`");
        let (x, y) = (
            all_rows(&mut s, &name, "id").await,
            all_rows(&mut t, &name, "id").await,
        );
        assert_eq!(x.len(), y.len(), "{name}: row counts differ");
        assert!(x == y, "{name}: rows differ");
        assert_eq!(
            checksum_table(&mut s, &name).await,
            checksum_table(&mut t, &name).await,
            "{name}: CHECKSUM TABLE differs"
        );
    }
}

#[tokio::test]
async fn killed_at_twenty_random_moments_and_restarted_the_target_ends_equal() {
    let db = unique_name("stream_kill");
    create_on(source(), &db).await;
    create_on(target(), &db).await;
    let mut s = source().conn().await;
    let start = binlog_end(&mut s).await;
    let from = format!("{}:{}", start.0, start.1);
    let (src, tgt) = (source().url(), target().url());
    let filter = format!("{db}.*");
    let args = [
        "--source",
        &src,
        "--target",
        &tgt,
        "--from",
        &from,
        "--filter",
        &filter,
        "--workers",
        "2",
        "--task",
        &db,
    ];
    let load = tokio::spawn(workload(source().url(), db.clone(), 14, 7));
    let mut r = Lcg(42);
    for _ in 0..20 {
        let mut stream = Background::start(SLUICE, &args);
        tokio::time::sleep(Duration::from_millis(150 + r.next(550))).await;
        if let Ok(Some(status)) = stream.child.try_wait() {
            panic!("the stream ended by itself ({status}): {}", stream.log());
        }
        stream.kill();
    }
    let transactions = load.await.unwrap();
    assert!(
        transactions > 100,
        "the workload ran ({transactions} statements)"
    );
    let end = binlog_end(&mut s).await;
    let until = format!("{}:{}", end.0, end.1);
    let mut last: Vec<&str> = args.to_vec();
    last.extend(["--until", &until]);
    let out = Command::new(SLUICE)
        .arg("stream")
        .args(&last)
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "final run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same(source(), &db).await;
}

#[tokio::test]
async fn a_source_restart_mid_stream_is_reconnected_without_loss() {
    let mut own = MariaDb::start(Role::Source);
    let db = unique_name("stream_restart");
    create_on(&own, &db).await;
    create_on(target(), &db).await;
    let mut s = own.conn().await;
    let start = binlog_end(&mut s).await;
    drop(s);
    let from = format!("{}:{}", start.0, start.1);
    let (src, tgt) = (own.url(), target().url());
    let filter = format!("{db}.*");
    let stream = Background::start(
        SLUICE,
        &[
            "--source", &src, "--target", &tgt, "--from", &from, "--filter", &filter, "--task", &db,
        ],
    );
    workload(own.url(), db.clone(), 2, 1).await;
    own.restart();
    workload(own.url(), db.clone(), 2, 2).await;
    let mut s = own.conn().await;
    let end = binlog_end(&mut s).await;
    assert_ne!(end.0, start.0, "the restart rotated the binlog");
    wait_for_checkpoint(target(), &db, &end, Duration::from_secs(60), || {
        format!(
            "after the source restart; the stream said:\n{}",
            stream.log()
        )
    })
    .await;
    let (status, log) = stream.stop();
    assert!(status.success(), "stream: {log}");
    assert_same(&own, &db).await;
}

/// Every transaction of the workload inserts five rows under one transaction number, four in
/// one table and one in another: a target that ever shows some but not all of them has applied
/// half a transaction.
async fn partial_transactions(db: &str) -> Vec<(i64, i64)> {
    let mut t = target().conn().await;
    t.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .unwrap();
    let bad: Vec<(i64, i64)> = t
        .query(format!(
            "SELECT tx, COUNT(*) FROM (SELECT tx FROM `{db}`.parts UNION ALL SELECT tx FROM `{db}`.other) x \
             GROUP BY tx HAVING COUNT(*) <> 5"
        ))
        .await
        .unwrap();
    t.query_drop("COMMIT").await.unwrap();
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_at_random_moments_never_leave_half_a_transaction_applied() {
    let db = unique_name("stream_signals");
    let ddl = format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.parts (tx INT, part INT, PRIMARY KEY (tx, part));
         CREATE TABLE `{db}`.other (tx INT PRIMARY KEY)"
    );
    target().conn().await.query_drop(&ddl).await.unwrap();
    let mut s = source().conn().await;
    s.query_drop(&ddl).await.unwrap();
    let start = binlog_end(&mut s).await;
    let from = format!("{}:{}", start.0, start.1);
    let writer = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut c = source().conn().await;
            let started = Instant::now();
            let mut tx = 0i64;
            while started.elapsed() < Duration::from_secs(6) {
                // Five statements in one transaction: the binlog carries five row events.
                let mut sql = String::from("BEGIN;");
                for part in 0..4 {
                    sql.push_str(&format!("INSERT INTO `{db}`.parts VALUES ({tx}, {part});"));
                }
                sql.push_str(&format!("INSERT INTO `{db}`.other VALUES ({tx});"));
                sql.push_str("COMMIT");
                c.query_drop(sql).await.unwrap();
                tx += 1;
            }
            tx
        })
    };
    let (src, tgt) = (source().url(), target().url());
    let filter = format!("{db}.*");
    let args = [
        "--source",
        &src,
        "--target",
        &tgt,
        "--from",
        &from,
        "--filter",
        &filter,
        "--task",
        &db,
        "--workers",
        "2",
    ];
    let mut r = Lcg(99);
    for round in 0..8 {
        let stream = Background::start(SLUICE, &args);
        let until = Instant::now() + Duration::from_millis(200 + r.next(600));
        while Instant::now() < until {
            let bad = partial_transactions(&db).await;
            assert!(
                bad.is_empty(),
                "round {round}: partial transactions on the target: {bad:?}"
            );
        }
        // SIGTERM and SIGINT alike stop at a transaction boundary with exit 0.
        let signal = if round % 2 == 0 { "-TERM" } else { "-INT" };
        let _ = Command::new("kill")
            .args([signal, &stream.child.id().to_string()])
            .status();
        let mut stream = stream;
        let status = stream.child.wait().unwrap();
        assert!(
            status.success(),
            "round {round} ({signal}): {}",
            stream.log()
        );
        assert!(partial_transactions(&db).await.is_empty());
    }
    let transactions = writer.await.unwrap();
    let end = binlog_end(&mut s).await;
    let until = format!("{}:{}", end.0, end.1);
    let mut last: Vec<&str> = args.to_vec();
    last.extend(["--until", &until]);
    let out = Command::new(SLUICE)
        .arg("stream")
        .args(&last)
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "final run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: i64 = target()
        .conn()
        .await
        .query_first(format!(
            "SELECT (SELECT COUNT(*) FROM `{db}`.parts) + (SELECT COUNT(*) FROM `{db}`.other)"
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows, transactions * 5);
}

/// A second SIGTERM while a huge upstream transaction is being applied: the target
/// transaction is rolled back (none of its rows), the process exits 0 at once, and the next
/// run applies the transaction whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_rolls_back_the_transaction_being_applied() {
    let db = unique_name("stream_force");
    let mut s = source().conn().await;
    s.query_drop(format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.big (id INT PRIMARY KEY, pad VARCHAR(120));"
    ))
    .await
    .unwrap();
    let start = binlog_end(&mut s).await;
    let mut t = target().conn().await;
    t.query_drop(format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.big (id INT PRIMARY KEY, pad VARCHAR(120));"
    ))
    .await
    .unwrap();
    let (src, tgt, filter) = (source().url(), target().url(), format!("{db}.*"));
    let from = format!("{}:{}", start.0, start.1);
    let args = [
        "--source", &src, "--target", &tgt, "--from", &from, "--filter", &filter, "--task", &db,
    ];
    let stream = Background::start(SLUICE, &args);
    // One upstream transaction of 600,000 rows.
    s.query_drop(format!(
        "INSERT INTO `{db}`.big SELECT seq, REPEAT('p', 100) FROM seq.seq_1_to_300000"
    ))
    .await
    .unwrap();
    let end = binlog_end(&mut s).await;
    // Wait until the applier is inside the target transaction: writing into the table (the
    // schema view's lookups of the same table must not count).
    let started = Instant::now();
    loop {
        let busy: Option<u64> = t
            .query_first(format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE \
                 LEFT(INFO, 300) LIKE '%INTO `{db}`.`big`%' AND COMMAND = 'Query' \
                 AND ID <> CONNECTION_ID() LIMIT 1"
            ))
            .await
            .unwrap();
        if busy.is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the big transaction was never applied: {}",
            stream.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = stream.child.id().to_string();
    for _ in 0..2 {
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped = Instant::now();
    let (status, log) = stream.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("rolled back"), "{log}");
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "the forced stop took {:?}",
        stopped.elapsed()
    );
    let rows: Option<u64> = t
        .query_first(format!("SELECT COUNT(*) FROM `{db}`.big"))
        .await
        .unwrap();
    assert_eq!(
        rows,
        Some(0),
        "part of a rolled-back transaction is visible"
    );
    // The next run applies it whole.
    let until = format!("{}:{}", end.0, end.1);
    let mut again: Vec<&str> = args.to_vec();
    again.extend_from_slice(&["--until", &until]);
    let o = Command::new(SLUICE)
        .arg("stream")
        .args(&again)
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Option<u64> = t
        .query_first(format!("SELECT COUNT(*) FROM `{db}`.big"))
        .await
        .unwrap();
    assert_eq!(rows, Some(300_000));
}
