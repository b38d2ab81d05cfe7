//! Throwaway MariaDB servers: `mariadb-install-db` + `mariadbd` in a temporary folder, on a free
//! loopback port, stopped by the watchdog when the test process ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_core::Endpoint;

use crate::process::{find_program, free_port, is_alive, kill, spawn_watchdog};

/// Where Debian and the MariaDB tarballs put the server programs.
const SERVER_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/local/sbin",
    "/usr/local/mysql/bin",
    "/usr/bin",
];
const STARTUP_LIMIT: Duration = Duration::from_secs(60);

/// Which of the two test servers this is; they differ in binlog settings and server id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The replication source: binlog on, ROW, full images, GTID strict mode.
    Source,
    /// The migration target: no binlog.
    Target,
}

/// A running throwaway MariaDB server, reachable as root without a password on 127.0.0.1.
#[derive(Debug)]
pub struct MariaDb {
    pub role: Role,
    pub port: u16,
    pub pid: u32,
    pub dir: PathBuf,
}

impl MariaDb {
    /// Starts a new server of the given role. Blocks until it accepts connections; panics with
    /// the tail of its error log if it does not.
    pub fn start(role: Role) -> MariaDb {
        MariaDb::start_with(role, "")
    }

    /// Starts a server with extra option lines appended to its option file (later lines win),
    /// e.g. `innodb_buffer_pool_size=1G` for benchmarks.
    pub fn start_with(role: Role, extra_options: &str) -> MariaDb {
        let install_db = find_program("mariadb-install-db", SERVER_DIRS);
        let mariadbd = find_program("mariadbd", SERVER_DIRS);
        let mut last_error = String::new();
        for _attempt in 0..3 {
            match try_start(role, &install_db, &mariadbd, extra_options) {
                Ok(server) => return server,
                // Another process may have taken the free port between our probe and the bind.
                Err(e) => last_error = e,
            }
        }
        panic!("MariaDB {role:?} did not start: {last_error}");
    }

    /// `mysql://root@127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    pub fn endpoint(&self) -> Endpoint {
        self.url().parse().expect("harness URL parses")
    }

    /// A new connection as root.
    pub async fn conn(&self) -> mysql_async::Conn {
        match self.endpoint().connect().await {
            Ok(conn) => conn,
            Err(e) => panic!("connect to test {:?}: {e}\n{}", self.role, self.diagnosis()),
        }
    }

    /// Whether the server still runs, and the end of its error log: for failure messages.
    pub fn diagnosis(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "server pid {} {} ; last lines of {}:\n{}",
            self.pid,
            if is_alive(self.pid) {
                "is running"
            } else {
                "is GONE"
            },
            self.dir.join("error.log").display(),
            tail.join("\n")
        )
    }

    /// Stops the server cleanly (SIGTERM, as a service stop does) and starts it again on the
    /// same port and data; blocks until it accepts connections again. For tests of clients
    /// that must survive a server restart.
    pub fn restart(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let stopped = Instant::now();
        while is_alive(self.pid) {
            assert!(
                stopped.elapsed() < STARTUP_LIMIT,
                "MariaDB {:?} did not stop: {}",
                self.role,
                self.diagnosis()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mariadbd = find_program("mariadbd", SERVER_DIRS);
        match launch(&mariadbd, &self.dir, self.port) {
            Ok(pid) => self.pid = pid,
            Err(e) => panic!("MariaDB {:?} did not restart: {e}", self.role),
        }
    }

    /// The server's data folder (binlog files live here).
    pub fn datadir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

fn try_start(
    role: Role,
    install_db: &Path,
    mariadbd: &Path,
    extra_options: &str,
) -> Result<MariaDb, String> {
    let port = free_port();
    let dir = tempfile::Builder::new()
        .prefix("sluice-mariadb-")
        .tempdir()
        .map_err(|e| format!("temporary folder: {e}"))?
        .keep();
    // Each server gets its own tmpdir: a starting mariadbd deletes every `#sql*` file in its
    // tmpdir (crash clean-up), which in a shared /tmp pulls temporary tables out from under
    // the servers already running there.
    std::fs::create_dir_all(dir.join("tmp")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cnf = dir.join("my.cnf");
    std::fs::write(&cnf, config(role, port, &dir) + extra_options + "\n")
        .map_err(|e| format!("{}: {e}", cnf.display()))?;
    let defaults = format!("--defaults-file={}", cnf.display());

    let install = Command::new(install_db)
        .arg(&defaults)
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {}: {e}", install_db.display()))?;
    if !install.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&install.stderr)
        ));
    }

    let pid = launch(mariadbd, &dir, port)?;
    Ok(MariaDb {
        role,
        port,
        pid,
        dir,
    })
}

/// Starts `mariadbd` on the option file in `dir`, hands it to a watchdog and waits until its
/// error log says it is ready (a restart looks only at what the log gained since).
fn launch(mariadbd: &Path, dir: &Path, port: u16) -> Result<u32, String> {
    let log = dir.join("error.log");
    let seen = std::fs::read_to_string(&log).map(|t| t.len()).unwrap_or(0);
    let defaults = format!("--defaults-file={}", dir.join("my.cnf").display());
    use std::os::unix::process::CommandExt;
    let child = Command::new(mariadbd)
        .arg(&defaults)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("run {}: {e}", mariadbd.display()))?;
    let pid = child.id();
    // The watchdog owns the server's lifetime from here on; dropping `child` does not kill it.
    spawn_watchdog(pid, dir);
    drop(child);
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text
            .get(seen..)
            .is_some_and(|t| t.contains("ready for connections"))
        {
            return Ok(pid);
        }
        if !is_alive(pid) || started.elapsed() > STARTUP_LIMIT {
            kill(pid);
            let tail: Vec<&str> = text.lines().rev().take(12).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "port {port}, log {}:\n{}",
                log.display(),
                tail.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server's option file. Small buffers keep two servers cheap on a 2-core machine;
/// durability settings are relaxed because the data dies with the test anyway.
fn config(role: Role, port: u16, dir: &Path) -> String {
    let d = dir.display();
    let (server_id, role_lines) = match role {
        Role::Source => (
            1,
            "log_bin=mysql-bin\nbinlog_format=ROW\nbinlog_row_image=FULL\ngtid_strict_mode=1\n",
        ),
        Role::Target => (2, "skip_log_bin\n"),
    };
    let user = if is_root() { "user=root\n" } else { "" };
    format!(
        "[mysqld]\n{user}datadir={d}/data\nport={port}\nbind-address=127.0.0.1\n\
         socket={d}/mysqld.sock\npid-file={d}/mariadbd.pid\nlog-error={d}/error.log\ntmpdir={d}/tmp\n\
         server_id={server_id}\nskip-name-resolve\nlocal_infile=1\nmax_allowed_packet=64M\n\
         innodb_buffer_pool_size=256M\ninnodb_log_file_size=128M\n\
         innodb_flush_log_at_trx_commit=2\nperformance_schema=OFF\n\
         character_set_server=utf8mb4\ncollation_server=utf8mb4_general_ci\n{role_lines}"
    )
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
