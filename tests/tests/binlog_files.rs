//! Binlog framing and MariaDB event decoding against real files: the MariaDB 11.8 binlogs in
//! ../shared/fixtures/binlogs/mariadb-poc (expectations from their .expected.md), and files the
//! harness's own MariaDB 10.11 writes.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::path::PathBuf;

use mysql_async::prelude::*;
use sluice_streamer::{ChecksumAlg, EventReader, event_type, mariadb};
use sluice_tests::{source, unique_name};

struct Summary {
    events: usize,
    end: u64,
    gtid_list: Vec<String>,
    gtids: Vec<String>,
    checksum: ChecksumAlg,
}

fn read(path: &std::path::Path) -> Summary {
    let file = std::fs::File::open(path).unwrap();
    let mut r =
        EventReader::new(std::io::BufReader::new(file), path.display().to_string()).unwrap();
    let mut s = Summary {
        events: 0,
        end: 4,
        gtid_list: Vec::new(),
        gtids: Vec::new(),
        checksum: ChecksumAlg::None,
    };
    while let Some(e) = r.next_event().unwrap() {
        s.events += 1;
        s.end = e.end();
        match e.header.event_type {
            event_type::GTID_LIST => {
                s.gtid_list = mariadb::gtid_list(&e.body)
                    .unwrap()
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            }
            event_type::GTID_MARIADB => s.gtids.push(
                mariadb::gtid(&e.body, e.header.server_id)
                    .unwrap()
                    .gtid
                    .to_string(),
            ),
            _ => {}
        }
    }
    s.checksum = r.checksum();
    s
}

fn fixture(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/binlogs")
        .join(rel);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "\n!!!!!!!! FIXTURE SUITE DID NOT RUN: {} is missing (CI has it; a plain clone may not) !!!!!!!!\n",
            path.display()
        );
        None
    }
}

#[test]
fn mariadb_11_8_fixture_files_decode_as_their_readme_says() {
    // mariadb-repl-bin.000009: LogPos 935; PreviousGTIDs 0-10-292193; First 0-10-292194; Last 0-10-292196; 10 events.
    let Some(p9) = fixture("mariadb-poc/domain_id_0/mariadb-repl-bin.000009") else {
        return;
    };
    let s = read(&p9);
    assert_eq!((s.events, s.end), (10, 935));
    assert_eq!(s.gtid_list, ["0-10-292193"]);
    assert_eq!(s.gtids, ["0-10-292194", "0-10-292195", "0-10-292196"]);
    assert_eq!(s.checksum, ChecksumAlg::Crc32);
    // mariadb-repl-bin.000010: LogPos 2210; PreviousGTIDs 0-10-292196; First 0-10-292197; Last 0-10-292206; 24 events.
    let s = read(&fixture("mariadb-poc/domain_id_0/mariadb-repl-bin.000010").unwrap());
    assert_eq!((s.events, s.end), (24, 2210));
    assert_eq!(s.gtid_list, ["0-10-292196"]);
    assert_eq!(s.gtids.first().map(String::as_str), Some("0-10-292197"));
    assert_eq!(s.gtids.last().map(String::as_str), Some("0-10-292206"));
    assert_eq!(s.gtids.len(), 10);
    // domain 1: 28 events, 12 GTIDs, all in domain 1.
    let s = read(&fixture("mariadb-poc/domain_id_1/mariadb-repl-bin.000002").unwrap());
    assert_eq!(s.events, 28);
    assert_eq!(s.gtids.len(), 12);
    assert!(s.gtids.iter().all(|g| g.starts_with("1-")), "{:?}", s.gtids);
}

#[test]
fn a_corrupted_fixture_byte_fails_the_crc_check_naming_the_offset() {
    let Some(p9) = fixture("mariadb-poc/domain_id_0/mariadb-repl-bin.000009") else {
        return;
    };
    let mut bytes = std::fs::read(p9).unwrap();
    bytes[500] ^= 0x01;
    let mut r = EventReader::new(&bytes[..], "flipped").unwrap();
    let err = loop {
        match r.next_event() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the flipped byte went unnoticed"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        err.contains("CRC32") && err.contains("flipped at offset"),
        "{err}"
    );
}

