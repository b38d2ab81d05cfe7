//! `sluice run JOB.toml` end to end: a one-shot job with S3 storage (moto) under live writes
//! ends with the online checksum equal; a job killed with SIGKILL in its phases continues when
//! the same command runs again (one killed in its dump keeps the chunks it finished); a
//! malformed job file is refused with its place named.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use sluice_tests::dumps::{file_identity, finished_chunks};
use sluice_tests::tools::{all_rows, checksum_table};
use sluice_tests::types_table::seed_types_table;
use sluice_tests::{s3, source, target, unique_name};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice-under-test");

fn job_file(
    dir: &std::path::Path,
    name: &str,
    db: &str,
    storage: &str,
    mode: &str,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nmode = \"{mode}\"\n\n[source]\nurl = \"{}\"\n\n[target]\nurl = \"{}\"\n\n\
             [storage]\nurl = \"{storage}\"\n\n[filter]\ninclude = [\"{db}.*\"]\n\n[dump]\nthreads = 2\nchunk_rows = 20000\n\n\
             [checksum]\nthreads = 2\nchunk_rows = 20000\n",
            source().url(),
            target().url()
        ),
    )
    .unwrap();
    path
}

fn run_job(path: &std::path::Path) -> Command {
    let mut c = Command::new(SLUICE);
    c.arg("run").arg(path).env("SLUICE_LOG", "warn");
    for (k, v) in s3().env() {
        c.env(k, v);
    }
    c
}

fn output(mut c: Command) -> Output {
    c.output().unwrap()
}

async fn seed(db: &str, rows: u64) {
    let mut s = source().conn().await;
    s.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS `{db}`; CREATE TABLE `{db}`.big (id INT PRIMARY KEY, v BIGINT, pad VARCHAR(100));
         INSERT INTO `{db}`.big SELECT seq, seq * 7, REPEAT('p', seq % 100) FROM `{db}`.seq_1_to_{rows};"
    ))
    .await
    .unwrap();
}

/// Writes to `big` (ids above the seeded ones and updates of seeded ones) for `seconds`.
async fn writer(db: String, seconds: u64) -> u64 {
    let mut c = source().conn().await;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        c.query_drop(format!(
            "BEGIN; INSERT INTO `{db}`.big VALUES ({}, {n}, 'w') ON DUPLICATE KEY UPDATE v = v + 1; \
             UPDATE `{db}`.big SET v = v - 1 WHERE id = {}; COMMIT",
            1_000_000 + n % 500,
            1 + (n * 13) % 1000
        ))
        .await
        .unwrap();
        n += 1;
    }
    n
}

// Multi-threaded: the writer keeps writing while the test waits on the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_job_with_s3_storage_under_writes_ends_with_an_equal_checksum() {
    let db = seed_types_table("job_s3").await;
    seed(&db, 30_000).await;
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("job_s3");
    let path = job_file(dir.path(), &name, &db, &s3().url(&name), "one-shot");
    let writes = tokio::spawn(writer(db.clone(), 8));
    let o = output(run_job(&path));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "job failed: {stderr}");
    assert!(
        stderr.contains("checksum") && !stderr.contains("DIFFERENT"),
        "{stderr}"
    );
    assert!(
        writes.await.unwrap() > 50,
        "the writer wrote during the job"
    );
    // The same command again: the job is done.
    let o = output(run_job(&path));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_job_with_a_relay_log_streams_through_it() {
    let db = unique_name("job_relay");
    seed(&db, 5_000).await;
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("job_relay");
    let storage = dir.path().join("dump");
    let relay = dir.path().join("relay");
    let path = job_file(
        dir.path(),
        &name,
        &db,
        storage.to_str().unwrap(),
        "one-shot",
    );
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[stream]\nrelay_dir = \"{}\"\nrelay_retention = \"1d\"\n",
        relay.display()
    ));
    std::fs::write(&path, text).unwrap();
    let writes = tokio::spawn(writer(db.clone(), 6));
    let o = output(run_job(&path));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "job failed: {stderr}");
    assert!(
        writes.await.unwrap() > 50,
        "the writer wrote during the job"
    );
    // The events came through the relay: it holds segments, and the job's task mark.
    let folder = std::fs::read_dir(&relay)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("index.json")).unwrap()).unwrap();
    assert!(
        index["segments"].as_array().is_some_and(|s| !s.is_empty()),
        "{index}"
    );
    assert!(
        folder.join("tasks").join(format!("{name}.json")).exists(),
        "the stream did not read the relay"
    );
}

