//! `stream-bench`: the same binlog window applied by MariaDB's own replica and by
//! `sluice stream`, side by side.
//!
//! ```sh
//! cargo build --release -p sluice-jobs -p sluice-benches
//! target/release/stream-bench [SECONDS] [TABLES] [TABLE_SIZE]   # default 60 4 100000
//! ```
//!
//! One SOURCE and six TARGETs (durable InnoDB: `innodb_flush_log_at_trx_commit=1`, as a real
//! replica runs). Every target replicates SOURCE natively while `sysbench prepare` loads it,
//! then stops: they all hold the same starting data at the position START. Then
//! `sysbench oltp_write_only --threads=4 --time=SECONDS` writes the window START..END on
//! SOURCE, while the two native replicas' IO threads download it into their relay logs. Each
//! case then applies START..END and is timed:
//!
//! * native, `slave_parallel_threads=0` — the SQL thread until END;
//! * native, `slave_parallel_threads=4`, `slave_parallel_mode=optimistic`;
//! * `sluice stream --from START --until END --workers 1`;
//! * `sluice stream --from START --until END --workers 4`;
//! * `sluice stream … --workers 1 --relay-dir DIR`, the window pulled into the relay log by
//!   `sluice relay` while sysbench wrote it (as the native IO threads download theirs);
//! * `sluice stream … --workers 1` with the checkpoint left out of the apply transactions
//!   (hidden `--bench-without-checkpoints`): what recording it in every group costs.
//!
//! Printed: seconds, transactions/s, rows/s, and Sluice's ratio to each native case. At the end
//! every target's `CHECKSUM TABLE` must equal SOURCE's, or the run is worthless and panics.

use std::process::{Command, Stdio};
use std::time::Instant;

use sluice_benches::{measure, query, sibling_binary, sysbench_prepare};
use sluice_tests::tools::mariadb_client;
use sluice_tests::{MariaDb, Role};

fn replicate(replica: &MariaDb, source: &MariaDb) {
    mariadb_client(
        replica,
        None,
        format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', MASTER_PASSWORD='', \
             MASTER_USE_GTID=slave_pos; START SLAVE;",
            source.port
        )
        .as_bytes(),
    );
}

