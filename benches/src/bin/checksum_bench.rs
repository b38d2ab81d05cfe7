//! `checksum-bench`: sluice checksum against pt-table-checksum on one source/replica pair.
//!
//! ```sh
//! cargo build --release -p sluice-jobs -p sluice-benches
//! target/release/checksum-bench [REPS] [TABLES] [TABLE_SIZE]   # default 3 8 250000
//! ```
//!
//! TARGET replicates SOURCE natively (GTID), `sysbench prepare` loads SOURCE, and once TARGET
//! has caught up both tools verify the same pair, interleaved. pt-table-checksum works the way
//! it must: it writes its checksums into `percona.checksums` on the source and reads the
//! replica's results; sluice checksum only reads both sides. Each run starts once both
//! servers are idle (the load's dirty pages flushed first, no background CPU). Printed: median seconds
//! (min–max), rows/s, the ratio, and the source's CPU seconds per run.

use std::process::Command;

use sluice_benches::{
    cpu_seconds_of, flush_dirty_pages, measure_with, query, sibling_binary, spread,
    sysbench_prepare, wait_until_idle,
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

    let src = MariaDb::start_with(Role::Source, "innodb_buffer_pool_size=1G");
    let dst = MariaDb::start_with(Role::Target, "innodb_buffer_pool_size=1G\nread_only=0");
    mariadb_client(
        &dst,
        None,
        format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', MASTER_PASSWORD='', \
             MASTER_USE_GTID=slave_pos; START SLAVE;",
            src.port
        )
        .as_bytes(),
    );
    sysbench_prepare(&src, tables, table_size);
    mariadb_client(
        &src,
        None,
        format!(
            "CREATE DATABASE percona; CREATE TABLE percona.dsns (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT, dsn VARCHAR(255));
             INSERT INTO percona.dsns (dsn) VALUES ('h=127.0.0.1,P={},u=root');",
            dst.port
        )
        .as_bytes(),
    );
    let gtid = query(&src, "SELECT @@gtid_binlog_pos");
    let caught_up = query(&dst, &format!("SELECT MASTER_GTID_WAIT('{gtid}', 1200)"));
    assert_eq!(caught_up, "0", "the replica did not catch up");

    let sluice = sibling_binary("sluice");
    let pt = |_: ()| {
        let mut c = Command::new("pt-table-checksum");
        c.arg(format!("h=127.0.0.1,P={},u=root", src.port))
            .args([
                "--databases=sbtest",
                "--replicate=percona.checksums",
                "--no-check-binlog-format",
            ])
            .arg(format!(
                "--recursion-method=dsn=h=127.0.0.1,P={},u=root,D=percona,t=dsns",
                src.port
            ));
        c
    };
    let ours = |_: ()| {
        let mut c = Command::new(&sluice);
        c.args([
            "checksum",
            "--source",
            &src.url(),
            "--target",
            &dst.url(),
            "--filter",
            "sbtest.*",
            "--threads",
            "2",
        ])
        .env("SLUICE_LOG", "warn");
        c
    };
    type Build<'a> = Box<dyn Fn(()) -> Command + 'a>;
    let cases: Vec<(&str, Build<'_>, &[i32])> = vec![
        (
            "pt-table-checksum (replicate, dsn recursion)",
            Box::new(pt),
            &[0],
        ),
        ("sluice checksum --threads 2", Box::new(ours), &[0]),
    ];
    flush_dirty_pages(&[&src, &dst]);
    eprintln!("warm-up …");
    for (_, build, ok) in &cases {
        measure_with(build(()), ok);
    }
    let mut results: Vec<Vec<(f64, f64, f64, f64)>> = vec![Vec::new(); cases.len()];
    for rep in 0..reps {
        for (i, (name, build, ok)) in cases.iter().enumerate() {
            wait_until_idle(&[&src, &dst]);
            let (src_before, dst_before) = (cpu_seconds_of(src.pid), cpu_seconds_of(dst.pid));
            let m = measure_with(build(()), ok);
            let (src_cpu, dst_cpu) = (
                cpu_seconds_of(src.pid) - src_before,
                cpu_seconds_of(dst.pid) - dst_before,
            );
            eprintln!("  rep {} {name:<46} {:.2} s", rep + 1, m.seconds);
            results[i].push((m.seconds, m.cpu_seconds, src_cpu, dst_cpu));
        }
    }
    let median = |v: Vec<f64>| spread(&v);
    let peer = median(results[0].iter().map(|r| r.0).collect()).0;
    println!("\n{rows} rows ({tables} x {table_size} sysbench), median of {reps} (min–max)\n");
    println!(
        "| tool | seconds | rows/s | vs pt-table-checksum | client CPU-s | SOURCE CPU-s | TARGET CPU-s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, (name, _, _)) in cases.iter().enumerate() {
        let (med, min, max) = median(results[i].iter().map(|r| r.0).collect());
        let cpu = median(results[i].iter().map(|r| r.1).collect()).0;
        let scpu = median(results[i].iter().map(|r| r.2).collect()).0;
        let tcpu = median(results[i].iter().map(|r| r.3).collect()).0;
        println!(
            "| {name} | {med:.2} ({min:.2}–{max:.2}) | {:.0} | {:.2}x | {cpu:.2} | {scpu:.2} | {tcpu:.2} |",
            rows as f64 / med,
            peer / med
        );
    }
}
