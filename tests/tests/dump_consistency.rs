//! A dump taken while writers keep changing several tables equals the source at the recorded
//! position: restoring it and replaying the source binlog from that position (with
//! `mariadb-binlog`) yields exactly the source's final state. A dump that missed or doubled a
//! change would make the replay fail on a duplicate key or leave the tables different.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mysql_async::prelude::*;
use sluice_tests::dumps::restore;
use sluice_tests::tools::{all_rows, binlog_since, mariadb_client};
use sluice_tests::{source, target, unique_name};

async fn seed(db: &str) {
    let mut conn = source().conn().await;
    conn.query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .unwrap();
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    conn.query_drop("CREATE TABLE a (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))")
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE b (id INT PRIMARY KEY, v BIGINT NOT NULL)")
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE c (k VARCHAR(20) PRIMARY KEY, n INT)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO a (v) SELECT CONCAT('seed', seq) FROM seq_1_to_2000")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO b SELECT seq, 0 FROM seq_1_to_2000")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO c SELECT CONCAT('k', seq), seq FROM seq_1_to_2000")
        .await
        .unwrap();
}

/// One writer: multi-table transactions of inserts, updates and deletes until told to stop.
async fn writer(db: String, seed: u64, stop: Arc<AtomicBool>, commits: Arc<AtomicU64>) {
    let mut conn = source().conn().await;
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    let mut x = seed;
    while !stop.load(Ordering::Relaxed) {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let id = (x >> 33) % 2000 + 1;
        let mut tx = conn.start_transaction(Default::default()).await.unwrap();
        tx.exec_drop("INSERT INTO a (v) VALUES (?)", (format!("w{seed}-{x}"),))
            .await
            .unwrap();
        tx.exec_drop("UPDATE b SET v = v + 1 WHERE id = ?", (id,))
            .await
            .unwrap();
        tx.exec_drop("DELETE FROM c WHERE k = ?", (format!("k{id}"),))
            .await
            .unwrap();
        tx.exec_drop(
            "INSERT INTO c VALUES (?, ?) ON DUPLICATE KEY UPDATE n = n + 1",
            (format!("k{}", (x >> 20) % 2000 + 1), id),
        )
        .await
        .unwrap();
        tx.exec_drop("DELETE FROM a WHERE id = ?", (id,))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        commits.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn dump_under_writes_equals_source_at_position(mode: &str) {
    let db = unique_name(&format!("consistency_{mode}"));
    seed(&db).await;
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let mut writers: Vec<_> = (1..=2)
        .map(|i| tokio::spawn(writer(db.clone(), i, stop.clone(), commits.clone())))
        .collect();
    // Commits to a database the dump does not cover: `lock` mode lets them through while the
    // snapshots open, so its workers may stand at different positions.
    let other = format!("{db}_other");
    seed(&other).await;
    writers.push(tokio::spawn(writer(
        other,
        9,
        stop.clone(),
        Arc::new(AtomicU64::new(0)),
    )));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let out = tempfile::tempdir().unwrap();
    let sluice = env!("CARGO_BIN_EXE_sluice-under-test");
    let (src, path, filter) = (source().url(), out.path().to_owned(), format!("{db}.*"));
    let mode_arg = mode.to_owned();
    let status = tokio::task::spawn_blocking(move || {
        Command::new(sluice)
            .args(["dump", "--source", &src, "--output"])
            .arg(&path)
            .args([
                "--filter",
                &filter,
                "--threads",
                "3",
                "--chunk-rows",
                "300",
                "--consistency",
                &mode_arg,
            ])
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "sluice dump --consistency {mode} failed");
    let during = commits.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        commits.load(Ordering::Relaxed) > during,
        "writers did not write after the dump"
    );
    assert!(during > 0, "writers did not write before the dump");

    let meta = restore(target(), out.path()).await;
    let snap = meta.snapshot.expect("the dump records a binlog position");
    assert!(
        meta.tables.iter().all(|t| t.chunks.len() > 1) || mode == "none",
        "tables should split into chunks"
    );
    // The recorded GTID set is the one at the recorded position, however it was read.
    let at: Option<String> = source()
        .conn()
        .await
        .exec_first(
            "SELECT BINLOG_GTID_POS(?, ?)",
            (&snap.binlog_file, snap.binlog_offset),
        )
        .await
        .unwrap();
    if mode != "none" {
        assert_eq!(
            snap.gtid_set,
            at.unwrap_or_default(),
            "{mode}: the GTID set of {}:{}",
            snap.binlog_file,
            snap.binlog_offset
        );
    }
    let events = binlog_since(source(), &snap.binlog_file, snap.binlog_offset, &db);
    mariadb_client(target(), Some(&db), &events);

    let mut s = source().conn().await;
    let mut t = target().conn().await;
    for (table, key) in [("a", "id"), ("b", "id"), ("c", "k")] {
        let name = format!("`{db}`.{table}");
        let (want, got) = (
            all_rows(&mut s, &name, key).await,
            all_rows(&mut t, &name, key).await,
        );
        assert_eq!(
            want.len(),
            got.len(),
            "{mode}: row count of {table} differs"
        );
        if want != got {
            // Seen once in CI-like runs (snapshot mode, never reproduced since): name the rows
            // so that the cause can be told apart (a missed commit vs a doubled one).
            let only_source: Vec<_> = want.iter().filter(|r| !got.contains(r)).take(5).collect();
            let only_target: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(5).collect();
            panic!(
                "{mode}: rows of {table} differ; only on the source: {only_source:?}; only on \
                 the restored + replayed target: {only_target:?}; dump position {}:{} ({})",
                snap.binlog_file, snap.binlog_offset, meta.consistency
            );
        }
    }
}

#[tokio::test]
async fn flush_mode_is_exact_under_writes() {
    dump_under_writes_equals_source_at_position("flush").await;
}

#[tokio::test]
async fn lock_mode_is_exact_under_writes() {
    dump_under_writes_equals_source_at_position("lock").await;
}

#[tokio::test]
async fn snapshot_mode_is_exact_under_writes() {
    dump_under_writes_equals_source_at_position("snapshot").await;
}
