//! A running stream's control API: pause holds the target still at a transaction boundary,
//! resume catches up, stop ends with exit 0, and a token guards the mutating calls; a forced
//! pause rolls back the transaction being applied and resume applies it whole. And the
//! online checksum: at sync points of the running stream, ten checks under a write load find
//! no difference, and a change made directly on the target is found.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::Output;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use sluice_tests::stream::{Background, binlog_end, wait_for_checkpoint};
use sluice_tests::{source, target, unique_name};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice-under-test");

fn sluice(args: &[&str]) -> Output {
    sluice_tests::run_cli(SLUICE, args)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn count(db: &str) -> i64 {
    let mut t = target().conn().await;
    t.query_first(format!("SELECT COUNT(*) FROM `{db}`.n"))
        .await
        .unwrap()
        .unwrap()
}

/// Waits until the control API answers.
fn wait_for_api(url: &str, stream: &Background) {
    let started = Instant::now();
    while !sluice(&["status", "--control", url]).status.success() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the control API never answered; the stream said:\n{}",
            stream.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn pause_resume_and_stop_through_the_control_api() {
    let db = unique_name("stream_ctl");
    let ddl = format!("CREATE DATABASE `{db}`; CREATE TABLE `{db}`.n (id INT PRIMARY KEY)");
    target().conn().await.query_drop(&ddl).await.unwrap();
    let mut s = source().conn().await;
    s.query_drop(&ddl).await.unwrap();
    let from = binlog_end(&mut s).await;
    let from = format!("{}:{}", from.0, from.1);
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "s3cret\n").unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}");
    let filter = format!("{db}.*");
    let (src, tgt) = (source().url(), target().url());
    let stream = Background::start(
        SLUICE,
        &[
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
            "--control",
            &addr,
            "--control-token-file",
            token.path().to_str().unwrap(),
        ],
    );
    wait_for_api(&url, &stream);
    let tok = token.path().to_str().unwrap();

    for i in 0..50 {
        s.query_drop(format!("INSERT INTO `{db}`.n VALUES ({i})"))
            .await
            .unwrap();
    }
    let end = binlog_end(&mut s).await;
    wait_for_checkpoint(target(), &db, &end, Duration::from_secs(30), || {
        stream.log()
    })
    .await;

    // Without the token a mutating call is refused; reading the status needs none.
    let o = sluice(&["pause", "--control", &url]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = sluice(&["pause", "--control", &url, "--token-file", tok]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("paused_at"));
    for i in 50..100 {
        s.query_drop(format!("INSERT INTO `{db}`.n VALUES ({i})"))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(count(&db).await, 50, "a paused stream applied nothing more");
    let status = sluice(&["status", "--control", &url]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["state"], "paused", "{json}");

    let o = sluice(&["resume", "--control", &url, "--token-file", tok]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let end = binlog_end(&mut s).await;
    wait_for_checkpoint(target(), &db, &end, Duration::from_secs(30), || {
        stream.log()
    })
    .await;
    assert_eq!(count(&db).await, 100);

    let o = sluice(&["stop", "--control", &url, "--token-file", tok]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut stream = stream;
    let started = Instant::now();
    let status = loop {
        if let Some(st) = stream.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "stop did not end the stream"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{}", stream.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forced_pause_rolls_back_the_transaction_in_flight_and_resume_applies_it_whole() {
    let db = unique_name("stream_fpause");
    let ddl = format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.n (id INT PRIMARY KEY, pad VARCHAR(120))"
    );
    let mut t = target().conn().await;
    t.query_drop(&ddl).await.unwrap();
    let mut s = source().conn().await;
    s.query_drop(&ddl).await.unwrap();
    let from = binlog_end(&mut s).await;
    let from = format!("{}:{}", from.0, from.1);
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}");
    let (src, tgt, filter) = (source().url(), target().url(), format!("{db}.*"));
    let stream = Background::start(
        SLUICE,
        &[
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
            "--control",
            &addr,
        ],
    );
    wait_for_api(&url, &stream);
    // One upstream transaction of 300,000 rows, sent to the target as several requests.
    s.query_drop(format!(
        "INSERT INTO `{db}`.n SELECT seq, REPEAT('p', 100) FROM seq.seq_1_to_300000"
    ))
    .await
    .unwrap();
    let started = Instant::now();
    loop {
        let busy: Option<u64> = t
            .query_first(format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE \
                 LEFT(INFO, 300) LIKE '%INTO `{db}`.`n`%' AND COMMAND = 'Query' \
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
    let asked = Instant::now();
    let o = sluice(&["pause", "--force", "--control", &url]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "a forced pause took {:?}",
        asked.elapsed()
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("paused_at"));
    // Rolled back, and nothing applied while paused.
    for _ in 0..3 {
        assert_eq!(
            count(&db).await,
            0,
            "part of a rolled-back transaction is visible"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let status = sluice(&["status", "--control", &url]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["state"], "paused", "{json}");
    assert!(stream.log().contains("forced pause"), "{}", stream.log());

    let o = sluice(&["resume", "--control", &url]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let end = binlog_end(&mut s).await;
    wait_for_checkpoint(target(), &db, &end, Duration::from_secs(120), || {
        stream.log()
    })
    .await;
    assert_eq!(count(&db).await, 300_000);
    let (status, log) = stream.stop();
    assert!(status.success(), "{log}");
}

/// Updates and inserts on `a` (ids 1000 and up) until `seconds` pass.
async fn load(db: String, seconds: u64) -> u64 {
    let mut c = source().conn().await;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let id = 1000 + n % 3000;
        c.query_drop(format!(
            "BEGIN; REPLACE INTO `{db}`.a VALUES ({id}, {n}, REPEAT('p', {})); UPDATE `{db}`.a SET v = v + 1 WHERE id = {}; COMMIT",
            n % 50,
            1000 + (n * 7) % 3000
        ))
        .await
        .unwrap();
        n += 1;
    }
    n
}

// Multi-threaded: the writer must keep writing while the test blocks on each check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_checks_at_sync_points_see_no_difference_under_writes_and_find_a_real_one() {
    let db = unique_name("stream_online");
    let setup = format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.a (id INT PRIMARY KEY, v BIGINT, pad VARCHAR(60));
         INSERT INTO `{db}`.a SELECT seq, seq * 3, 'x' FROM `{db}`.seq_1_to_5000;"
    );
    target().conn().await.query_drop(&setup).await.unwrap();
    let mut s = source().conn().await;
    s.query_drop(&setup).await.unwrap();
    let from = binlog_end(&mut s).await;
    let from = format!("{}:{}", from.0, from.1);
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}");
    let filter = format!("{db}.*");
    let (src, tgt) = (source().url(), target().url());
    let stream = Background::start(
        SLUICE,
        &[
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
            "--control",
            &addr,
            "--workers",
            "2",
        ],
    );
    wait_for_api(&url, &stream);
    let writer = tokio::spawn(load(db.clone(), 600));

    let check = |extra: &[&str]| {
        let mut args = vec![
            "checksum",
            "--source",
            &src,
            "--target",
            &tgt,
            "--filter",
            &filter,
            "--sync-with",
            &url,
            "--chunk-rows",
            "700",
            "--threads",
            "2",
        ];
        args.extend_from_slice(extra);
        sluice(&args)
    };
    for round in 0..10 {
        let o = check(&[]);
        assert!(
            o.status.success(),
            "online check {round} under writes: {}{}\nstream: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            stream.log()
        );
    }
    let written: i64 = s
        .query_first(format!("SELECT COUNT(*) FROM `{db}`.a WHERE id >= 1000"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        written > 100,
        "the writer wrote during the checks ({written} rows)"
    );
    // A change made directly on the target, on a row the writer never touches, is real.
    target()
        .conn()
        .await
        .query_drop(format!("UPDATE `{db}`.a SET v = -1 WHERE id = 7"))
        .await
        .unwrap();
    let o = check(&[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("id=7: differs in v"), "{out}");
    writer.abort();
    let (status, log) = stream.stop();
    assert!(status.success(), "{log}");
}

#[tokio::test]
async fn the_source_switches_online_to_a_replica_and_refuses_a_server_without_the_position() {
    use sluice_tests::{MariaDb, Role};
    let primary = MariaDb::start(Role::Source);
    let replica = MariaDb::start_with(Role::Source, "server_id=3\nlog_slave_updates=ON");
    let stranger = MariaDb::start_with(Role::Source, "server_id=5");
    sluice_tests::tools::mariadb_client(
        &replica,
        None,
        format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', MASTER_PASSWORD='', \
             MASTER_USE_GTID=slave_pos; START SLAVE;",
            primary.port
        )
        .as_bytes(),
    );
    let db = unique_name("stream_switch");
    let ddl = format!("CREATE DATABASE `{db}`; CREATE TABLE `{db}`.n (id INT PRIMARY KEY)");
    target().conn().await.query_drop(&ddl).await.unwrap();
    let mut p = primary.conn().await;
    p.query_drop(&ddl).await.unwrap();
    let from = binlog_end(&mut p).await;
    let from = format!("{}:{}", from.0, from.1);
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}");
    let filter = format!("{db}.*");
    let (src, tgt) = (primary.url(), target().url());
    let stream = Background::start(
        SLUICE,
        &[
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
            "--control",
            &addr,
        ],
    );
    wait_for_api(&url, &stream);
    let primary_ref = &primary;
    let insert = |from: i32, to: i32| {
        let db = db.clone();
        async move {
            let mut c = primary_ref.conn().await;
            for i in from..to {
                c.query_drop(format!("INSERT INTO `{db}`.n VALUES ({i})"))
                    .await
                    .unwrap();
            }
        }
    };
    insert(0, 100).await;
    let wait_rows = |n: i64| {
        let db = db.clone();
        let stream = &stream;
        async move {
            let started = Instant::now();
            while count(&db).await < n {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "target stuck below {n} rows: {}",
                    stream.log()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_rows(100).await;

    // A server whose binlog lacks the stream's GTID position is refused, naming why.
    let o = sluice(&[
        "update-source",
        "--control",
        &url,
        "--source",
        &stranger.url(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("cannot continue from GTID") && e.contains("still reading from"),
        "{e}"
    );

    // The replica has the same transactions: the stream moves there without a restart.
    let o = sluice(&[
        "update-source",
        "--control",
        &url,
        "--source",
        &replica.url(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    insert(100, 200).await;
    wait_rows(200).await;
    // The stream now reads the replica: stopping the primary's binlog service changes nothing.
    let mut r = replica.conn().await;
    let processlist: Vec<(String,)> = r
        .query(
            "SELECT COMMAND FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
        )
        .await
        .unwrap();
    assert!(
        !processlist.is_empty(),
        "the stream is a replica of the replica now"
    );
    let (status, log) = stream.stop();
    assert!(status.success(), "{log}");
    drop((primary, replica, stranger));
}
