//! `import-bench`: sluice import against myloader into one throwaway target, in one run.
//!
//! ```sh
//! cargo build --release -p sluice-jobs -p sluice-benches
//! target/release/import-bench [REPS] [TABLES] [TABLE_SIZE]     # default 3 8 250000
//! ```
//!
//! SOURCE is loaded with `sysbench prepare`; mydumper and sluice dump it once each; then, REPS
//! times interleaved, the target's sbtest database is dropped and myloader (mydumper's dump)
//! or sluice import (Sluice's dump; also with --import-mode) loads it. The target runs
//! MariaDB's durable defaults (innodb_flush_log_at_trx_commit=1, a 96 MiB redo log). Printed:
//! median seconds (min–max), rows/s, the ratio to myloader, peak RSS and CPU seconds of the
//! client and of the target server.
//!
//! A last row is no tool but the target's own ceiling: the same rows as tab-separated files on
//! the target's disk (`SELECT … INTO OUTFILE` on the source), loaded with server-side
//! `LOAD DATA INFILE` into tables without the secondary index, which is added after, on two
//! sessions of four tables each. The files are read as `CHARACTER SET binary` (they are
//! ASCII), as Sluice sends ASCII batches, so the server checks no charset. No client parses,
//! sorts or sends anything: an importer that reaches this row has only the target's work left.

use std::path::Path;
use std::process::Command;

