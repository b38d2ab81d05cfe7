//! The relay log against real servers: a stream completes from the relay after the source
//! purged the binlog it starts in; two tasks on one source share one binlog connection; a
//! relay segment torn by a crash is repaired when the puller starts again. Each test has a
//! private source, since PURGE and the processlist count would disturb other tests.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use sluice_tests::stream::{Background, binlog_end, wait_for_checkpoint};
use sluice_tests::tools::all_rows;
use sluice_tests::{MariaDb, Role, target, unique_name};

const BIN: &str = env!("CARGO_BIN_EXE_sluice-under-test");

fn sluice(args: &[&str]) -> Output {
    sluice_tests::run_cli(BIN, args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn seed(server: &MariaDb, db: &str) {
    let mut s = server.conn().await;
    s.query_drop(format!(
        "CREATE DATABASE `{db}`; USE `{db}`;
         CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), n INT);
         INSERT INTO t SELECT seq, CONCAT('seed ', seq), 0 FROM seq_1_to_500;"
    ))
    .await
    .unwrap();
}

/// Transactions of inserts, updates and deletes, with `FLUSH BINARY LOGS` in between so that
/// they span several files.
async fn workload(server: &MariaDb, db: &str, from: u32, rounds: u32) {
    let mut s = server.conn().await;
    s.query_drop(format!("USE `{db}`")).await.unwrap();
    for r in from..from + rounds {
        s.query_drop(format!(
            "BEGIN;
             INSERT INTO t VALUES ({id}, 'round {r}', {r});
             UPDATE t SET n = n + 1, v = CONCAT(v, '+') WHERE id = {u};
             DELETE FROM t WHERE id = {d};
             COMMIT;",
            id = 1000 + r,
            u = 1 + r % 400,
            d = 400 + r % 100,
        ))
        .await
        .unwrap();
        if r % 40 == 39 {
            s.query_drop("FLUSH BINARY LOGS").await.unwrap();
        }
    }
}

async fn assert_equal(server: &MariaDb, db: &str, target_db: &str) {
    let mut s = server.conn().await;
    let mut t = target().conn().await;
    let a = all_rows(&mut s, &format!("`{db}`.t"), "id").await;
    let b = all_rows(&mut t, &format!("`{target_db}`.t"), "id").await;
    assert!(
        a.len() > 400,
        "the source table is too small to prove anything"
    );
    assert_eq!(a.len(), b.len(), "{target_db}: row counts differ");
    assert!(a == b, "{target_db}: rows differ");
}

fn dump(server: &MariaDb, db: &str, dir: &Path) {
    let o = sluice(&[
        "dump",
        "--source",
        &server.url(),
        "--output",
        dir.to_str().unwrap(),
        "--filter",
        &format!("{db}.*"),
    ]);
    assert!(o.status.success(), "dump: {}", stderr(&o));
}

