//! A binlog file past 4 GiB, end to end. Ignored by default: it writes about 20 GiB (a 4.3 GiB
//! binlog file, the table on the source and on three targets, a relay log), needs about
//! 10 GiB of memory (the streamer holds the 3.4 GiB transaction decoded) and takes some
//! minutes. Run it with
//! `cargo test --release -p sluice-tests --test stream_4gib -- --ignored --nocapture`.
//!
//! One transaction of 3.4 GiB after 0.9 GiB of smaller ones takes `mysql-bin.000002` past
//! 4 GiB (a transaction is never split across files, whatever max_binlog_size says), where the
//! events' 32-bit log_pos wraps and COM_BINLOG_DUMP cannot ask for an offset. Each way of
//! resuming past the mark is exercised, in the order the streamer prefers them:
//! - by GTID: a stream killed while applying the huge transaction, then again with its
//!   checkpoint past 4 GiB, resumes and ends equal;
//! - from the relay log: the relay, cut inside the huge transaction past 4 GiB (a crash while
//!   writing), pulls again from there (reading the file over from its start, since the relay
//!   records no GTID), and a task killed past the mark resumes from it and ends equal;
//! - from the file's start: `--from FILE:OFFSET` past 4 GiB reads the file over and applies
//!   exactly what follows the mark.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use sluice_tests::stream::{Background, binlog_end, checkpoint, wait_for_checkpoint};
use sluice_tests::{MariaDb, Role};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice-under-test");
const DB: &str = "big4g";
const FOUR_GIB: u64 = 1 << 32;
/// Rows of 256 KiB: 9 transactions of 400 rows, then one of 14,000 (3.4 GiB).
const PREFILL: u64 = 9;
const PREFILL_ROWS: u64 = 400;
const HUGE_ROWS: u64 = 14_000;
const LONG: Duration = Duration::from_secs(40 * 60);

const TABLES: &str = "CREATE TABLE big (id INT PRIMARY KEY, pad LONGBLOB NOT NULL);
                      CREATE TABLE small (id INT PRIMARY KEY, v VARCHAR(20));";
const BIG_SERVER: &str = "max_allowed_packet=1G\ninnodb_log_file_size=1G\n\
                          innodb_buffer_pool_size=1G\nmax_binlog_size=1G\n";

async fn create_on(server: &MariaDb) {
    let mut c = server.conn().await;
    c.query_drop(format!("CREATE DATABASE {DB}; USE {DB}; {TABLES}"))
        .await
        .unwrap();
}

/// Row count and an order-independent fingerprint of both tables.
async fn fingerprint(server: &MariaDb) -> Vec<(u64, u64)> {
    let mut c = server.conn().await;
    let mut out = Vec::new();
    for (table, row) in [("big", "id, MD5(pad)"), ("small", "id, v")] {
        let r: (u64, u64) = c
            .query_first(format!(
                "SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS('#', {row}))), 0) FROM {DB}.{table}"
            ))
            .await
            .unwrap()
            .unwrap();
        out.push(r);
    }
    out
}

async fn count(server: &MariaDb, table: &str) -> u64 {
    let mut c = server.conn().await;
    c.query_first(format!("SELECT COUNT(*) FROM {DB}.{table}"))
        .await
        .unwrap()
        .unwrap()
}

/// Where the huge transaction ends: before the ROTATE that closes its file.
fn end_of_last_transaction(datadir: &Path, file: &str) -> u64 {
    let path = datadir.join(file);
    let size = std::fs::metadata(&path).unwrap().len();
    // ROTATE: 19-byte header, 8-byte position, the next file's name, 4-byte CRC32.
    let rotate = 19 + 8 + file.len() as u64 + 4;
    let mut head = [0u8; 19];
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(&path).unwrap();
    f.seek(SeekFrom::Start(size - rotate)).unwrap();
    f.read_exact(&mut head).unwrap();
    assert_eq!(head[4], 4, "{file} does not end with a ROTATE event");
    size - rotate
}

