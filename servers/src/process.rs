//! Process plumbing shared by the server launchers: finding programs, free ports, and the
//! watchdog that ties a server to the life of the test process.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Finds a program on `PATH` or in the extra folders where Debian and pip put it.
/// Panics with a message naming `ci/setup.sh` when it is not installed: a test that needs a
/// server must fail, not skip.
pub fn find_program(name: &str, extra_dirs: &[&str]) -> PathBuf {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let home = std::env::var("HOME").unwrap_or_default();
    let extra = extra_dirs
        .iter()
        .map(|d| PathBuf::from(d.replace('~', &home)));
    for dir in std::env::split_paths(&path_var).chain(extra) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not installed (looked on PATH and in {extra_dirs:?}): run `sudo ci/setup.sh` \
         to install the test servers; tests never skip a missing server"
    );
}

/// A loopback port nobody listens on right now. Never 3306: a real server may live there.
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        if port != 3306 {
            return port;
        }
    }
}

/// Starts a watchdog that kills `server_pid` and removes `dir` as soon as the current process
/// is gone, however it ends (normal exit, panic, `kill -9`). Statics are never dropped at
/// process exit, so this is what stops shared servers. It runs in its own process group, so a
/// Ctrl-C on the test run does not kill it before it has cleaned up.
pub fn spawn_watchdog(server_pid: u32, dir: &Path) {
    const SCRIPT: &str = r#"
        test_pid=$1; server_pid=$2; dir=$3
        alive() {
            read -r _ _ state _ < "/proc/$1/stat" 2>/dev/null || return 1
            [ "$state" != Z ]
        }
        while alive "$test_pid"; do sleep 0.2; done
        kill -KILL "$server_pid" 2>/dev/null
        while alive "$server_pid"; do sleep 0.1; done
        rm -rf "$dir"
    "#;
    use std::os::unix::process::CommandExt;
    let spawned = Command::new("/bin/sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("sluice-test-watchdog")
        .arg(std::process::id().to_string())
        .arg(server_pid.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(e) = spawned {
        // Without a watchdog the server would outlive us: do not leave it running.
        kill(server_pid);
        panic!("cannot start the server watchdog: {e}");
    }
}

/// Sends SIGKILL to a process (no error if it is gone).
pub fn kill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// True while a process exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
