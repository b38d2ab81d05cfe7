//! `sluice dump --file-size`: a chunk larger than the size is written as several files, each of
//! about that size and each loadable on its own, listed in key order in metadata.json; the
//! importer reads them back to a table equal to the source, in every format.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::Output;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use sluice_core::layout::Compression;
use sluice_tests::dumps::{read_data_file, read_metadata};
use sluice_tests::stream::Background;
use sluice_tests::tools::checksum_table;
use sluice_tests::{source, target, unique_name};

fn sluice(args: &[&str]) -> Output {
    sluice_tests::run_cli(env!("CARGO_BIN_EXE_sluice-under-test"), args)
}

#[tokio::test]
async fn a_chunk_over_the_file_size_is_split_into_files_that_load_back_equal() {
    let db = unique_name("dump_fsize");
    let mut s = source().conn().await;
    // 40,000 rows of about 120 bytes of SQL each (hashes: Parquet cannot shrink them much).
    s.query_drop(format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(100)); \
         INSERT INTO `{db}`.t SELECT seq, CONCAT(MD5(seq), SHA1(seq), MD5(seq * 7)) FROM `{db}`.seq_1_to_40000"
    ))
    .await
    .unwrap();
    let table = format!("`{db}`.t");
    let want = checksum_table(&mut s, &table).await;
    for (format, compress) in [("sql", "none"), ("csv", "gzip"), ("parquet", "none")] {
        let dir = tempfile::tempdir().unwrap();
        let o = sluice(&[
            "dump",
            "--source",
            &source().url(),
            "--output",
            dir.path().to_str().unwrap(),
            "--filter",
            &format!("{db}.*"),
            "--format",
            format,
            "--compress",
            compress,
            "--csv-header",
            "--chunk-rows",
            "1000000",
            "--file-size",
            "1MiB",
        ]);
        assert!(
            o.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let meta = read_metadata(dir.path());
        let files = &meta.tables[0].chunks;
        let names: Vec<&str> = files.iter().map(|c| c.file.as_str()).collect();
        assert!(files.len() >= 3, "{format}: {names:?}");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{format}: files listed in key order");
        assert!(names[1].contains(".000000001."), "{format}: {names:?}");
        assert_eq!(files.iter().map(|c| c.rows).sum::<u64>(), 40_000);
        if format != "parquet" {
            let compression = if compress == "gzip" {
                Compression::Gzip
            } else {
                Compression::None
            };
            for c in files {
                let bytes = read_data_file(&dir.path().join(&c.file), compression);
                assert!(
                    bytes.len() < (1 << 20) + 4096,
                    "{format}: {} holds {} bytes",
                    c.file,
                    bytes.len()
                );
                // Each file stands alone: the session header, or the CSV header line.
                let head = String::from_utf8_lossy(&bytes[..40.min(bytes.len())]).into_owned();
                assert!(
                    head.starts_with("/*!40101 SET NAMES") || head.starts_with("\"id\",\"v\""),
                    "{format}: {} starts with {head:?}",
                    c.file
                );
            }
        }
        let o = sluice(&[
            "import",
            "--input",
            dir.path().to_str().unwrap(),
            "--target",
            &target().url(),
            "--route",
            &format!("{db}.*={db}_{format}.*"),
        ]);
        assert!(
            o.status.success(),
            "{format} import: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut t = target().conn().await;
        assert_eq!(
            checksum_table(&mut t, &format!("`{db}_{format}`.t")).await,
            want,
            "{format}"
        );
    }
    let o = sluice(&[
        "dump",
        "--source",
        &source().url(),
        "--output",
        tempfile::tempdir().unwrap().path().to_str().unwrap(),
        "--filter",
        &format!("{db}.*"),
        "--file-size",
        "4KiB",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 1MiB"));
}

/// Parts are committed as they close. A dump killed mid-chunk therefore leaves some, and when
/// rows are deleted before the resume, the chunk's redo has fewer parts: the old higher-numbered
/// ones must go, or a tool that lists the folder would load their rows too.
#[tokio::test]
async fn a_resumed_chunk_with_fewer_parts_leaves_no_stale_part_behind() {
    let db = unique_name("dump_fsize_resume");
    let mut s = source().conn().await;
    // Table a: one small chunk, done first. Table t: about 36 MB of SQL in one chunk, many
    // 1 MiB parts, read for a while by the one worker.
    s.query_drop(format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.a (id INT PRIMARY KEY); \
         INSERT INTO `{db}`.a VALUES (1), (2); \
         CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(100)); \
         INSERT INTO `{db}`.t SELECT seq, CONCAT(MD5(seq), SHA1(seq), MD5(seq * 7)) FROM `{db}`.seq_1_to_300000"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_owned();
    let filter = format!("{db}.*");
    let args = [
        "--source",
        &source().url(),
        "--output",
        &out,
        "--filter",
        &filter,
        "--threads",
        "1",
        "--chunk-rows",
        "10000000",
        "--file-size",
        "1MiB",
    ];
    let first = Background::command(env!("CARGO_BIN_EXE_sluice-under-test"), "dump", &args);
    // Killed once a's chunk is recorded done and t has committed four parts.
    let fourth_part = dir.path().join(format!("{db}.t.000000003.sql"));
    let progress = dir.path().join("dump-progress.json");
    let a_file = format!("{db}.a.000000000.sql");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !fourth_part.exists()
        || !std::fs::read_to_string(&progress)
            .unwrap_or_default()
            .contains(&a_file)
    {
        assert!(Instant::now() < deadline, "no 4th part: {}", first.log());
        std::thread::sleep(Duration::from_millis(2));
    }
    first.kill();
    assert!(
        !dir.path().join("metadata.json").exists(),
        "the dump finished before it was killed; the test needs more rows"
    );

    s.query_drop(format!("DELETE FROM `{db}`.t WHERE id > 5000"))
        .await
        .unwrap();
    let o = sluice(&[&["dump", "--resume"][..], &args[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta = read_metadata(dir.path());
    let t = meta.tables.iter().find(|t| t.table == "t").unwrap();
    let listed: Vec<String> = t.chunks.iter().map(|c| c.file.clone()).collect();
    assert_eq!(listed, vec![format!("{db}.t.000000000.sql")]);
    let mut data_files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{db}.t.0")))
        .collect();
    data_files.sort();
    assert_eq!(
        data_files, listed,
        "stale parts left beside the redone chunk"
    );

    let o = sluice(&[
        "import",
        "--input",
        &out,
        "--target",
        &target().url(),
        "--route",
        &format!("{db}.*={db}_resumed.*"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut t = target().conn().await;
    assert_eq!(
        checksum_table(&mut t, &format!("`{db}_resumed`.t")).await,
        checksum_table(&mut s, &format!("`{db}`.t")).await
    );
}