#[tokio::test]
async fn a_job_killed_in_its_phases_continues_when_run_again() {
    let db = unique_name("job_kill");
    seed(&db, 200_000).await;
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("job_kill");
    let storage = dir.path().join("dump");
    let path = job_file(
        dir.path(),
        &name,
        &db,
        storage.to_str().unwrap(),
        "one-shot",
    );
    // Each run is killed some time after the job reached a phase (the phase it records is the
    // next one to run): in the dump, in the import, in the stream.
    let mut killed_in = Vec::new();
    for (phase, delay_ms) in [("dump", 300u64), ("import", 150), ("stream", 200)] {
        let mut c = run_job(&path);
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while job_phase(&name).await.as_deref().unwrap_or("dump") != phase
            && child.try_wait().unwrap().is_none()
        {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no {phase} phase"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        let at = job_phase(&name).await.unwrap_or_else(|| "dump".into());
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            !finished,
            "the run meant to be killed in its {phase} phase finished"
        );
        killed_in.push(at);
        // Writes go on between the runs: the stream must carry them.
        let mut s = source().conn().await;
        s.query_drop(format!(
            "UPDATE `{db}`.big SET v = v + {delay_ms} WHERE id % 1000 = 0; DELETE FROM `{db}`.big WHERE id = {delay_ms}"
        ))
        .await
        .unwrap();
    }
    assert_eq!(killed_in, ["dump", "import", "stream"]);
    let o = output(run_job(&path));
    assert!(
        o.status.success(),
        "final run: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let name_sql = format!("`{db}`.`big`");
    let mut s = source().conn().await;
    let mut t = target().conn().await;
    assert_eq!(
        checksum_table(&mut s, &name_sql).await,
        checksum_table(&mut t, &name_sql).await,
        "CHECKSUM TABLE after the resumed job"
    );
    assert_eq!(
        all_rows(&mut s, &name_sql, "id").await.len(),
        all_rows(&mut t, &name_sql, "id").await.len()
    );
}

// Multi-threaded: the writer keeps writing while the test waits on the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_killed_during_its_dump_keeps_the_chunks_it_finished() {
    let db = unique_name("job_dump_kill");
    seed(&db, 200_000).await;
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("job_dump_kill");
    let storage = dir.path().join("dump");
    let path = job_file(
        dir.path(),
        &name,
        &db,
        storage.to_str().unwrap(),
        "one-shot",
    );
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[dump]\nthreads = 2\nchunk_rows = 20000\n",
        "[dump]\nthreads = 1\nchunk_rows = 2000\n",
    );
    std::fs::write(&path, text).unwrap();
    let writes = tokio::spawn(writer(db.clone(), 6));
    let mut child = run_job(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let kept = loop {
        let done = finished_chunks(&storage);
        if done.len() >= 5 {
            break done;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the job's dump recorded no finished chunks"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !storage.join("metadata.json").exists(),
        "the dump ended before the kill"
    );
    // Writes go on between the runs (between the dump's two snapshots); the rerun's one-shot
    // stream catches up with all of them.
    writes.await.unwrap();
    let mut c = run_job(&path);
    c.env("SLUICE_LOG", "info");
    let o = tokio::task::spawn_blocking(move || output(c))
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "rerun: {log}");
    assert!(log.contains("resuming the dump"), "{log}");
    assert!(log.contains("safe mode"), "{log}");
    let now = finished_chunks(&storage);
    assert!(now.is_empty(), "the progress file stays after the dump");
    for (file, identity) in kept {
        assert_eq!(
            file_identity(&storage.join(&file)),
            Some(identity),
            "{file} was dumped again"
        );
    }
    let name_sql = format!("`{db}`.`big`");
    let (mut s, mut t) = (source().conn().await, target().conn().await);
    assert_eq!(
        checksum_table(&mut s, &name_sql).await,
        checksum_table(&mut t, &name_sql).await,
        "CHECKSUM TABLE after the resumed job"
    );
}

