//! `sluice dump` as a user runs it: S3 output, a big table shared by several threads, and every
//! bad input the issue names, each with a one-line error and the right exit code.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use mysql_async::prelude::*;
use sluice_core::layout::DumpMetadata;
use sluice_tests::{s3, source, unique_name};

fn sluice(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"));
    cmd.args(args).env("SLUICE_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn small_db(prefix: &str) -> String {
    let db = unique_name(prefix);
    let mut conn = source().conn().await;
    conn.query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .unwrap();
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v TEXT)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!(
        "INSERT INTO `{db}`.t VALUES (1, 'one'), (2, 'two')"
    ))
    .await
    .unwrap();
    db
}

/// A 1 M-row table splits into the requested chunks, two threads read it at once, and the gzip
/// files land in S3; then a dump interrupted by SIGINT leaves no metadata.json.
#[tokio::test]
async fn million_rows_to_s3_in_parallel_chunks_and_interrupt_leaves_no_marker() {
    let db = unique_name("big");
    let mut conn = source().conn().await;
    conn.query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .unwrap();
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.big (id INT PRIMARY KEY, v VARCHAR(32))"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    conn.query_drop("INSERT INTO big SELECT seq, MD5(seq) FROM seq_1_to_1000000")
        .await
        .unwrap();

    // Watch the processlist for concurrent chunk reads of the table.
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, most, pattern) = (
            stop.clone(),
            most.clone(),
            format!("SELECT % FROM `{db}`.`big`%"),
        );
        tokio::spawn(async move {
            let mut c = source().conn().await;
            while !stop.load(Ordering::Relaxed) {
                let n: Option<usize> = c
                    .exec_first(
                        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ?",
                        (pattern.as_str(),),
                    )
                    .await
                    .unwrap();
                most.fetch_max(n.unwrap_or(0), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let prefix = unique_name("dump_s3");
    let url = s3().url(&prefix);
    let env = s3().env();
    let (src, filter) = (source().url(), format!("{db}.*"));
    let args = [
        "dump",
        "--source",
        &src,
        "--output",
        &url,
        "--filter",
        &filter,
        "--threads",
        "2",
        "--chunk-rows",
        "100000",
        "--compress",
        "gzip",
        "--json",
    ]
    .map(String::from);
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sluice(&args, &env)
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rows"], 1_000_000);
    assert!(
        most.load(Ordering::Relaxed) >= 2,
        "never saw two chunks of the table read at once"
    );

    let storage = s3().storage(&prefix);
    let meta: DumpMetadata =
        serde_json::from_slice(&storage.get("metadata.json").await.unwrap()).unwrap();
    let table = &meta.tables[0];
    assert_eq!(table.rows, 1_000_000);
    assert_eq!(table.chunks.len(), 10, "1 M rows at 100,000 per chunk");
    assert!(
        table.chunks.iter().all(|c| c.rows == 100_000),
        "chunks {:?}",
        table.chunks.iter().map(|c| c.rows).collect::<Vec<_>>()
    );
    let names: Vec<String> = storage
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert!(
        names.contains(&format!("{db}.big.000000009.sql.gz")),
        "{names:?}"
    );
    let gz = storage
        .get(&format!("{db}.big.000000003.sql.gz"))
        .await
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text).unwrap();
    assert!(
        text.contains("INSERT INTO `big` (`id`,`v`) VALUES\n(300001,"),
        "{}",
        &text[..300]
    );

    // Interrupt a dump of the same table midway.
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args(["dump", "--source", &source().url(), "--output"])
        .arg(dir.path())
        .args([
            "--filter",
            &format!("{db}.*"),
            "--threads",
            "1",
            "--chunk-rows",
            "10000",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("interrupted by SIGINT"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("metadata.json").exists(),
        "an interrupted dump must not look complete"
    );
}

/// Keys far apart (a few near each end of BIGINT, the bulk in a narrow band, as time-based
/// ids are): equal key ranges would put nearly every row in one chunk; the planner re-splits
/// the skewed range, so chunks stay near --chunk-rows and the table loads back whole.
#[tokio::test]
async fn skewed_integer_keys_still_split_into_even_chunks() {
    let db = unique_name("dump_skew");
    let mut conn = source().conn().await;
    conn.query_drop(format!(
        "CREATE DATABASE `{db}`; USE `{db}`; CREATE TABLE t (id BIGINT PRIMARY KEY, v INT);
         INSERT INTO t VALUES (-9223372036854775808, 0), (9223372036854775807, 0);
         INSERT INTO t SELECT 1700000000000 + seq * 7, seq FROM seq_1_to_20000;"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = sluice(
        &[
            "dump",
            "--source",
            &source().url(),
            "--output",
            dir.path().to_str().unwrap(),
            "--filter",
            &format!("{db}.*"),
            "--chunk-rows",
            "1000",
            "--threads",
            "2",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let meta: DumpMetadata =
        serde_json::from_slice(&std::fs::read(dir.path().join("metadata.json")).unwrap()).unwrap();
    let rows: Vec<u64> = meta.tables[0].chunks.iter().map(|c| c.rows).collect();
    assert_eq!(rows.iter().sum::<u64>(), 20_002);
    assert!(
        rows.len() >= 10 && rows.iter().all(|&r| r <= 2_000),
        "chunks {rows:?}"
    );
}

#[tokio::test]
async fn unreachable_source_is_a_transient_error_naming_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = sluice(
        &[
            "dump",
            "--source",
            "mysql://root:secret@127.0.0.1:1",
            "--output",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("127.0.0.1:1") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!err.contains("secret"), "the password leaked: {err}");
}

#[tokio::test]
async fn filter_matching_nothing_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = sluice(
        &[
            "dump",
            "--source",
            &source().url(),
            "--output",
            dir.path().to_str().unwrap(),
            "--filter",
            "no_such_db_*.*",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("matches no table"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn non_empty_output_needs_overwrite() {
    let db = small_db("overwrite").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.sql"), "old").unwrap();
    let args = [
        "dump",
        "--source",
        &source().url(),
        "--output",
        dir.path().to_str().unwrap(),
        "--filter",
        &format!("{db}.*"),
    ];
    let out = sluice(&args, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--overwrite"), "{}", stderr(&out));
    assert!(!dir.path().join("metadata.json").exists());

    let mut with = args.to_vec();
    with.push("--overwrite");
    let out = sluice(&with, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !dir.path().join("old.sql").exists(),
        "the old dump file was not replaced"
    );
    assert!(dir.path().join("metadata.json").exists());
}

#[tokio::test]
async fn unwritable_output_fails_naming_the_path() {
    let db = small_db("unwritable").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let output = file.join("dump");
    let out = sluice(
        &[
            "dump",
            "--source",
            &source().url(),
            "--output",
            output.to_str().unwrap(),
            "--filter",
            &format!("{db}.*"),
        ],
        &[],
    );
    assert!(matches!(out.status.code(), Some(2 | 3)), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(output.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn missing_privileges_are_listed_at_once() {
    let db = small_db("privileges").await;
    let user = unique_name("limited");
    let mut conn = source().conn().await;
    conn.query_drop(format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-{user}'"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("GRANT SELECT ON `{db}`.* TO '{user}'@'%'"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("pw-{user}\n")).unwrap();
    let url = format!("mysql://{user}@127.0.0.1:{}", source().port);
    let output = dir.path().join("out");
    let out = sluice(
        &[
            "dump",
            "--source",
            &url,
            "--password-file",
            password_file.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--filter",
            &format!("{db}.*"),
            "--consistency",
            "flush",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("RELOAD") && err.contains("BINLOG MONITOR"),
        "{err}"
    );
    assert!(
        !err.contains(&format!("pw-{user}")),
        "the password leaked: {err}"
    );

    // The same account can dump without any lock.
    let out = sluice(
        &[
            "dump",
            "--source",
            &url,
            "--output",
            output.to_str().unwrap(),
            "--filter",
            &format!("{db}.*"),
            "--consistency",
            "none",
        ],
        &[("SLUICE_SOURCE_PASSWORD", format!("pw-{user}"))],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(Path::new(&output).join("metadata.json").exists());
}