fn run_stream(args: &[&str], extra: &[&str]) {
    let out = Command::new(SLUICE)
        .arg("stream")
        .args(args)
        .args(extra)
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sluice stream {args:?} {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The relay's folder and index for the one source it holds, once there is one.
fn relay_index(relay: &Path) -> Option<(std::path::PathBuf, serde_json::Value)> {
    let dir = std::fs::read_dir(relay).ok()?.next()?.ok()?.path();
    let index = serde_json::from_slice(&std::fs::read(dir.join("index.json")).ok()?).ok()?;
    Some((dir, index))
}

fn wait_for_relay(relay: &Path, end: &(String, u64), log: impl Fn() -> String) {
    let started = Instant::now();
    loop {
        let reached = relay_index(relay)
            .and_then(|(_, i)| {
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
            started.elapsed() < LONG,
            "the relay did not reach {end:?}: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until an applier on `target` is writing into `big` while only the smaller
/// transactions are committed there: the reader has read the huge one, past 4 GiB.
async fn wait_for_the_huge_transaction(target: &MariaDb, log: impl Fn() -> String) {
    let mut t = target.conn().await;
    let started = Instant::now();
    loop {
        let busy: Option<u64> = t
            .query_first(format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE \
                 LEFT(INFO, 300) LIKE '%INTO `{DB}`.`big`%' AND COMMAND = 'Query' \
                 AND ID <> CONNECTION_ID() LIMIT 1"
            ))
            .await
            .unwrap();
        if busy.is_some() && count(target, "big").await == PREFILL * PREFILL_ROWS {
            return;
        }
        assert!(
            started.elapsed() < LONG,
            "the huge transaction was never applied: {}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes a 4.3 GiB binlog file and ~20 GiB in all; see the README"]
async fn a_binlog_file_past_4_gib_streams_and_resumes_past_the_mark() {
    let source = MariaDb::start_with(Role::Source, BIG_SERVER);
    let targets: Vec<MariaDb> = (0..3)
        .map(|_| MariaDb::start_with(Role::Target, BIG_SERVER))
        .collect();
    create_on(&source).await;
    for t in &targets {
        create_on(t).await;
    }
    let mut s = source.conn().await;
    s.query_drop("FLUSH BINARY LOGS").await.unwrap();
    let start = binlog_end(&mut s).await;
    let row = "REPEAT(MD5(seq), 8192)"; // 256 KiB
    for i in 0..PREFILL {
        let (a, b) = (i * PREFILL_ROWS + 1, (i + 1) * PREFILL_ROWS);
        s.query_drop(format!(
            "INSERT INTO {DB}.big SELECT seq, {row} FROM {DB}.seq_{a}_to_{b}"
        ))
        .await
        .unwrap();
    }
    assert_eq!(binlog_end(&mut s).await.0, start.0, "the prefill rotated");
    let first = PREFILL * PREFILL_ROWS + 1;
    s.query_drop(format!(
        "INSERT INTO {DB}.big SELECT seq, {row} FROM {DB}.seq_{first}_to_{}",
        first + HUGE_ROWS - 1
    ))
    .await
    .unwrap();
    let huge_end = end_of_last_transaction(&source.datadir(), &start.0);
    assert!(
        huge_end > FOUR_GIB + (200 << 20),
        "{} ends at {huge_end}",
        start.0
    );
    eprintln!("{} ends at {huge_end}", start.0);
    let past_mark = (start.0.clone(), FOUR_GIB);

    // 1. By GTID: killed inside the huge transaction, then with the checkpoint past 4 GiB.
    let (src, t0) = (source.url(), targets[0].url());
    let from = format!("{}:{}", start.0, start.1);
    let filter = format!("{DB}.*");
    let args = [
        "--source", &src, "--target", &t0, "--from", &from, "--filter", &filter, "--task", "gtid",
    ];
    let stream = Background::start(SLUICE, &args);
    wait_for_the_huge_transaction(&targets[0], || stream.log()).await;
    stream.kill();
    assert!(checkpoint(&targets[0], "gtid").await.unwrap() < past_mark);
    let stream = Background::start(SLUICE, &args);
    wait_for_checkpoint(&targets[0], "gtid", &past_mark, LONG, || stream.log()).await;
    stream.kill();
    let at = checkpoint(&targets[0], "gtid").await.unwrap();
    assert_eq!(at, (start.0.clone(), huge_end), "killed past the mark");

    // Changes after the mark (the next file), then the last run resumes from 4 GiB + by GTID.
    s.query_drop(format!(
        "UPDATE {DB}.big SET pad = 'changed' WHERE id IN (7, {first});
         DELETE FROM {DB}.big WHERE id = 8;
         INSERT INTO {DB}.big VALUES (100000, 'new');
         INSERT INTO {DB}.small SELECT seq, CONCAT('s', seq) FROM {DB}.seq_1_to_50;
         UPDATE {DB}.small SET v = 'u' WHERE id < 10;"
    ))
    .await
    .unwrap();
    let end = binlog_end(&mut s).await;
    let until = format!("{}:{}", end.0, end.1);
    run_stream(&args, &["--until", &until]);
    let expected = fingerprint(&source).await;
    assert_eq!(fingerprint(&targets[0]).await, expected, "by GTID");

    // 2. The relay: pulled whole, cut inside the huge transaction past 4 GiB, pulled again.
    let relay = tempfile::tempdir().unwrap();
    let relay_dir = relay.path().to_str().unwrap();
    let pull = |extra: &[&str]| {
        let mut a = vec!["--source", &src, "--relay-dir", relay_dir];
        a.extend_from_slice(extra);
        Background::command(SLUICE, "relay", &a)
    };
    let puller = pull(&["--from", &from]);
    wait_for_relay(relay.path(), &end, || puller.log());
    let (status, log) = puller.stop();
    assert!(status.success(), "{log}");
    let (dir, mut index) = relay_index(relay.path()).unwrap();
    let segments = index["segments"].as_array_mut().unwrap();
    let keep = segments
        .iter()
        .rposition(|g| g["file"].as_str() == Some(start.0.as_str()))
        .unwrap();
    for later in segments.drain(keep + 1..) {
        let seq = later["seq"].as_u64().unwrap();
        std::fs::remove_file(dir.join(format!("segment.{seq:06}"))).unwrap();
    }
    segments[keep]["closed"] = false.into();
    let seq = segments[keep]["seq"].as_u64().unwrap();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let torn = dir.join(format!("segment.{seq:06}"));
    let size = std::fs::metadata(&torn).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&torn)
        .unwrap()
        .set_len(size - (100 << 20))
        .unwrap();
    let puller = pull(&[]);
    wait_for_relay(relay.path(), &end, || puller.log());
    assert!(
        puller.log().contains("from its start"),
        "the pull did not resume past 4 GiB by reading the file again: {}",
        puller.log()
    );
    let t1 = targets[1].url();
    let relay_args = [
        "--source",
        &src,
        "--target",
        &t1,
        "--from",
        &from,
        "--filter",
        &filter,
        "--task",
        "relay",
        "--relay-dir",
        relay_dir,
    ];
    let stream = Background::start(SLUICE, &relay_args);
    wait_for_checkpoint(&targets[1], "relay", &past_mark, LONG, || stream.log()).await;
    stream.kill();
    run_stream(&relay_args, &["--until", &until]);
    assert_eq!(fingerprint(&targets[1]).await, expected, "from the relay");
    let (status, log) = puller.stop();
    assert!(status.success(), "{log}");

    // 3. From the file's start: exactly what follows the mark, nothing of the huge transaction.
    let t2 = targets[2].url();
    let mark = format!("{}:{huge_end}", start.0);
    run_stream(
        &[
            "--source", &src, "--target", &t2, "--from", &mark, "--filter", &filter, "--task",
            "start",
        ],
        &["--until", &until],
    );
    let mut t = targets[2].conn().await;
    // The updates after the mark land as their full after-images (REPLACE), the delete finds
    // nothing; not one row as the huge transaction wrote it.
    let rows: Vec<(u64, String)> = t
        .query(format!(
            "SELECT id, CAST(pad AS CHAR) FROM {DB}.big ORDER BY id"
        ))
        .await
        .unwrap();
    let want: Vec<(u64, String)> = vec![
        (7, "changed".into()),
        (first, "changed".into()),
        (100_000, "new".into()),
    ];
    assert_eq!(rows, want, "rows of {DB}.big after the mark");
    assert_eq!(
        fingerprint(&targets[2]).await[1],
        expected[1],
        "{DB}.small after the mark"
    );
}