fn checksums(server: &MariaDb, tables: u64) -> String {
    let list: Vec<String> = (1..=tables).map(|i| format!("sbtest.sbtest{i}")).collect();
    query(server, &format!("CHECKSUM TABLE {}", list.join(", ")))
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = *args.first().unwrap_or(&60);
    let tables = *args.get(1).unwrap_or(&4);
    let table_size = *args.get(2).unwrap_or(&100_000);

    let src = MariaDb::start_with(Role::Source, "innodb_buffer_pool_size=1G");
    let targets: Vec<MariaDb> = (0..6)
        .map(|i| {
            MariaDb::start_with(
                Role::Target,
                &format!(
                    "innodb_buffer_pool_size=512M\ninnodb_flush_log_at_trx_commit=1\nserver_id={}",
                    11 + i
                ),
            )
        })
        .collect();
    for t in &targets {
        replicate(t, &src);
    }
    sysbench_prepare(&src, tables, table_size);
    let start_gtid = query(&src, "SELECT @@gtid_binlog_pos");
    for t in &targets {
        let waited = query(t, &format!("SELECT MASTER_GTID_WAIT('{start_gtid}', 1200)"));
        assert_eq!(
            waited, "0",
            "a target did not catch up with the prepared data"
        );
    }
    // Natives keep downloading (IO thread); Sluice's targets stop replicating for good.
    for (i, t) in targets.iter().enumerate() {
        if i < 2 {
            query(t, "STOP SLAVE SQL_THREAD");
        } else {
            query(t, "STOP SLAVE; RESET SLAVE ALL");
        }
    }
    let status = query(&src, "SHOW MASTER STATUS");
    let mut fields = status.split('\t');
    let start_file = fields.next().unwrap_or_default().to_owned();
    let start_pos = fields.next().unwrap_or_default().to_owned();

    let sluice = sibling_binary("sluice");
    let from = format!("{start_file}:{start_pos}");
    let relay = tempfile::tempdir().expect("relay folder");
    let mut puller = Command::new(&sluice)
        .args(["relay", "--source", &src.url(), "--relay-dir"])
        .arg(relay.path())
        .args(["--from", &from])
        .env("SLUICE_LOG", "warn")
        .spawn()
        .expect("start sluice relay");
    eprintln!("recording {seconds} s of sysbench oltp_write_only --threads=4 on SOURCE …");
    let ok = Command::new("sysbench")
        .args([
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            &format!("--mysql-port={}", src.port),
        ])
        .args([
            "--mysql-user=root",
            "--mysql-password=",
            "--mysql-db=sbtest",
        ])
        .args([
            &format!("--tables={tables}"),
            &format!("--table-size={table_size}"),
        ])
        .args([
            "--threads=4",
            &format!("--time={seconds}"),
            "oltp_write_only",
            "run",
        ])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "sysbench run failed");
    let end_gtid = query(&src, "SELECT @@gtid_binlog_pos");
    let status = query(&src, "SHOW MASTER STATUS");
    let mut fields = status.split('\t');
    let end_file = fields.next().unwrap_or_default().to_owned();
    let end_pos = fields.next().unwrap_or_default().to_owned();
    let seq = |g: &str| {
        g.rsplit('-')
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let transactions = seq(&end_gtid) - seq(&start_gtid);
    eprintln!(
        "window {start_file}:{start_pos} .. {end_file}:{end_pos}: {transactions} transactions"
    );
    for t in &targets[..2] {
        // The relay log must hold the whole window before the SQL thread is timed.
        loop {
            let s = query(t, "SHOW SLAVE STATUS");
            if s.contains(&end_file) && s.split('\t').any(|f| f == end_pos) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    // The relay log must hold the whole window too.
    loop {
        let reached = std::fs::read_dir(relay.path())
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .and_then(|e| std::fs::read(e.path().join("index.json")).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|i| {
                let last = i["segments"].as_array()?.last()?.clone();
                Some((
                    last["file"].as_str()?.to_owned(),
                    last["end_offset"].as_u64()?,
                ))
            })
            .is_some_and(|(f, o)| {
                (f.as_str(), o) >= (end_file.as_str(), end_pos.parse().unwrap_or(0))
            });
        if reached {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &puller.id().to_string()])
        .status();
    let _ = puller.wait();

    let mut results: Vec<(String, f64, u64)> = Vec::new();
    // Timed: the SQL thread from START to END, the window already in the relay log.
    for (i, threads) in [(0usize, 0u32), (1, 4)] {
        let t = &targets[i];
        let started = Instant::now();
        query(t, "START SLAVE SQL_THREAD");
        let waited = query(t, &format!("SELECT MASTER_GTID_WAIT('{end_gtid}', 3600)"));
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(waited, "0", "native replica did not reach the end");
        let name = if threads == 0 {
            "native replica, slave_parallel_threads=0".to_owned()
        } else {
            "native replica, slave_parallel_threads=4 optimistic".to_owned()
        };
        eprintln!("  {name}: {secs:.2} s");
        results.push((name, secs, 0));
    }
    let until = format!("{end_file}:{end_pos}");
    for (i, workers, via_relay, checkpoints) in [
        (2usize, "1", false, true),
        (3, "4", false, true),
        (4, "1", true, true),
        (5, "1", false, false),
    ] {
        let t = &targets[i];
        let mut c = Command::new(&sluice);
        c.args([
            "stream",
            "--source",
            &src.url(),
            "--target",
            &t.url(),
            "--from",
            &from,
        ])
        .args([
            "--until",
            &until,
            "--filter",
            "sbtest.*",
            "--workers",
            workers,
        ])
        .env("SLUICE_LOG", "warn");
        if via_relay {
            c.arg("--relay-dir").arg(relay.path());
        }
        if !checkpoints {
            c.arg("--bench-without-checkpoints");
        }
        let m = measure(c);
        let name = match (via_relay, checkpoints) {
            (true, _) => format!("sluice stream --workers {workers} --relay-dir"),
            (false, false) => format!("sluice stream --workers {workers}, no checkpoints"),
            (false, true) => format!("sluice stream --workers {workers}"),
        };
        eprintln!(
            "  {name}: {:.2} s ({:.2} CPU-s, {:.0} MiB)",
            m.seconds, m.cpu_seconds, m.peak_rss_mib
        );
        results.push((name, m.seconds, 1));
    }
    let want = checksums(&src, tables);
    for (i, t) in targets.iter().enumerate() {
        assert_eq!(
            checksums(t, tables),
            want,
            "target {i} differs from SOURCE after the window"
        );
    }
    let rows = transactions * 4;
    println!(
        "\n{transactions} transactions ({rows} changed rows; sysbench oltp_write_only, 4 threads, {seconds} s; {tables} x {table_size} rows)\n"
    );
    println!(
        "| applier | seconds | transactions/s | rows/s | vs native serial | vs native 4 threads |"
    );
    println!("|---|---|---|---|---|---|");
    let (serial, parallel) = (results[0].1, results[1].1);
    for (name, secs, _) in &results {
        println!(
            "| {name} | {secs:.2} | {:.0} | {:.0} | {:.2}x | {:.2}x |",
            transactions as f64 / secs,
            rows as f64 / secs,
            serial / secs,
            parallel / secs
        );
    }
}
