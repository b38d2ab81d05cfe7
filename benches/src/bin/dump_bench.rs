//! `dump-bench`: sluice dump against mydumper on one throwaway MariaDB, in one run.
//!
//! ```sh
//! cargo build --release -p sluice-jobs -p sluice-benches
//! target/release/dump-bench [REPS] [TABLES] [TABLE_SIZE]     # default 3 8 250000
//! ```
//!
//! Loads `sysbench oltp_read_write prepare` data, warms the buffer pool, then runs every case
//! REPS times, interleaved (A, B, C, A, B, C, …) so that drift hits all tools alike, and prints
//! a Markdown table: median seconds (min–max), rows/s, the ratio to mydumper's counterpart,
//! peak RSS and CPU seconds of the client and of the server.

use std::path::Path;
use std::process::Command;

use sluice_benches::{
    Measured, cpu_seconds_of, folder_bytes, measure, sibling_binary, spread, sysbench_prepare,
};
use sluice_tests::{MariaDb, Role};

struct Case {
    name: &'static str,
    /// The case this one is compared with (`None` for the peers themselves).
    versus: Option<&'static str>,
    build: fn(&Env, &Path) -> Command,
}

struct Env {
    port: u16,
    url: String,
    sluice: std::path::PathBuf,
}

fn mydumper(env: &Env, out: &Path, compress: bool) -> Command {
    let mut c = Command::new("mydumper");
    c.args([
        "--host",
        "127.0.0.1",
        "--port",
        &env.port.to_string(),
        "--user",
        "root",
        "--database",
        "sbtest",
    ])
    .args(["--threads", "2", "--rows", "50000", "--outputdir"])
    .arg(out);
    if compress {
        c.arg("--compress");
    }
    c
}

fn sluice(env: &Env, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(&env.sluice);
    c.args(["dump", "--source", &env.url, "--output"])
        .arg(out)
        .args([
            "--filter",
            "sbtest.*",
            "--threads",
            "2",
            "--chunk-rows",
            "50000",
        ])
        .args(extra)
        .env("SLUICE_LOG", "warn");
    c
}

const CASES: &[Case] = &[
    Case {
        name: "mydumper --threads 2 --rows 50000",
        versus: None,
        build: |e, o| mydumper(e, o, false),
    },
    Case {
        name: "sluice dump --format sql",
        versus: Some("mydumper --threads 2 --rows 50000"),
        build: |e, o| sluice(e, o, &[]),
    },
    Case {
        name: "sluice dump --format csv",
        versus: Some("mydumper --threads 2 --rows 50000"),
        build: |e, o| sluice(e, o, &["--format", "csv"]),
    },
    Case {
        name: "mydumper --compress (gzip)",
        versus: None,
        build: |e, o| mydumper(e, o, true),
    },
    Case {
        name: "sluice dump --compress zstd",
        versus: Some("mydumper --compress (gzip)"),
        build: |e, o| sluice(e, o, &["--compress", "zstd"]),
    },
    Case {
        name: "sluice dump --compress gzip",
        versus: Some("mydumper --compress (gzip)"),
        build: |e, o| sluice(e, o, &["--compress", "gzip"]),
    },
];

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let reps = *args.first().unwrap_or(&3) as usize;
    let tables = *args.get(1).unwrap_or(&8);
    let table_size = *args.get(2).unwrap_or(&250_000);
    let rows = tables * table_size;

    let server = MariaDb::start_with(Role::Source, "innodb_buffer_pool_size=1G\nskip_log_bin");
    let env = Env {
        port: server.port,
        url: server.url(),
        sluice: sibling_binary("sluice"),
    };
    sysbench_prepare(&server, tables, table_size);

    let work = tempfile::tempdir().expect("work folder");
    let run = |case: &Case, rep: usize| -> (Measured, f64, u64) {
        let out = work.path().join(format!("out-{rep}"));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).expect("output folder");
        let server_before = cpu_seconds_of(server.pid);
        let m = measure((case.build)(&env, &out));
        let server_cpu = cpu_seconds_of(server.pid) - server_before;
        let bytes = folder_bytes(&out);
        let _ = std::fs::remove_dir_all(&out);
        (m, server_cpu, bytes)
    };
    eprintln!("warm-up …");
    for case in CASES {
        run(case, 0);
    }
    let mut results: Vec<Vec<(Measured, f64, u64)>> = vec![Vec::new(); CASES.len()];
    for rep in 0..reps {
        for (i, case) in CASES.iter().enumerate() {
            let r = run(case, rep);
            eprintln!("  rep {} {:<40} {:.2} s", rep + 1, case.name, r.0.seconds);
            results[i].push(r);
        }
    }

    let medians: Vec<f64> = results
        .iter()
        .map(|r| spread(&r.iter().map(|x| x.0.seconds).collect::<Vec<_>>()).0)
        .collect();
    println!(
        "\n{rows} rows ({tables} x {table_size} sysbench), 2 threads, median of {reps} (min–max)\n"
    );
    println!(
        "| tool | seconds | rows/s | vs peer | peak RSS MiB | client CPU-s | server CPU-s | output MB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, case) in CASES.iter().enumerate() {
        let r = &results[i];
        let (med, min, max) = spread(&r.iter().map(|x| x.0.seconds).collect::<Vec<_>>());
        let ratio = case
            .versus
            .and_then(|v| CASES.iter().position(|c| c.name == v))
            .map(|j| format!("{:.2}x", medians[j] / med))
            .unwrap_or_else(|| "-".to_owned());
        let rss = spread(&r.iter().map(|x| x.0.peak_rss_mib).collect::<Vec<_>>()).2;
        let cpu = spread(&r.iter().map(|x| x.0.cpu_seconds).collect::<Vec<_>>()).0;
        let scpu = spread(&r.iter().map(|x| x.1).collect::<Vec<_>>()).0;
        let mb = r[0].2 as f64 / 1e6;
        println!(
            "| {} | {med:.2} ({min:.2}–{max:.2}) | {:.0} | {ratio} | {rss:.0} | {cpu:.2} | {scpu:.2} | {mb:.1} |",
            case.name,
            rows as f64 / med
        );
    }
}
