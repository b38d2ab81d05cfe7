//! `sluice import` against real servers: every type round-trips through each dump format, a
//! mydumper dump loads, duplicates follow each policy with file and line, a small sort budget
//! spills and stays right, and an import killed with SIGKILL at several points finishes
//! exactly when run again.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mysql_async::prelude::*;
use sluice_tests::tools::{all_rows, checksum_table, mariadb_client};
use sluice_tests::types_table::seed_types_table;
use sluice_tests::{source, target, unique_name};

fn sluice(args: &[&str]) -> Output {
    sluice_tests::run_cli(env!("CARGO_BIN_EXE_sluice-under-test"), args)
}

fn dump(db: &str, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "dump",
        "--source",
        &*Box::leak(source().url().into_boxed_str()),
        "--output",
        out.to_str().unwrap(),
    ];
    let filter = format!("{db}.*");
    args.extend(["--filter", &filter, "--threads", "2"]);
    args.extend(extra);
    let o = sluice(&args);
    assert!(
        o.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Fails the test with the command's stderr unless it exited 0.
fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn import(input: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["import", "--input", input.to_str().unwrap(), "--target"];
    let url = target().url();
    args.push(&url);
    args.extend(["--threads", "2", "--json"]);
    args.extend(extra);
    sluice(&args)
}

async fn assert_same_table(db: &str, table: &str, key: &str) {
    let name = format!("`{db}`.`{table}`");
    let mut s = source().conn().await;
    let mut t = target().conn().await;
    let (a, b) = (
        all_rows(&mut s, &name, key).await,
        all_rows(&mut t, &name, key).await,
    );
    assert_eq!(a.len(), b.len(), "{name}: row counts differ");
    assert!(a == b, "{name}: rows differ");
    assert_eq!(
        checksum_table(&mut s, &name).await,
        checksum_table(&mut t, &name).await,
        "{name}: CHECKSUM TABLE differs"
    );
}

/// Dumps the types table with `extra`, imports it with `import_extra` and compares; `bulk` says
/// whether the table must have gone by bulk execution.
async fn types_round_trip(extra: &[&str], import_extra: &[&str], bulk: bool) {
    let db = seed_types_table("import_types").await;
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), extra);
    let out = import(dir.path(), import_extra);
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A Sluice dump's chunks come in key order: nothing needs the sort.
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["tables_sorted"], 0, "{summary}");
    assert_eq!(
        summary["tables_bulk_inserted"],
        u64::from(bulk),
        "{summary}"
    );
    assert_same_table(&db, "t", "id").await;
}

#[tokio::test]
async fn every_type_round_trips_through_a_sql_dump() {
    // On a MariaDB target `--load-method auto` loads by bulk execution.
    types_round_trip(&[], &[], true).await;
}

#[tokio::test]
async fn every_type_round_trips_through_a_zstd_csv_dump() {
    types_round_trip(
        &["--format", "csv", "--compress", "zstd", "--csv-header"],
        &[],
        true,
    )
    .await;
}

/// Every type through each method explicitly: MariaDB's bulk execution, then LOAD DATA (what
/// MySQL targets and rows too big for a bulk execution get).
#[tokio::test]
async fn every_type_round_trips_through_each_load_method() {
    for method in ["bulk-insert", "load-data"] {
        let bulk = method == "bulk-insert";
        types_round_trip(&[], &["--load-method", method], bulk).await;
        types_round_trip(
            &["--format", "csv", "--csv-header"],
            &["--load-method", method],
            bulk,
        )
        .await;
    }
}

#[tokio::test]
async fn parquet_dump_round_trips() {
    let db = unique_name("import_parquet");
    mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; USE `{db}`;
             CREATE TABLE p (id BIGINT UNSIGNED PRIMARY KEY, d DECIMAL(30,10), f FLOAT, dt DATETIME(6), dd DATE, tm TIME(3),
                             ts TIMESTAMP(6) NULL, b VARBINARY(10), s VARCHAR(20), bits BIT(12), big DECIMAL(50,5));
             INSERT INTO p VALUES (18446744073709551615, -12345678901234567890.0123456789, 1.2345678, '1000-01-01 00:00:00.000001',
                                   '9999-12-31', '-838:59:59.999', '2038-01-19 03:14:07.999999', 0x00FF, 'é\\'', b'101010101010',
                                   123456789012345678901234567890123456789012345.12345),
                                  (1, 0, 0, '2000-01-01', '2000-01-01', '00:00:00', NULL, '', '', 0, 0),
                                  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    dump(
        &db,
        dir.path(),
        &["--format", "parquet", "--compress", "zstd"],
    );
    let out = import(dir.path(), &[]);
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_table(&db, "p", "id").await;
}

