//! sluice-benches: side-by-side measurements of Sluice against the tools its users would run
//! instead (mydumper/myloader, mariadb-dump, native replication, pt-table-checksum), on the same
//! throwaway servers in one run, with release builds. Figures go into the issue notes, never
//! into timed test assertions.
//!
//! [`measure`] runs one command and reports its wall time, CPU time and peak RSS, read from
//! `/proc` while it runs (the peak is sampled every few milliseconds, so a spike in the last
//! milliseconds of a run may be missed).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of a command cost.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub seconds: f64,
    /// User + system CPU seconds of the process itself.
    pub cpu_seconds: f64,
    pub peak_rss_mib: f64,
}

/// Runs `cmd` to completion and measures it. Panics if it fails: a benchmark of a failed run
/// means nothing.
pub fn measure(cmd: Command) -> Measured {
    measure_with(cmd, &[0])
}

/// Like [`measure`], accepting any of `ok_codes` as success (pt-table-checksum exits non-zero
/// for warnings and for differences it reports as flags).
pub fn measure_with(mut cmd: Command, ok_codes: &[i32]) -> Measured {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let pid = child.id();
    let mut peak_kib = 0u64;
    let mut cpu_ticks = 0u64;
    loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak_kib = peak_kib.max(kib);
        }
        match proc_stat(pid) {
            Some((state, ticks)) => {
                cpu_ticks = ticks;
                if state == 'Z' {
                    break;
                }
            }
            None => break,
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {cmd:?}: {e}"));
    let seconds = started.elapsed().as_secs_f64();
    let code = output.status.code().unwrap_or(-1);
    assert!(
        ok_codes.contains(&code),
        "{cmd:?} failed ({code}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Measured {
        seconds,
        cpu_seconds: cpu_ticks as f64 / ticks_per_second(),
        peak_rss_mib: peak_kib as f64 / 1024.0,
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// (state, utime + stime in clock ticks) of a process.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // After the state, utime and stime are fields 12 and 13 (0-based) of `rest`.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((state, utime + stime))
}

/// CPU seconds a running process (a server) has used so far.
pub fn cpu_seconds_of(pid: u32) -> f64 {
    proc_stat(pid)
        .map(|(_, t)| t as f64 / ticks_per_second())
        .unwrap_or(0.0)
}

fn ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux build this project runs on.
    100.0
}

/// A release binary next to the running benchmark (`target/release/NAME`).
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let path = exe.parent().expect("exe folder").join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build --release -p sluice-jobs`",
        path.display()
    );
    path
}

/// Total size of the files in a folder.
pub fn folder_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Median, min and max of a non-empty list.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Runs `sql` with the `mariadb` client on `server` and returns its tab-separated output
/// (no column names). Panics with the client's error: a benchmark with a failed step means
/// nothing.
pub fn query(server: &sluice_tests::MariaDb, sql: &str) -> String {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--protocol=TCP",
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            "-N",
            "-B",
        ])
        .arg(format!("-P{}", server.port))
        .args(["-e", sql])
        .output()
        .expect("run mariadb");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Creates `sbtest` on `server` and fills it with `sysbench oltp_read_write prepare`
/// (`tables` × `table_size` rows, 2 threads), the data every benchmark here uses.
pub fn sysbench_prepare(server: &sluice_tests::MariaDb, tables: u64, table_size: u64) {
    eprintln!(
        "loading {tables} x {table_size} rows with sysbench on port {} …",
        server.port
    );
    sluice_tests::tools::mariadb_client(server, None, b"CREATE DATABASE sbtest");
    let status = Command::new("sysbench")
        .args([
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            &format!("--mysql-port={}", server.port),
        ])
        .args([
            "--mysql-user=root",
            "--mysql-password=",
            "--mysql-db=sbtest",
            &format!("--tables={tables}"),
        ])
        .args([
            &format!("--table-size={table_size}"),
            "--threads=2",
            "oltp_read_write",
            "prepare",
        ])
        .stdout(Stdio::null())
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "sysbench prepare failed (is sysbench installed? see ci/setup.sh)"
    );
}

/// Flushes the servers' dirty pages (at most two minutes), so that the flushing a bulk load
/// leaves behind is not charged to whichever tool runs next.
pub fn flush_dirty_pages(servers: &[&sluice_tests::MariaDb]) {
    for s in servers {
        query(
            s,
            "SET GLOBAL innodb_io_capacity_max = 20000, innodb_io_capacity = 20000, \
             innodb_max_dirty_pages_pct = 0",
        );
    }
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(120) {
        let dirty: u64 = servers
            .iter()
            .map(|s| {
                query(
                    s,
                    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                     WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'",
                )
                .parse::<u64>()
                .unwrap_or(0)
            })
            .sum();
        if dirty < 100 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    for s in servers {
        query(
            s,
            "SET GLOBAL innodb_max_dirty_pages_pct = 90, innodb_io_capacity = 200, \
             innodb_io_capacity_max = 2000",
        );
    }
}

/// Waits until the servers' CPU use stays under 5% for two seconds in a row (at most a
/// minute): background work (purge, flushing) of the run before is not charged to the next.
pub fn wait_until_idle(servers: &[&sluice_tests::MariaDb]) {
    let started = std::time::Instant::now();
    let mut quiet = 0;
    while quiet < 2 && started.elapsed() < std::time::Duration::from_secs(60) {
        let before: Vec<f64> = servers.iter().map(|s| cpu_seconds_of(s.pid)).collect();
        std::thread::sleep(std::time::Duration::from_secs(1));
        let busy = servers
            .iter()
            .zip(&before)
            .any(|(s, b)| cpu_seconds_of(s.pid) - b > 0.05);
        quiet = if busy { 0 } else { quiet + 1 };
    }
}