use sluice_benches::{
    cpu_seconds_of, flush_dirty_pages, measure, sibling_binary, spread, sysbench_prepare,
    wait_until_idle,
};
use sluice_tests::tools::mariadb_client;
use sluice_tests::{MariaDb, Role};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let reps = *args.first().unwrap_or(&3) as usize;
    let tables = *args.get(1).unwrap_or(&8);
    let table_size = *args.get(2).unwrap_or(&250_000);
    let rows = tables * table_size;
    let sluice = sibling_binary("sluice");

    let src = MariaDb::start_with(Role::Source, "innodb_buffer_pool_size=1G\nskip_log_bin");
    // A target with MariaDB's durable defaults, as users run it (the harness relaxes them).
    let dst = MariaDb::start_with(
        Role::Target,
        "innodb_buffer_pool_size=1G\ninnodb_flush_log_at_trx_commit=1\ninnodb_log_file_size=96M",
    );
    sysbench_prepare(&src, tables, table_size);

    let work = tempfile::tempdir().expect("work folder");
    let (mydumper_dir, sluice_dir) = (work.path().join("mydumper"), work.path().join("sluice"));
    std::fs::create_dir_all(&mydumper_dir).expect("folder");
    measure({
        let mut c = Command::new("mydumper");
        c.args([
            "--host",
            "127.0.0.1",
            "--port",
            &src.port.to_string(),
            "--user",
            "root",
            "--database",
            "sbtest",
        ])
        .args(["--threads", "2", "--rows", "50000", "--outputdir"])
        .arg(&mydumper_dir);
        c
    });
    measure({
        let mut c = Command::new(&sluice);
        c.args(["dump", "--source", &src.url(), "--output"])
            .arg(&sluice_dir)
            .args([
                "--filter",
                "sbtest.*",
                "--threads",
                "2",
                "--chunk-rows",
                "50000",
            ])
            .env("SLUICE_LOG", "warn");
        c
    });

    // The ceiling's input: each table as a server-side file in LOAD DATA's default format.
    let tsv_dir = work.path().join("tsv");
    std::fs::create_dir_all(&tsv_dir).expect("folder");
    // Pieces of 50,000 rows, as the dumps' chunks: one LOAD DATA of a whole table was much
    // slower on this target (10.7 s against 6–8 s for the importers, measured).
    const PIECE_ROWS: u64 = 50_000;
    let pieces = table_size.div_ceil(PIECE_ROWS);
    let tsv = |t: u64, p: u64| tsv_dir.join(format!("sbtest{t}.{p}.tsv"));
    for t in 1..=tables {
        for p in 0..pieces {
            mariadb_client(
                &src,
                None,
                format!(
                    "SELECT * FROM sbtest.sbtest{t} WHERE id > {} AND id <= {} INTO OUTFILE '{}'",
                    p * PIECE_ROWS,
                    (p + 1) * PIECE_ROWS,
                    tsv(t, p).display()
                )
                .as_bytes(),
            );
        }
    }
    let ceiling = || {
        // sysbench's own table definition, with its secondary index added after the load.
        let stream = |half: u64| {
            let mut sql = String::from("SET SESSION unique_checks = 0, foreign_key_checks = 0;");
            for t in (1..=tables).filter(|t| t % 2 == half) {
                sql.push_str(&format!(
                    "CREATE TABLE sbtest.sbtest{t} (id INTEGER NOT NULL AUTO_INCREMENT, \
                     k INTEGER DEFAULT '0' NOT NULL, c CHAR(120) DEFAULT '' NOT NULL, \
                     pad CHAR(60) DEFAULT '' NOT NULL, PRIMARY KEY (id)) ENGINE = InnoDB;"
                ));
                for p in 0..pieces {
                    sql.push_str(&format!(
                        "LOAD DATA INFILE '{}' IGNORE INTO TABLE sbtest.sbtest{t} CHARACTER SET binary;",
                        tsv(t, p).display()
                    ));
                }
                sql.push_str(&format!(
                    "ALTER TABLE sbtest.sbtest{t} ADD INDEX k_{t} (k);"
                ));
            }
            sql
        };
        // The SQL holds no `"`, `$` or backquote, so bash passes it as is.
        let session = |sql: String| {
            format!(
                "mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P {} -u root -e \"{sql}\"",
                dst.port
            )
        };
        let mut c = Command::new("bash");
        c.arg("-c").arg(format!(
            "set -e; {} & a=$!; {} & b=$!; wait $a; wait $b",
            session(format!("CREATE DATABASE sbtest; {}", stream(1))),
            // The second session waits for the database the first creates.
            session(format!("DO SLEEP(0.05); {}", stream(0))),
        ));
        c
    };

    let myloader = |dir: &Path| {
        let mut c = Command::new("myloader");
        c.args([
            "--host",
            "127.0.0.1",
            "--port",
            &dst.port.to_string(),
            "--user",
            "root",
            "--threads",
            "2",
            "--directory",
        ])
        .arg(dir);
        c
    };
    let ours = |dir: &Path, extra: &[&str]| {
        let mut c = Command::new(&sluice);
        c.args(["import", "--input"])
            .arg(dir)
            .args([
                "--target",
                &dst.url(),
                "--threads",
                "2",
                "--sort-memory",
                "1GiB",
            ])
            .args(extra)
            .env("SLUICE_LOG", "warn");
        c
    };
    let names = [
        "myloader --threads 2 (mydumper dump)",
        "sluice import --threads 2 (sluice dump)",
        "sluice import --threads 2 --import-mode",
        "sluice import --threads 2 --defer-indexes",
        "sluice import --threads 2 --defer-indexes --import-mode",
        "ceiling: server-side LOAD DATA INFILE, index after",
    ];
    let mut results: Vec<Vec<(f64, f64, f64, f64)>> = vec![Vec::new(); names.len()];
    for rep in 0..=reps {
        for (i, name) in names.iter().enumerate() {
            mariadb_client(
                &dst,
                None,
                b"DROP DATABASE IF EXISTS sbtest; DROP DATABASE IF EXISTS sluice_meta;",
            );
            // Each run starts on a clean, idle target: the previous run's dirty pages are not
            // charged to it.
            flush_dirty_pages(&[&dst]);
            wait_until_idle(&[&dst]);
            let before = cpu_seconds_of(dst.pid);
            let cmd = match i {
                0 => myloader(&mydumper_dir),
                1 => ours(&sluice_dir, &[]),
                2 => ours(&sluice_dir, &["--import-mode"]),
                3 => ours(&sluice_dir, &["--defer-indexes"]),
                4 => ours(&sluice_dir, &["--defer-indexes", "--import-mode"]),
                _ => ceiling(),
            };
            let m = measure(cmd);
            let target_cpu = cpu_seconds_of(dst.pid) - before;
            if rep == 0 {
                eprintln!("  warm-up {name:<44} {:.2} s", m.seconds);
                continue;
            }
            eprintln!("  rep {rep} {name:<44} {:.2} s", m.seconds);
            results[i].push((m.seconds, m.peak_rss_mib, m.cpu_seconds, target_cpu));
        }
    }
    let peer = spread(&results[0].iter().map(|r| r.0).collect::<Vec<_>>()).0;
    println!(
        "\n{rows} rows ({tables} x {table_size} sysbench), 2 threads, median of {reps} (min–max)\n"
    );
    println!(
        "| tool | seconds | rows/s | vs myloader | peak RSS MiB | client CPU-s | TARGET CPU-s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        let r = &results[i];
        let (med, min, max) = spread(&r.iter().map(|x| x.0).collect::<Vec<_>>());
        let rss = spread(&r.iter().map(|x| x.1).collect::<Vec<_>>()).2;
        let cpu = spread(&r.iter().map(|x| x.2).collect::<Vec<_>>()).0;
        let tcpu = spread(&r.iter().map(|x| x.3).collect::<Vec<_>>()).0;
        println!(
            "| {name} | {med:.2} ({min:.2}–{max:.2}) | {:.0} | {:.2}x | {rss:.0} | {cpu:.2} | {tcpu:.2} |",
            rows as f64 / med,
            peer / med
        );
    }
}