#[tokio::test]
async fn a_mydumper_dump_imports() {
    let db = unique_name("import_mydumper");
    mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; USE `{db}`;
             CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(40), b BLOB, bits BIT(9));
             INSERT INTO a SELECT seq, MD5(seq), UNHEX(MD5(seq)), seq % 512 FROM seq_1_to_30000;
             CREATE TABLE k (x VARCHAR(10), y INT, PRIMARY KEY (x, y));
             INSERT INTO k SELECT CONCAT('k', seq % 13), seq FROM seq_1_to_2000;"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("mydumper")
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &source().port.to_string(),
            "--user",
            "root",
            "--database",
            &db,
        ])
        .args(["--threads", "2", "--rows", "10000", "--outputdir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .status()
        .expect("mydumper is installed by ci/setup.sh");
    assert!(status.success());
    let out = import(dir.path(), &[]);
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["layout"], "mydumper");
    assert_same_table(&db, "a", "id").await;
    assert_same_table(&db, "k", "x, y").await;
}

/// A hand-made Dumpling-layout folder whose two files share keys 2 and 3.
fn duplicate_folder(db: &str, files: [&str; 2]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join(format!("{db}-schema-create.sql")),
        format!("CREATE DATABASE `{db}`;"),
    )
    .unwrap();
    std::fs::write(
        p.join(format!("{db}.d-schema.sql")),
        "CREATE TABLE `d` (id INT PRIMARY KEY, v VARCHAR(10));",
    )
    .unwrap();
    std::fs::write(p.join(format!("{db}.d.000000000.sql")), files[0]).unwrap();
    std::fs::write(p.join(format!("{db}.d.000000001.sql")), files[1]).unwrap();
    std::fs::write(p.join("metadata"), "Started dump at: 2026-01-01 00:00:00\n").unwrap();
    dir
}

#[tokio::test]
async fn duplicates_follow_each_policy_and_errors_name_files_and_lines() {
    // Out of key order (through the sort), then in key order (loaded as the files come); the
    // expected places of the two duplicates follow.
    let first = "INSERT INTO `d` VALUES\n(1,'a'),\n(2,'first'),\n(3,'first');\n";
    let unordered = [
        first,
        "INSERT INTO `d` VALUES\n(3,'last'),\n(2,'last'),\n(4,'d');\n",
    ];
    let ordered = [
        "INSERT INTO `d` VALUES\n(1,'a'),\n(2,'first'),\n(2,'last'),\n(3,'first');\n",
        "INSERT INTO `d` VALUES\n(3,'last'),\n(4,'d');\n",
    ];
    let cases = [
        (
            unordered,
            1,
            ["0.sql:3 and ", "1.sql:3"],
            ["0.sql:4 and ", "1.sql:2"],
        ),
        (
            ordered,
            0,
            ["0.sql:3 and ", "0.sql:4"],
            ["0.sql:5 and ", "1.sql:2"],
        ),
    ];
    for (files, sorted, id2, id3) in cases {
        let db = unique_name("import_dups");
        let dir = duplicate_folder(&db, files);
        let out = import(dir.path(), &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        for (id, [a, b]) in [(2, id2), (3, id3)] {
            let expected = format!("id={id} at {db}.d.00000000{a}{db}.d.00000000{b}");
            assert!(err.contains(&expected), "{expected}: {err}");
        }

        for (policy, expected) in [("replace", "last"), ("ignore", "first")] {
            let out = import(dir.path(), &["--on-duplicate", policy, "--restart"]);
            assert!(
                out.status.success(),
                "{policy}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(summary["tables_sorted"], sorted, "{policy}: {summary}");
            assert_eq!(summary["duplicates_dropped"], 2, "{policy}: {summary}");
            let mut t = target().conn().await;
            let rows: Vec<(i32, String)> = t
                .query(format!("SELECT id, v FROM `{db}`.d ORDER BY id"))
                .await
                .unwrap();
            assert_eq!(rows.len(), 4, "{policy}");
            assert_eq!(rows[1].1, expected, "{policy}");
            assert_eq!(rows[2].1, expected, "{policy}");
            t.query_drop(format!("DROP TABLE `{db}`.d")).await.unwrap();
        }
    }
}

async fn seed_big(db: &str, rows: u64) {
    mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; USE `{db}`;
             CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(40), k INT, KEY (k));
             INSERT INTO big SELECT (seq * 7919) % {rows} + 1, MD5(seq), seq % 100 FROM seq_1_to_{rows};
             CREATE TABLE small (id INT PRIMARY KEY);
             INSERT INTO small SELECT seq FROM seq_1_to_10;"
        )
        .as_bytes(),
    );
}