#[test]
fn a_malformed_job_file_is_refused_with_every_place_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"bad\"\n[source]\nurl = \"mysql://root@127.0.0.1:1\"\n[target]\nurl = \"mysql://root@127.0.0.1:2\"\n\
         [storage]\nurl = \"/tmp/x\"\n[dump]\nthread = 4\n[stream]\nstatus_every = \"soon\"\n",
    )
    .unwrap();
    let o = Command::new(SLUICE).arg("run").arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("unknown key `thread` in [dump]; did you mean `threads`?")
            && e.contains("bad.toml:9:1"),
        "{e}"
    );
    assert!(
        e.contains("status_every") && e.contains("bad.toml:11:16"),
        "{e}"
    );
    let example = Command::new(SLUICE)
        .args(["config", "example"])
        .output()
        .unwrap();
    assert!(example.status.success());
    let example_path = dir.path().join("example.toml");
    std::fs::write(&example_path, &example.stdout).unwrap();
    let o = Command::new(SLUICE)
        .args(["config", "validate"])
        .arg(&example_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[tokio::test]
async fn check_reports_every_failing_pre_check() {
    // A source that logs statements, a user without replication grants, a keyless table; a
    // MariaDB target without local_infile (a warning: it loads by bulk INSERT).
    let own =
        sluice_tests::MariaDb::start_with(sluice_tests::Role::Source, "binlog_format=STATEMENT");
    let no_infile = sluice_tests::MariaDb::start_with(sluice_tests::Role::Target, "local_infile=0");
    let mut c = own.conn().await;
    c.query_drop(
        "CREATE DATABASE app; CREATE TABLE app.keyless (a INT); INSERT INTO app.keyless VALUES (1);
         CREATE USER 'weak'@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON *.* TO 'weak'@'%';",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("check.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"check\"\n[source]\nurl = \"mysql://weak:pw@127.0.0.1:{}\"\n[target]\nurl = \"{}\"\n\
             [storage]\nurl = \"{}\"\n[filter]\ninclude = [\"app.*\"]\n",
            own.port,
            no_infile.url(),
            dir.path().join("dump").display()
        ),
    )
    .unwrap();
    let o = Command::new(SLUICE)
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{out}");
    let line = |check: &str| {
        out.lines()
            .find(|l| l.starts_with(check))
            .unwrap_or_else(|| panic!("no `{check}` line in:\n{out}"))
            .to_owned()
    };
    assert!(
        line("binlog_format").contains("FAIL") && line("binlog_format").contains("STATEMENT"),
        "{out}"
    );
    let grants = line("source privileges");
    assert!(
        grants.contains("FAIL")
            && grants.contains("RELOAD")
            && grants.contains("REPLICATION SLAVE"),
        "{out}"
    );
    assert!(
        line("primary keys").contains("WARN") && line("primary keys").contains("app.keyless"),
        "{out}"
    );
    assert!(line("storage").contains("pass"), "{out}");
    assert!(
        line("sort space").contains("pass") && line("sort space").contains("free at"),
        "{out}"
    );
    assert!(
        out.contains("fix: SET GLOBAL binlog_format = 'ROW'"),
        "{out}"
    );
    let infile = line("target local_infile");
    assert!(
        infile.contains("WARN") && infile.contains("bulk INSERT"),
        "{out}"
    );
    assert!(
        line("target load method").contains("pass")
            && line("target load method").contains("COM_STMT_BULK_EXECUTE"),
        "{out}"
    );
    // Told to load with LOAD DATA, the same target's local_infile=0 stops the job.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("[import]\nload_method = \"load-data\"\n");
    std::fs::write(&path, text).unwrap();
    let o = Command::new(SLUICE)
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let infile = out
        .lines()
        .find(|l| l.starts_with("target local_infile"))
        .unwrap_or_default();
    assert!(
        infile.contains("FAIL") && infile.contains("LOAD DATA LOCAL INFILE"),
        "{out}"
    );
}

