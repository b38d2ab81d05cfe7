//! A dump killed part-way (SIGKILL) and run again with `--resume` keeps the chunks it had
//! finished (their files are not rewritten), reads the others in a new snapshot, and a stream
//! from the dump still makes the target equal to the source while writers never stopped: the
//! gap between the two snapshots is replayed in safe mode, and the table without a primary key
//! (one chunk, read in the second snapshot) skips the changes its chunk holds already — replayed,
//! its inserts would be doubled.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use sluice_tests::dumps::{file_identity, finished_chunks, read_metadata, restore};
use sluice_tests::stream::{Background, binlog_end};
use sluice_tests::tools::all_rows;
use sluice_tests::{source, target, unique_name};

const ROWS: u64 = 300_000;

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args(args)
        .env("SLUICE_LOG", "info")
        .output()
        .unwrap()
}

async fn seed(db: &str) {
    let mut conn = source().conn().await;
    conn.query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .unwrap();
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    conn.query_drop("CREATE TABLE a_big (id INT PRIMARY KEY, v BIGINT NOT NULL, s VARCHAR(20))")
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE b_nokey (a INT, b VARCHAR(20))")
        .await
        .unwrap();
    conn.query_drop(format!(
        "INSERT INTO a_big SELECT seq, seq, CONCAT('r', seq) FROM seq_1_to_{ROWS}"
    ))
    .await
    .unwrap();
    conn.query_drop("INSERT INTO b_nokey SELECT seq, 'seed' FROM seq_1_to_500")
        .await
        .unwrap();
}

/// Transactions over the whole key range (chunks done in either snapshot) and the keyless
/// table, until told to stop.
async fn writer(db: String, stop: Arc<AtomicBool>, commits: Arc<AtomicU64>) {
    let mut conn = source().conn().await;
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    let mut x: u64 = 7;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        n += 1;
        let id = (x >> 33) % ROWS + 1;
        let mut tx = conn.start_transaction(Default::default()).await.unwrap();
        tx.exec_drop("UPDATE a_big SET v = v + 1 WHERE id = ?", (id,))
            .await
            .unwrap();
        tx.exec_drop("DELETE FROM a_big WHERE id = ?", ((id * 7) % ROWS + 1,))
            .await
            .unwrap();
        tx.exec_drop(
            "INSERT INTO a_big VALUES (?, ?, 'w') ON DUPLICATE KEY UPDATE v = VALUES(v)",
            ((x >> 17) % (ROWS + 1000) + 1, n),
        )
        .await
        .unwrap();
        // A fresh key: in the last chunk, which is read after the kill.
        tx.exec_drop(
            "INSERT INTO a_big VALUES (?, ?, 'new')",
            (ROWS + 10_000 + n, n),
        )
        .await
        .unwrap();
        tx.exec_drop("INSERT INTO b_nokey VALUES (?, 'w')", (n,))
            .await
            .unwrap();
        tx.exec_drop(
            "UPDATE b_nokey SET b = CONCAT(b, '+') WHERE a = ? LIMIT 1",
            (id % 500 + 1,),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        commits.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_dump_resumes_and_streams_exactly() {
    killed_dump_resumes(true).await;
}

/// Statement by statement, a replayed insert of a row the later chunk holds would fail on
/// its duplicate key without safe mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_dump_resumes_and_streams_exactly_without_compaction() {
    killed_dump_resumes(false).await;
}

async fn killed_dump_resumes(compact: bool) {
    let db = unique_name(if compact {
        "dump_resume"
    } else {
        "dump_resume_nc"
    });
    seed(&db).await;
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writing = tokio::spawn(writer(db.clone(), stop.clone(), commits.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let out = tempfile::tempdir().unwrap();
    let output = out.path().to_str().unwrap().to_owned();
    let src = source().url();
    let filter = format!("{db}.*");
    let args = [
        "--source",
        &src,
        "--output",
        &output,
        "--filter",
        &filter,
        "--threads",
        "1",
        "--chunk-rows",
        "2000",
    ];
    let first = Background::command(env!("CARGO_BIN_EXE_sluice-under-test"), "dump", &args);
    let started = Instant::now();
    let kept = loop {
        let done = finished_chunks(out.path());
        if done.len() >= 10 {
            break done;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the dump recorded no finished chunks: {}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    first.kill();
    assert!(
        !out.path().join("metadata.json").exists(),
        "the dump finished before it was killed; the test needs more rows"
    );
    let before_resume = commits.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Without --resume the unfinished folder is refused.
    let o = sluice(&[&["dump"][..], &args[..]].concat());
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--overwrite"),
        "{o:?}"
    );
    // Other settings cannot continue it.
    let mut other = args.to_vec();
    other[9] = "5000";
    let o = sluice(&[&["dump", "--resume"][..], &other[..]].concat());
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("chunk rows was 2000, now 5000"), "{err}");

    let o = sluice(&[&["dump", "--resume"][..], &args[..]].concat());
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "dump --resume failed: {log}");
    assert!(log.contains("resuming the dump"), "{log}");
    assert!(commits.load(Ordering::Relaxed) > before_resume);

    // The chunks finished before the kill were not written again.
    for (file, identity) in &kept {
        assert_eq!(
            file_identity(&out.path().join(file)),
            Some(*identity),
            "{file} was rewritten by the resume"
        );
    }
    assert!(!out.path().join("dump-progress.json").exists());
    let meta = read_metadata(out.path());
    assert_eq!(meta.resumed_snapshots.len(), 1, "{meta:?}");
    let big = meta.tables.iter().find(|t| t.table == "a_big").unwrap();
    let nokey = meta.tables.iter().find(|t| t.table == "b_nokey").unwrap();
    assert!(big.chunks.iter().any(|c| c.snapshot == 0));
    assert!(big.chunks.iter().any(|c| c.snapshot == 1));
    assert_eq!(
        nokey.snapshot, 1,
        "the keyless table was read after the kill"
    );

    // Writers go on a little, then stop; the stream catches up to where they stopped.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writing.await.unwrap();
    let (file, offset) = binlog_end(&mut source().conn().await).await;
    let until = format!("{file}:{offset}");

    restore(target(), out.path()).await;
    let tgt = target().url();
    let mut stream = vec![
        "stream",
        "--source",
        &src,
        "--target",
        &tgt,
        "--from-dump",
        &output,
        "--until",
        &until,
        "--filter",
        &filter,
        "--task",
        &db,
    ];
    if !compact {
        stream.push("--no-compact");
    }
    let o = sluice(&stream);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "stream: {log}");
    assert!(log.contains("safe mode"), "{log}");

    let mut s = source().conn().await;
    let mut t = target().conn().await;
    for (table, order) in [("a_big", "id"), ("b_nokey", "a, b")] {
        let name = format!("`{db}`.{table}");
        let (want, got) = (
            all_rows(&mut s, &name, order).await,
            all_rows(&mut t, &name, order).await,
        );
        assert_eq!(want.len(), got.len(), "row count of {table} differs");
        assert!(want == got, "rows of {table} differ");
    }
}