/// A file the harness's MariaDB 10.11 writes: the GTIDs read from it are those the server
/// reports for the same transactions.
#[tokio::test]
async fn live_mariadb_binlog_gtids_match_the_server() {
    let db = unique_name("binlog_live");
    let mut conn = source().conn().await;
    conn.query_drop("FLUSH BINARY LOGS").await.unwrap();
    let (file, _): (String, u64) = {
        let row: mysql_async::Row = conn
            .query_first("SHOW MASTER STATUS")
            .await
            .unwrap()
            .unwrap();
        (row.get(0).unwrap(), row.get(1).unwrap())
    };
    conn.query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .unwrap();
    conn.query_drop(format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    conn.query_drop(format!("INSERT INTO `{db}`.t VALUES (1), (2)"))
        .await
        .unwrap();
    let last: String = conn
        .query_first("SELECT @@last_gtid")
        .await
        .unwrap()
        .unwrap();
    conn.query_drop("FLUSH BINARY LOGS").await.unwrap();
    let s = read(&source().datadir().join(&file));
    assert_eq!(s.checksum, ChecksumAlg::Crc32);
    assert!(s.gtids.contains(&last), "{last} not in {:?}", s.gtids);
    let size = std::fs::metadata(source().datadir().join(&file))
        .unwrap()
        .len();
    assert_eq!(s.end, size, "offsets must add up to the file size");
}

/// The event type codes under the names the fixtures' `.expected.md` summaries use.
fn type_name(code: u8) -> &'static str {
    match code {
        2 => "QUERY",
        3 => "STOP",
        4 => "ROTATE",
        5 => "INTVAR",
        9 => "APPEND_BLOCK",
        13 => "RAND",
        14 => "USER_VAR",
        15 => "FORMAT_DESCRIPTION",
        16 => "XID",
        17 => "BEGIN_LOAD_QUERY",
        18 => "EXECUTE_LOAD_QUERY",
        19 => "TABLE_MAP",
        23 => "WRITE_ROWS_V1",
        24 => "UPDATE_ROWS_V1",
        25 => "DELETE_ROWS_V1",
        26 => "INCIDENT",
        27 => "HEARTBEAT",
        29 => "ROWS_QUERY",
        30 => "WRITE_ROWS_V2",
        31 => "UPDATE_ROWS_V2",
        32 => "DELETE_ROWS_V2",
        33 => "GTID",
        34 => "ANONYMOUS_GTID",
        35 => "PREVIOUS_GTIDS",
        39 => "PARTIAL_UPDATE_ROWS",
        40 => "TRANSACTION_PAYLOAD",
        42 => "GTID_TAGGED",
        160 => "MARIA_ANNOTATE_ROWS",
        161 => "MARIA_BINLOG_CHECKPOINT",
        162 => "MARIA_GTID",
        163 => "MARIA_GTID_LIST",
        _ => "UNKNOWN",
    }
}

/// `NAME ×N, NAME ×N — T events.` from a fixture's `.expected.md`.
fn documented_summary(md: &str) -> Option<(Vec<(String, usize)>, usize)> {
    let line = md
        .lines()
        .skip_while(|l| !l.starts_with("## Event summary"))
        .find(|l| l.contains(" events."))?;
    let (counts, total) = line.rsplit_once(" — ")?;
    let total = total.trim_end_matches(" events.").trim().parse().ok()?;
    let counts = counts
        .split(", ")
        .filter_map(|c| {
            let (name, n) = c.split_once(" ×")?;
            Some((name.trim().to_owned(), n.trim().parse().ok()?))
        })
        .collect();
    Some((counts, total))
}

/// Every binlog file of every fixture set is framed, CRC-checked and counted exactly as its
/// `.expected.md` summary says, with offsets adding up to the file size: MySQL 5.1 to 8.0 and
/// MariaDB 10.5 and 11.8, checksums on and off, relay logs, compressed transactions.
#[test]
fn every_fixture_binlog_frames_and_counts_as_documented() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/binlogs");
    if !root.is_dir() {
        eprintln!(
            "\n!!!!!!!! FIXTURE SUITE DID NOT RUN: {} is missing (CI has it; a plain clone may not) !!!!!!!!\n",
            root.display()
        );
        return;
    }
    let mut mds = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.to_string_lossy().ends_with(".expected.md") {
                mds.push(p);
            }
        }
    }
    mds.sort();
    let mut checked = 0;
    for md in &mds {
        let binlog = PathBuf::from(md.to_string_lossy().trim_end_matches(".expected.md"));
        let text = std::fs::read_to_string(md).unwrap();
        let Some((want, total)) = documented_summary(&text) else {
            continue;
        };
        if !binlog.is_file() {
            continue;
        }
        let bytes = std::fs::read(&binlog).unwrap();
        let name = binlog.display().to_string();
        let mut reader =
            EventReader::new(&bytes[..], name.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        let mut events = 0;
        let mut end = 4;
        loop {
            match reader.next_event() {
                Ok(Some(e)) => {
                    *counts.entry(type_name(e.header.event_type)).or_default() += 1;
                    events += 1;
                    end = e.end();
                }
                Ok(None) => break,
                Err(e) => panic!("{name}: {e}"),
            }
        }
        assert_eq!(events, total, "{name}: event count");
        for (type_, n) in &want {
            assert_eq!(
                counts.get(type_.as_str()).copied().unwrap_or(0),
                *n,
                "{name}: {type_} events ({counts:?})"
            );
        }
        assert_eq!(
            end,
            bytes.len() as u64,
            "{name}: offsets add up to the size"
        );
        // A relay log (two FORMAT_DESCRIPTION events: its own and its source's) keeps the
        // source's log_pos; in a server's own binlog every log_pos is the event's end.
        if counts.get("FORMAT_DESCRIPTION") == Some(&1) {
            assert_eq!(
                reader.log_pos_mismatches(),
                0,
                "{name}: log_pos vs counted offsets"
            );
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} fixture binlogs were checked");
    eprintln!("{checked} fixture binlogs framed and counted as documented");
}
