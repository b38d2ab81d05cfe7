//! `sluice dump --file-size`: a chunk larger than the size is written as several files, each of
//! about that size and each loadable on its own, listed in key order in metadata.json; the
//! importer reads them back to a table equal to the source, in every format.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::Output;

use mysql_async::prelude::*;
use sluice_core::layout::Compression;
use sluice_tests::dumps::{read_data_file, read_metadata};
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
