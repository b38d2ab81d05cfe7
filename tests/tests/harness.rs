//! The harness itself: the servers it starts are real, configured as the issue asks, reachable,
//! and die with the test process.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mysql_async::prelude::*;
use sluice_tests::{s3, source, target, unique_name};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn source_stores_rows_and_writes_a_row_binlog() {
    let db = unique_name("harness_rows");
    let mut conn = source().conn().await;
    conn.query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .unwrap();
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, name VARCHAR(20))"
    ))
    .await
    .unwrap();
    conn.exec_batch(
        format!("INSERT INTO `{db}`.t VALUES (?, ?)"),
        (1..=100).map(|i| (i, format!("row {i}"))),
    )
    .await
    .unwrap();
    let rows: Vec<(i32, String)> = conn
        .query(format!("SELECT id, name FROM `{db}`.t ORDER BY id"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 100);
    assert_eq!(rows[41], (42, "row 42".to_owned()));

    let status: Option<(String, u64)> =
        conn.query_first("SHOW MASTER STATUS")
            .await
            .unwrap()
            .map(|row: mysql_async::Row| {
                mysql_async::from_row_opt(row)
                    .map(|(f, p, _, _): (String, u64, String, String)| (f, p))
                    .unwrap()
            });
    let (file, pos) = status.expect("SHOW MASTER STATUS returns a row on the source");
    assert!(file.starts_with("mysql-bin."), "binlog file {file}");
    assert!(pos > 4, "binlog position {pos} did not move");
    assert!(source().datadir().join(&file).is_file());

    let settings: (String, String, String, u8, u8, u64, u32) = conn
        .query_first(
            "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@gtid_strict_mode, \
             @@local_infile, @@max_allowed_packet, @@server_id",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        settings,
        ("1".into(), "ROW".into(), "FULL".into(), 1, 1, 64 << 20, 1)
    );
    let gtid: String = conn
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    assert!(gtid.starts_with("0-1-"), "gtid_binlog_pos {gtid}");
    conn.query_drop(format!("DROP DATABASE `{db}`"))
        .await
        .unwrap();
}

#[tokio::test]
async fn target_runs_without_a_binlog_on_another_port() {
    let mut conn = target().conn().await;
    let (log_bin, server_id): (u8, u32) = conn
        .query_first("SELECT @@log_bin, @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((log_bin, server_id), (0, 2));
    assert_ne!(target().port, source().port);
    assert_ne!(target().port, 3306);
}

/// 20 MB through a multipart upload to the S3 endpoint, read back byte for byte, and listed.
#[tokio::test]
async fn s3_multipart_upload_round_trips_20_mb() {
    let prefix = unique_name("harness_s3");
    let storage = s3().storage(&prefix);
    let data: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut writer = storage.writer("big/object.bin");
    for chunk in data.chunks(1 << 20) {
        writer.write_all(chunk).await.unwrap();
    }
    assert_eq!(writer.finish().await.unwrap(), 20_000_000);

    // A multipart upload's ETag ends in -<parts>; a single PUT's has no dash.
    let etag = head_etag(&prefix, "big/object.bin");
    assert!(etag.contains('-'), "expected a multipart ETag, got {etag}");

    let back: Bytes = storage.get("big/object.bin").await.unwrap();
    assert!(back.as_ref() == data.as_slice(), "read-back differs");
    let listed = storage.list("").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].size),
        ("big/object.bin", 20_000_000)
    );
}

fn head_etag(prefix: &str, name: &str) -> String {
    use std::io::{Read, Write};
    let port = s3().port;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // moto accepts unsigned requests.
    write!(
        stream,
        "HEAD /{}/{prefix}/{name} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n",
        sluice_tests::harness::moto::BUCKET
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("etag:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no ETag in {response}"))
}

/// Killing the test process with SIGKILL (no destructors, no exit hooks) stops its servers
/// within a few seconds.
#[test]
fn servers_die_with_a_killed_test_process() {
    let mut probe = Command::new(env!("CARGO_BIN_EXE_harness-probe"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(probe.stdout.take().unwrap()).lines();
    let mut pids = Vec::new();
    for _ in 0..2 {
        let line = lines.next().expect("probe prints two pids").unwrap();
        let pid: u32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(alive(pid), "{line} is not running");
        pids.push(pid);
    }
    probe.kill().unwrap();
    probe.wait().unwrap();
    let killed = Instant::now();
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "servers {pids:?} outlived the killed test process"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}