#[tokio::test]
async fn a_continuous_job_switches_source_when_its_file_changes_and_it_gets_sighup() {
    use sluice_tests::{MariaDb, Role};
    let primary = MariaDb::start(Role::Source);
    let replica = MariaDb::start_with(Role::Source, "server_id=3\nlog_slave_updates=ON");
    sluice_tests::tools::mariadb_client(
        &replica,
        None,
        format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', MASTER_PASSWORD='', \
             MASTER_USE_GTID=slave_pos; START SLAVE;",
            primary.port
        )
        .as_bytes(),
    );
    let db = unique_name("job_hup");
    let mut p = primary.conn().await;
    p.query_drop(format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.n (id INT PRIMARY KEY); INSERT INTO `{db}`.n VALUES (1), (2)"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("job_hup");
    let write = |source: &str| {
        let path = dir.path().join("job.toml");
        std::fs::write(
            &path,
            format!(
                "name = \"{name}\"\nmode = \"continuous\"\n[source]\nurl = \"{source}\"\n[target]\nurl = \"{}\"\n\
                 [storage]\nurl = \"{}\"\n[filter]\ninclude = [\"{db}.*\"]\n",
                target().url(),
                dir.path().join("dump").display()
            ),
        )
        .unwrap();
        path
    };
    let path = write(&primary.url());
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut job = Command::new(SLUICE)
        .arg("run")
        .arg(&path)
        .env("SLUICE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let rows = |db: String| async move {
        let mut t = target().conn().await;
        t.query_first::<i64, _>(format!("SELECT COUNT(*) FROM `{db}`.n"))
            .await
            .unwrap_or(None)
            .unwrap_or(0)
    };
    let wait = |n: i64| {
        let db = db.clone();
        let log = log.path().to_owned();
        async move {
            let started = Instant::now();
            while rows(db.clone()).await < n {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "target below {n} rows; the job said:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // Streaming has begun (the job says so), and a row written now arrives through it.
    let started = Instant::now();
    while !std::fs::read_to_string(log.path())
        .unwrap_or_default()
        .contains("phase stream")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the job never reached its stream phase:\n{}",
            std::fs::read_to_string(log.path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.query_drop(format!("INSERT INTO `{db}`.n VALUES (3)"))
        .await
        .unwrap();
    wait(3).await;
    write(&replica.url());
    let _ = Command::new("kill")
        .args(["-HUP", &job.id().to_string()])
        .status();
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        if text.contains("now reads from") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no switch after SIGHUP:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.query_drop(format!("INSERT INTO `{db}`.n VALUES (4), (5)"))
        .await
        .unwrap();
    wait(5).await;
    let mut r = replica.conn().await;
    let dumps: Vec<String> = r
        .query(
            "SELECT COMMAND FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
        )
        .await
        .unwrap();
    assert!(!dumps.is_empty(), "the job reads from the replica");
    let _ = Command::new("kill")
        .args(["-TERM", &job.id().to_string()])
        .status();
    let status = job.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(log.path()).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuous_job_runs_its_scheduled_checksums_and_status_shows_them() {
    let db = unique_name("job_cron");
    seed(&db, 5_000).await;
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("job_cron");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.path().join("job.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nmode = \"continuous\"\n[source]\nurl = \"{}\"\n[target]\nurl = \"{}\"\n\
             [storage]\nurl = \"{}\"\n[filter]\ninclude = [\"{db}.*\"]\n[control]\nlisten = \"127.0.0.1:{port}\"\n\
             [[checksum.schedule]]\ncron = \"* * * * *\"\n",
            source().url(),
            target().url(),
            dir.path().join("dump").display()
        ),
    )
    .unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut job = Command::new(SLUICE)
        .arg("run")
        .arg(&path)
        .env("SLUICE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let writes = tokio::spawn(writer(db.clone(), 70));
    let control = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let checks = loop {
        let o = Command::new(SLUICE)
            .args(["status", "--control", &control])
            .output()
            .unwrap();
        if o.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            // The API answers from the job's start: the phase first, the stream's figures later.
            assert!(
                ["dump", "import", "stream"].contains(&v["phase"].as_str().unwrap_or("")),
                "{v}"
            );
            if v["checksums"].as_array().is_some_and(|a| !a.is_empty()) {
                assert_eq!(v["phase"], "stream", "{v}");
                assert!(v["transactions"].as_u64().is_some(), "{v}");
                // The earlier phases' figures stay in the status.
                let dumped = v["dump"]["rows"].as_u64().unwrap_or(0);
                assert!(dumped >= 5_000, "{v}");
                assert_eq!(v["import"]["rows"].as_u64(), Some(dumped), "{v}");
                assert_eq!(v["dump"]["finished"], true, "{v}");
                assert!(
                    v["import"]["rows_per_second"].as_f64().unwrap_or(0.0) > 0.0,
                    "{v}"
                );
                break v["checksums"].clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(100),
            "no scheduled checksum within 100 s:\n{}",
            std::fs::read_to_string(log.path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(checks[0]["equal"], true, "{checks}");
    assert_eq!(checks[0]["cron"], "* * * * *");
    let metrics = http_get(port, "/metrics");
    for line in [
        "sluice_job_phase{phase=\"stream\"} 1",
        "sluice_dump_rows_total ",
        "sluice_dump_chunks_done ",
        "sluice_import_rows_total ",
        "sluice_import_rows_per_second ",
        "sluice_stream_transactions_total ",
        "sluice_stream_lag_seconds ",
        "sluice_stream_lag_bytes ",
        "sluice_stream_errors_total 0",
        "sluice_checksum_last_equal 1",
    ] {
        assert!(
            metrics.contains(line),
            "no `{line}` in /metrics:\n{metrics}"
        );
    }
    let history: i64 = target()
        .conn()
        .await
        .exec_first(
            "SELECT COUNT(*) FROM sluice_meta.checksum_history WHERE job = ?",
            (&name,),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(history >= 1);
    writes.abort();
    let _ = Command::new(SLUICE)
        .args(["stop", "--control", &control])
        .output();
    let status = job.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(log.path()).unwrap_or_default()
    );
}

/// A plain HTTP/1.1 GET on loopback; the body.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(socket, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or(answer)
}

/// The phase `sluice_meta.jobs` records for a job (the next one to run), if any.
async fn job_phase(name: &str) -> Option<String> {
    let mut t = target().conn().await;
    t.exec_first("SELECT phase FROM sluice_meta.jobs WHERE name = ?", (name,))
        .await
        .unwrap_or(None)
}