#[tokio::test]
async fn a_small_sort_budget_spills_runs_and_deferred_indexes_arrive() {
    let db = unique_name("import_spill");
    seed_big(&db, 200_000).await;
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), &["--chunk-rows", "20000"]);
    // Chunks in key order load without the sort; swapping the first and the last chunk's rows
    // (the dump's checks are per table) puts them out of order, so this import has to sort.
    let chunk = |i: u32| dir.path().join(format!("{db}.big.{i:09}.sql"));
    let (first, last) = (
        std::fs::read(chunk(0)).unwrap(),
        std::fs::read(chunk(9)).unwrap(),
    );
    std::fs::write(chunk(0), last).unwrap();
    std::fs::write(chunk(9), first).unwrap();
    let sort_dir = tempfile::tempdir().unwrap();
    let out = import(
        dir.path(),
        &[
            "--sort-memory",
            "4MiB",
            "--sort-dir",
            sort_dir.path().to_str().unwrap(),
            "--defer-indexes",
        ],
    );
    assert_ok(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        summary["sort_runs_spilled"].as_u64().unwrap() >= 2,
        "{summary}"
    );
    // `big` had to be sorted; `small` came in order.
    assert_eq!(summary["tables_sorted"], 1, "{summary}");
    assert_same_table(&db, "big", "id").await;
    let mut t = target().conn().await;
    let keys: Vec<String> = t
        .exec("SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'big'", (&db,))
        .await
        .unwrap();
    assert!(
        keys.iter().any(|k| k == "k"),
        "the deferred index is missing: {keys:?}"
    );
    assert_eq!(
        std::fs::read_dir(sort_dir.path()).unwrap().count(),
        0,
        "sort runs were left behind"
    );
}

#[tokio::test]
async fn killed_imports_finish_exactly_when_run_again() {
    let db = unique_name("import_kill");
    seed_big(&db, 300_000).await;
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), &["--chunk-rows", "30000"]);
    for delay_ms in [300u64, 900, 1800] {
        let child = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
            .args([
                "import",
                "--input",
                dir.path().to_str().unwrap(),
                "--target",
                &target().url(),
                "--threads",
                "2",
                "--defer-indexes",
            ])
            .env("SLUICE_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap();
        let _ = child.wait_with_output();
    }
    let out = import(dir.path(), &["--defer-indexes"]);
    assert_ok(&out);
    assert_same_table(&db, "big", "id").await;
    assert_same_table(&db, "small", "id").await;
    // The index deferred by the runs that were killed is there in the end.
    let show = format!("SHOW CREATE TABLE `{db}`.big");
    let (mut s, mut t) = (source().conn().await, target().conn().await);
    let created = |row: Option<(String, String)>| row.unwrap().1;
    assert_eq!(
        created(t.query_first(&show).await.unwrap()),
        created(s.query_first(&show).await.unwrap()),
        "the table's definition after killed imports with --defer-indexes"
    );
}