fn import(dir: &Path, route: &str) -> std::process::Child {
    Command::new(BIN)
        .args([
            "import",
            "--input",
            dir.to_str().unwrap(),
            "--target",
            &target().url(),
        ])
        .args(["--route", route])
        .env("SLUICE_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the relay under `relay` holds the source's binlog up to `end`.
fn wait_for_relay(relay: &Path, end: &(String, u64), log: impl Fn() -> String) {
    let started = Instant::now();
    loop {
        let reached = std::fs::read_dir(relay)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .and_then(|e| std::fs::read(e.path().join("index.json")).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|i| {
                let last = i["segments"].as_array()?.last()?.clone();
                Some((
                    last["file"].as_str()?.to_owned(),
                    last["end_offset"].as_u64()?,
                ))
            })
            .is_some_and(|at| at >= *end);
        if reached {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the relay did not reach {end:?}: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_completes_from_the_relay_after_the_source_purged_its_start() {
    let server = MariaDb::start(Role::Source);
    let db = unique_name("relay_purge");
    let target_db = format!("{db}_t");
    seed(&server, &db).await;
    let (dir, relay) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    dump(&server, &db, dir.path());
    let puller = Background::command(
        BIN,
        "relay",
        &[
            "--source",
            &server.url(),
            "--relay-dir",
            relay.path().to_str().unwrap(),
            "--from-dump",
            dir.path().to_str().unwrap(),
        ],
    );
    let route = format!("{db}={target_db}");
    let mut importing = import(dir.path(), &route);
    // While the import runs: changes over several binlog files, then the source purges every
    // file but the current one, the dump's position included.
    workload(&server, &db, 0, 200).await;
    let mut s = server.conn().await;
    s.query_drop("FLUSH BINARY LOGS").await.unwrap();
    let end = binlog_end(&mut s).await;
    wait_for_relay(relay.path(), &end, || puller.log());
    // The server keeps a file until InnoDB has made its commits durable (its binlog
    // checkpoint): purge until only the current file is left.
    let started = Instant::now();
    loop {
        s.query_drop(format!("PURGE BINARY LOGS TO '{}'", end.0))
            .await
            .unwrap();
        let files: Vec<mysql_async::Row> = s.query("SHOW BINARY LOGS").await.unwrap();
        if files.len() == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "PURGE left {} files",
            files.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(importing.wait().unwrap().success(), "import failed");

    let common = [
        "--source",
        &server.url(),
        "--target",
        &target().url(),
        "--from-dump",
        dir.path().to_str().unwrap(),
        "--route",
        &route,
        "--task",
        &db,
    ];
    let until = format!("{}:{}", end.0, end.1);
    // Without the relay the start is gone from the source.
    let mut args = vec!["stream"];
    args.extend_from_slice(&common);
    args.extend_from_slice(&["--until", &until]);
    let o = sluice(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not on the source any more"),
        "{}",
        stderr(&o)
    );
    // With it the stream completes.
    args.extend_from_slice(&["--relay-dir", relay.path().to_str().unwrap()]);
    let o = sluice(&args);
    assert!(o.status.success(), "stream from the relay: {}", stderr(&o));
    assert_equal(&server, &db, &target_db).await;
    let (status, log) = puller.stop();
    assert!(status.success(), "relay: {log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tasks_on_one_source_share_one_binlog_connection() {
    let server = MariaDb::start(Role::Source);
    let db = unique_name("relay_two");
    seed(&server, &db).await;
    let (dir, relay) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    dump(&server, &db, dir.path());
    let (a, b) = (format!("{db}_a"), format!("{db}_b"));
    for t in [&a, &b] {
        assert!(
            import(dir.path(), &format!("{db}={t}"))
                .wait()
                .unwrap()
                .success()
        );
    }
    let task = |name: &str, to: &str| {
        Background::start(
            BIN,
            &[
                "--source",
                &server.url(),
                "--target",
                &target().url(),
                "--from-dump",
                dir.path().to_str().unwrap(),
                "--route",
                &format!("{db}={to}"),
                "--task",
                name,
                "--relay-dir",
                relay.path().to_str().unwrap(),
            ],
        )
    };
    let first = task(&a, &a);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = task(&b, &b);
    workload(&server, &db, 0, 150).await;
    let mut s = server.conn().await;
    let end = binlog_end(&mut s).await;
    let dumps: Vec<String> = s
        .query(
            "SELECT COMMAND FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
        )
        .await
        .unwrap();
    assert_eq!(
        dumps.len(),
        1,
        "binlog connections to the source: {dumps:?}"
    );
    for (name, t) in [(&a, &first), (&b, &second)] {
        wait_for_checkpoint(target(), name, &end, Duration::from_secs(60), || t.log()).await;
    }
    for (t, to) in [(first, &a), (second, &b)] {
        let (status, log) = t.stop();
        assert!(status.success(), "{to}: {log}");
        assert_equal(&server, &db, to).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_last_segment_is_repaired_when_the_puller_starts_again() {
    let server = MariaDb::start(Role::Source);
    let db = unique_name("relay_torn");
    let target_db = format!("{db}_t");
    seed(&server, &db).await;
    let (dir, relay) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    dump(&server, &db, dir.path());
    let route = format!("{db}={target_db}");
    assert!(import(dir.path(), &route).wait().unwrap().success());
    let relay_dir = relay.path().to_str().unwrap();
    let puller = Background::command(
        BIN,
        "relay",
        &[
            "--source",
            &server.url(),
            "--relay-dir",
            relay_dir,
            "--from-dump",
            dir.path().to_str().unwrap(),
        ],
    );
    workload(&server, &db, 0, 60).await;
    let mut s = server.conn().await;
    let end = binlog_end(&mut s).await;
    wait_for_relay(relay.path(), &end, || puller.log());
    assert!(!puller.kill().success());
    // A crash in the middle of writing the last record.
    let folder = std::fs::read_dir(relay.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut segments: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("segment."))
        .collect();
    segments.sort();
    let last = segments.last().unwrap();
    let size = std::fs::metadata(last).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(size - 7)
        .unwrap();
    workload(&server, &db, 60, 60).await;
    let end = binlog_end(&mut s).await;
    let again = Background::command(
        BIN,
        "relay",
        &["--source", &server.url(), "--relay-dir", relay_dir],
    );
    wait_for_relay(relay.path(), &end, || again.log());
    let until = format!("{}:{}", end.0, end.1);
    let o = sluice(&[
        "stream",
        "--source",
        &server.url(),
        "--target",
        &target().url(),
        "--from-dump",
        dir.path().to_str().unwrap(),
        "--route",
        &route,
        "--task",
        &db,
        "--relay-dir",
        relay_dir,
        "--until",
        &until,
    ]);
    assert!(o.status.success(), "stream: {}", stderr(&o));
    assert_equal(&server, &db, &target_db).await;
    let (status, log) = again.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("cut a torn record"), "{log}");
}