#[tokio::test]
async fn bad_inputs_are_one_line_errors() {
    // Malformed SQL: the file and line are named.
    let db = unique_name("import_bad");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join(format!("{db}.t-schema.sql")),
        "CREATE TABLE `t` (id INT PRIMARY KEY);",
    )
    .unwrap();
    std::fs::write(
        p.join(format!("{db}.t.000000000.sql")),
        "INSERT INTO `t` VALUES\n(1),\n(2, NOW());\n",
    )
    .unwrap();
    std::fs::write(p.join("metadata"), "").unwrap();
    let out = import(p, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{db}.t.000000000.sql:")) && err.contains("literal"),
        "{err}"
    );

    // A truncated Sluice dump file: gzip cut in the middle.
    let src_db = unique_name("import_trunc");
    seed_big(&src_db, 20_000).await;
    let dump_dir = tempfile::tempdir().unwrap();
    dump(&src_db, dump_dir.path(), &["--compress", "gzip"]);
    let victim = std::fs::read_dir(dump_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".sql.gz") && p.to_string_lossy().contains(".big."))
        .unwrap();
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let out = import(dump_dir.path(), &[]);
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Path traversal in metadata.json is refused.
    let evil = tempfile::tempdir().unwrap();
    let meta = serde_json::json!({
        "version": 1, "tool": "sluice", "source": {"endpoint": "x", "flavor": "MariaDB", "version": "10"},
        "consistency": "flush", "snapshot": null, "started_at": "x", "finished_at": "x", "format": "sql",
        "compression": "none", "csv": null, "time_zone": "+00:00",
        "tables": [{"database": "d", "table": "t", "schema_file": "../../etc/passwd", "columns": [], "primary_key": [],
                    "rows": 0, "bytes": 0, "chunks": []}]
    });
    std::fs::write(evil.path().join("metadata.json"), meta.to_string()).unwrap();
    let out = import(evil.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("outside the input"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A target table that already holds other data is refused.
    let exists = unique_name("import_exists");
    mariadb_client(target(), None, format!("CREATE DATABASE `{exists}`; CREATE TABLE `{exists}`.t (id INT PRIMARY KEY); INSERT INTO `{exists}`.t VALUES (9);").as_bytes());
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::write(
        dir2.path().join(format!("{exists}.t-schema.sql")),
        "CREATE TABLE `t` (id INT PRIMARY KEY);",
    )
    .unwrap();
    std::fs::write(
        dir2.path().join(format!("{exists}.t.000000000.sql")),
        "INSERT INTO `t` VALUES (1);",
    )
    .unwrap();
    std::fs::write(dir2.path().join("metadata"), "").unwrap();
    let out = import(dir2.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An unreachable target.
    let out = sluice(&[
        "import",
        "--input",
        dump_dir.path().to_str().unwrap(),
        "--target",
        "mysql://root@127.0.0.1:1",
    ]);
    assert_eq!(out.status.code(), Some(3));
}

/// A dump written to S3 imports from S3.
#[tokio::test]
async fn a_dump_in_s3_imports_from_s3() {
    let db = unique_name("import_s3");
    seed_big(&db, 30_000).await;
    let prefix = unique_name("import_s3");
    let url = sluice_tests::s3().url(&prefix);
    let env = sluice_tests::s3().env();
    let run = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"));
        c.args(args).env("SLUICE_LOG", "warn");
        for (k, v) in &env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let filter = format!("{db}.*");
    let out = run(&[
        "dump",
        "--source",
        &source().url(),
        "--output",
        &url,
        "--filter",
        &filter,
        "--compress",
        "zstd",
        "--chunk-rows",
        "10000",
    ]);
    assert_ok(&out);
    let out = run(&[
        "import",
        "--input",
        &url,
        "--target",
        &target().url(),
        "--threads",
        "2",
    ]);
    assert_ok(&out);
    assert_same_table(&db, "big", "id").await;
}

/// A mariadb-dump single-file dump (with a trigger) imports; the trigger arrives after the data,
/// so it does not fire on restored rows.
#[tokio::test]
async fn a_mysqldump_file_imports_and_its_triggers_do_not_fire_on_restored_rows() {
    let db = unique_name("import_mysqldump");
    mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; USE `{db}`;
             CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(40), b BLOB);
             CREATE TABLE audit (n INT AUTO_INCREMENT PRIMARY KEY, id INT);
             INSERT INTO a SELECT seq, MD5(seq), UNHEX(MD5(seq)) FROM seq_1_to_5000;
             CREATE TRIGGER a_ins AFTER INSERT ON a FOR EACH ROW INSERT INTO audit (id) VALUES (NEW.id);"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.sql");
    let out = Command::new("mariadb-dump")
        .args([
            "--no-defaults",
            "--protocol=TCP",
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            "--triggers",
            "--databases",
            &db,
        ])
        .arg(format!("-P{}", source().port))
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(&file, &out.stdout).unwrap();
    let out = import(&file, &[]);
    assert_ok(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["layout"], "mysqldump");
    assert_same_table(&db, "a", "id").await;
    let mut t = target().conn().await;
    let audit: u64 = t
        .query_first(format!("SELECT COUNT(*) FROM `{db}`.audit"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(audit, 0, "the trigger fired on restored rows");
    let triggers: u64 = t
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?",
            (&db,),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(triggers, 1, "the trigger was not created");
}

/// `--import-mode` raises the target's redo log settings for the import and restores them; a
/// run killed with SIGKILL leaves them recorded, and `--restore-target-settings` puts them back.
#[tokio::test]
async fn import_mode_restores_target_settings_even_after_a_kill() {
    // A private target: the test changes global settings.
    let private = sluice_tests::MariaDb::start(sluice_tests::Role::Target);
    let mut conn = private.conn().await;
    conn.query_drop("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
        .await
        .unwrap();
    let original = redo_settings(&mut conn).await;
    assert_eq!(original.0, 1);

    let db = unique_name("import_mode");
    seed_big(&db, 200_000).await;
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), &["--chunk-rows", "20000"]);
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
            .args(["import", "--target", &private.url(), "--threads", "2"])
            .args(extra)
            .env("SLUICE_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&["--input", dir.path().to_str().unwrap(), "--import-mode"]);
    assert_ok(&out);
    assert_eq!(
        redo_settings(&mut conn).await,
        original,
        "settings not restored after the import"
    );

    // Kill a run while import mode is on.
    conn.query_drop(format!("DROP DATABASE `{db}`"))
        .await
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args([
            "import",
            "--target",
            &private.url(),
            "--threads",
            "2",
            "--import-mode",
            "--input",
            dir.path().to_str().unwrap(),
        ])
        .env("SLUICE_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while redo_settings(&mut conn).await.0 != 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "import mode never took effect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        redo_settings(&mut conn).await.0,
        2,
        "the kill should leave import mode on"
    );
    let recorded: u64 = conn
        .query_first("SELECT COUNT(*) FROM sluice_meta.target_settings")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        recorded, 2,
        "the original settings must be recorded before they change"
    );
    let out = run(&["--restore-target-settings"]);
    assert_ok(&out);
    assert_eq!(
        redo_settings(&mut conn).await,
        original,
        "--restore-target-settings did not restore"
    );
}

async fn redo_settings(conn: &mut mysql_async::Conn) -> (u64, u64) {
    conn.query_first(
        "SELECT @@GLOBAL.innodb_flush_log_at_trx_commit, @@GLOBAL.innodb_log_file_size",
    )
    .await
    .unwrap()
    .unwrap()
}

#[tokio::test]
async fn rows_that_differ_from_the_dumps_fingerprint_fail_verification() {
    let db = unique_name("import_verify");
    mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.t (id INT PRIMARY KEY, s VARCHAR(10));
             INSERT INTO `{db}`.t VALUES (1, 'abc'), (2, 'def');"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), &["--format", "csv"]);
    // A data file edited after the dump, still well-formed: the rows sent are not the dump's.
    let data = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "csv"))
        .unwrap();
    let text = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, text.replace("def", "xyz")).unwrap();
    let out = import(dir.path(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{db}.t")) && err.contains("fingerprint of the rows sent"),
        "{err}"
    );

    // The file restored, but a target column too narrow: LOAD DATA truncates with a warning,
    // so the rows are read back, and they are not the dump's.
    std::fs::write(&data, text).unwrap();
    mariadb_client(
        target(),
        None,
        format!(
            "DROP DATABASE `{db}`; CREATE DATABASE `{db}`;
             CREATE TABLE `{db}`.t (id INT PRIMARY KEY, s VARCHAR(2));"
        )
        .as_bytes(),
    );
    let out = import(dir.path(), &["--no-schema", "--restart"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("fingerprint of the rows read back"), "{err}");
}

#[tokio::test]
async fn deferred_indexes_by_default_leave_every_definition_as_on_the_source() {
    let db = unique_name("import_defer");
    mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; USE `{db}`;
             CREATE TABLE parent (id INT PRIMARY KEY, u INT, k INT, t TEXT, UNIQUE KEY (u), KEY (k), FULLTEXT KEY (t));
             INSERT INTO parent SELECT seq, seq, seq % 10, CONCAT('word', seq) FROM seq_1_to_2000;
             CREATE TABLE child (id INT PRIMARY KEY, p INT, k INT, KEY (k), FOREIGN KEY (p) REFERENCES parent (id));
             INSERT INTO child SELECT seq, seq, seq % 7 FROM seq_1_to_2000;
             CREATE TABLE ai (a INT PRIMARY KEY, id INT NOT NULL AUTO_INCREMENT, k INT, KEY (id), KEY (k));
             INSERT INTO ai (a, k) SELECT seq, seq % 5 FROM seq_1_to_2000;
             CREATE TABLE p2 (id INT PRIMARY KEY, u INT, KEY (u));
             INSERT INTO p2 SELECT seq, seq FROM seq_1_to_300000;
             CREATE TABLE zc (id INT PRIMARY KEY, pu INT, FOREIGN KEY (pu) REFERENCES p2 (u));
             INSERT INTO zc SELECT seq, seq FROM seq_1_to_100;"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), &[]);
    let out = import(dir.path(), &[]);
    assert_ok(&out);
    let (mut s, mut t) = (source().conn().await, target().conn().await);
    // zc is created while p2 (big) still loads, and references its plain KEY (u): p2 must
    // keep that index from the start.
    for table in ["parent", "child", "ai", "p2", "zc"] {
        let show = format!("SHOW CREATE TABLE `{db}`.`{table}`");
        let created = |row: Option<(String, String)>| row.unwrap().1;
        assert_eq!(
            created(t.query_first(&show).await.unwrap()),
            created(s.query_first(&show).await.unwrap()),
            "{table}"
        );
        assert_same_table(&db, table, if table == "ai" { "a" } else { "id" }).await;
    }
}

/// A 4 MiB `max_allowed_packet` (what many managed servers run with) against the loaders'
/// batches: 16 MiB LOAD DATA streams, bulk executions kept to a quarter of the packet, and a
/// TEXT table whose 3 MiB row cannot go in one bulk execution, loaded again with LOAD DATA.
#[tokio::test]
async fn a_target_with_a_small_max_allowed_packet_takes_every_batch() {
    let small =
        sluice_tests::MariaDb::start_with(sluice_tests::Role::Target, "max_allowed_packet=4M");
    let db = unique_name("import_packet");
    seed_big(&db, 200_000).await;
    mariadb_client(
        source(),
        None,
        format!(
            "USE `{db}`; CREATE TABLE notes (id INT PRIMARY KEY, body MEDIUMTEXT);
             CREATE TABLE short_notes (id INT PRIMARY KEY, body TEXT);
             INSERT INTO notes SELECT seq, REPEAT('n', seq) FROM seq_1_to_2000;
             INSERT INTO notes VALUES (3000, REPEAT('big ', 786432));
             INSERT INTO short_notes SELECT seq, REPEAT('s', seq % 300) FROM seq_1_to_2000;
             CREATE TABLE note_refs (id INT PRIMARY KEY, note INT, FOREIGN KEY (note) REFERENCES notes (id));
             INSERT INTO note_refs VALUES (1, 3000), (2, 7);"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), &[]);
    for method in ["auto", "load-data"] {
        let into = format!("{db}_{}", &method[..4]);
        let out = sluice(&[
            "import",
            "--input",
            dir.path().to_str().unwrap(),
            "--target",
            &small.url(),
            "--threads",
            "2",
            "--json",
            "--load-method",
            method,
            "--route",
            &format!("{db}.*={into}.*"),
        ]);
        assert_ok(&out);
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // auto: every table by bulk execution but `notes`, by LOAD DATA after all.
        let tables = summary["tables"].as_u64().unwrap();
        let bulk = if method == "auto" { tables - 1 } else { 0 };
        assert_eq!(summary["tables_bulk_inserted"], bulk, "{method}: {summary}");
        let (mut s, mut t) = (source().conn().await, small.conn().await);
        let rows: Option<u64> = t
            .query_first(format!("SELECT COUNT(*) FROM `{into}`.big"))
            .await
            .unwrap();
        assert_eq!(rows, Some(200_000), "{method}");
        for table in ["notes", "short_notes"] {
            assert_eq!(
                checksum_table(&mut t, &format!("`{into}`.{table}")).await,
                checksum_table(&mut s, &format!("`{db}`.{table}")).await,
                "{method}: {table}"
            );
        }
    }
}

/// MariaDB runs bulk executions only with row-based logging: a target that logs statements
/// gets LOAD DATA, and `--load-method bulk-insert` is refused naming why.
#[tokio::test]
async fn a_target_logging_statements_loads_with_load_data() {
    let logging = sluice_tests::MariaDb::start_with(
        sluice_tests::Role::Target,
        "log-bin\nbinlog_format=STATEMENT",
    );
    let db = unique_name("import_stmt_log");
    mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(20));
             INSERT INTO `{db}`.t SELECT seq, CONCAT('v', seq) FROM `{db}`.seq_1_to_3000;"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), &[]);
    let out = sluice(&[
        "import",
        "--input",
        dir.path().to_str().unwrap(),
        "--target",
        &logging.url(),
        "--json",
    ]);
    assert_ok(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["tables_bulk_inserted"], 0, "{summary}");
    let (mut s, mut t) = (source().conn().await, logging.conn().await);
    let name = format!("`{db}`.t");
    assert_eq!(
        checksum_table(&mut t, &name).await,
        checksum_table(&mut s, &name).await
    );
    let forced = sluice(&[
        "import",
        "--input",
        dir.path().to_str().unwrap(),
        "--target",
        &logging.url(),
        "--load-method",
        "bulk-insert",
        "--restart",
    ]);
    let err = String::from_utf8_lossy(&forced.stderr);
    assert_eq!(forced.status.code(), Some(2), "{err}");
    assert!(err.contains("binlog_format=STATEMENT"), "{err}");
}

/// Dumps written before fingerprint V2 (metadata version 1) still verify: the importer computes
/// the fingerprint their metadata version names.
#[tokio::test]
async fn a_version_1_dump_verifies_with_the_fingerprint_it_carries() {
    use sluice_core::layout::{FingerprintVersion, RowFingerprint};
    let db = unique_name("import_fp_v1");
    mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.t (id INT PRIMARY KEY, s VARCHAR(80), d DECIMAL(9,2));
             INSERT INTO `{db}`.t SELECT seq, REPEAT(CHAR(65 + seq % 26), seq % 70), seq / 7 FROM `{db}`.seq_1_to_3000;"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), &[]);
    let meta_path = dir.path().join("metadata.json");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    assert_eq!(written["version"], 2);

    // The table's V1 fingerprint, as an older Sluice recorded it (the chunks' sum is compared).
    let mut s = source().conn().await;
    let rows: Vec<mysql_async::Row> = s
        .query(format!("SELECT id, s, d FROM `{db}`.t"))
        .await
        .unwrap();
    let mut v1 = RowFingerprint::new(FingerprintVersion::V1);
    for row in &rows {
        let cells = sluice_core::cells(row);
        v1.add_row(cells.iter().map(|c| c.as_deref()));
    }
    let as_written_by = |version: u32, fingerprint: &str| {
        let mut meta = written.clone();
        meta["version"] = version.into();
        let chunks = meta["tables"][0]["chunks"].as_array_mut().unwrap();
        for (i, c) in chunks.iter_mut().enumerate() {
            c["fingerprint"] = if i == 0 {
                fingerprint.into()
            } else {
                "0000000000000000".into()
            };
        }
        std::fs::write(&meta_path, meta.to_string()).unwrap();
    };

    as_written_by(1, &v1.hex());
    let out = import(dir.path(), &["--route", &format!("{db}.*={db}_v1.*")]);
    assert_ok(&out);
    // A V2 value under version 1 is a mismatch: the version, not a guess, picks the algorithm.
    let mut v2 = RowFingerprint::new(FingerprintVersion::V2);
    for row in &rows {
        let cells = sluice_core::cells(row);
        v2.add_row(cells.iter().map(|c| c.as_deref()));
    }
    assert_ne!(v1.hex(), v2.hex());
    as_written_by(1, &v2.hex());
    let out = import(dir.path(), &["--route", &format!("{db}.*={db}_wrong.*")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("fingerprint"), "{err}");
    // And the same value under version 2 is right.
    as_written_by(2, &v2.hex());
    let out = import(dir.path(), &["--route", &format!("{db}.*={db}_v2.*")]);
    assert_ok(&out);
}

/// An all-ASCII batch goes as `CHARACTER SET binary` (LOAD DATA) or as BLOB parameters (bulk
/// execution) where every column reads ASCII as itself (latin1, utf8mb4, temporals), and as
/// utf8mb4 where it does not (utf16; MariaDB's INET6, INET4 and UUID, which would take a binary
/// string as their packed value), or once a value is not ASCII: every table still lands equal.
#[tokio::test]
async fn ascii_batches_load_exactly_into_latin1_utf8mb4_and_utf16_columns() {
    let db = unique_name("import_ascii");
    mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; USE `{db}`;
             CREATE TABLE l1 (id INT PRIMARY KEY, c CHAR(20), v VARCHAR(50), e ENUM('a','b c')) CHARSET latin1;
             CREATE TABLE u8 (id INT PRIMARY KEY, v VARCHAR(50), j JSON) CHARSET utf8mb4;
             CREATE TABLE u16 (id INT PRIMARY KEY, v VARCHAR(50)) CHARSET utf16;
             CREATE TABLE mixed (id INT PRIMARY KEY, v VARCHAR(50)) CHARSET latin1;
             CREATE TABLE addr (id INT PRIMARY KEY, a INET6, b INET4, u UUID, at DATETIME(3));
             INSERT INTO addr SELECT seq, CONCAT('2001:db8:0:0::', HEX(seq)), CONCAT('10.0.', seq DIV 256, '.', seq % 256),
               CONCAT('123e4567-e89b-12d3-a456-', LPAD(seq, 12, '0')), '2026-12-03 10:00:00.123' FROM seq_1_to_5000;
             INSERT INTO l1 SELECT seq, CONCAT('c', seq), REPEAT('x\\\\y\t', seq % 9), IF(seq % 2, 'a', 'b c') FROM seq_1_to_5000;
             INSERT INTO u8 SELECT seq, CONCAT('v ', seq), JSON_OBJECT('k', seq) FROM seq_1_to_5000;
             INSERT INTO u16 SELECT seq, CONCAT('w', seq) FROM seq_1_to_5000;
             INSERT INTO mixed SELECT seq, IF(seq = 4000, 'caf\\xE9', 'plain') FROM seq_1_to_5000;
             UPDATE mixed SET v = CONVERT(_utf8mb4'café ß' USING latin1) WHERE id = 4000;"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), &[]);
    let (mut s, mut t) = (source().conn().await, target().conn().await);
    for method in ["bulk-insert", "load-data"] {
        let into = format!("{db}_{}", &method[..4]);
        let out = import(
            dir.path(),
            &[
                "--route",
                &format!("{db}.*={into}.*"),
                "--load-method",
                method,
            ],
        );
        assert_ok(&out);
        for table in ["l1", "u8", "u16", "mixed", "addr"] {
            let want = checksum_table(&mut s, &format!("`{db}`.{table}")).await;
            assert!(want.is_some());
            assert_eq!(
                checksum_table(&mut t, &format!("`{into}`.{table}")).await,
                want,
                "{method}: {table}"
            );
        }
    }
}

/// A batch that InnoDB rolls back for a lock conflict (a deadlock between two loaders of one
/// table, or a lock wait timeout) is sent again, and the table ends exact. Here another
/// session holds a lock on a row the batch must check, past the target's 1 s lock wait
/// timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_rolled_back_by_a_lock_conflict_is_sent_again() {
    let waits =
        sluice_tests::MariaDb::start_with(sluice_tests::Role::Target, "innodb_lock_wait_timeout=1");
    let db = unique_name("import_lock");
    mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; USE `{db}`; CREATE TABLE t (id INT PRIMARY KEY, v INT);
             INSERT INTO t SELECT seq, seq * 3 FROM seq_1_to_1000;"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    dump(&db, dir.path(), &[]);

    // A session inserts a row with one of the dump's keys and keeps its transaction open, so
    // the dump's row with that key waits for the lock (the table itself is empty: the rows a
    // table held before a --no-schema import are another test's matter).
    let mut blocker = waits.conn().await;
    blocker
        .query_drop(format!(
            "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v INT)"
        ))
        .await
        .unwrap();
    blocker
        .query_drop(format!("BEGIN; INSERT INTO `{db}`.t VALUES (500, 0)"))
        .await
        .unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args([
            "import",
            "--input",
            dir.path().to_str().unwrap(),
            "--target",
        ])
        .arg(waits.url())
        .args(["--threads", "2", "--no-schema"])
        .env("SLUICE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();

    // Once a loader waits (its 1000 rows take milliseconds otherwise), let its wait time out
    // at least once, then end the blocker.
    let mut watcher = waits.conn().await;
    let started = std::time::Instant::now();
    loop {
        let waiting: Option<u64> = watcher
            .query_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE (INFO LIKE 'LOAD DATA%' OR INFO LIKE 'INSERT IGNORE%') AND TIME_MS > 300",
            )
            .await
            .unwrap();
        if waiting.unwrap_or(0) > 0 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before a loader was seen waiting for the lock: {}",
            std::fs::read_to_string(log.path()).unwrap()
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no loader ever waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    blocker.query_drop("ROLLBACK").await.unwrap();

    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    let stderr = std::fs::read_to_string(log.path()).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("sending the batch again") && stderr.contains("code=1205"),
        "{stderr}"
    );
    let (rows, sum): (u64, u64) = watcher
        .query_first(format!("SELECT COUNT(*), SUM(v) FROM `{db}`.t"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rows, sum), (1000, 3 * 500 * 1001));
}
