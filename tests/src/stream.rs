//! Helpers for the streamer's end-to-end tests: where the source's binlog ends and how far a
//! stream's checkpoint has come.

use std::time::{Duration, Instant};

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::MariaDb;

/// `SHOW MASTER STATUS`: the file and offset where the next transaction will start.
pub async fn binlog_end(conn: &mut Conn) -> (String, u64) {
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("show master status")
        .expect("binlog is on");
    (row.get(0).expect("file"), row.get(1).expect("position"))
}

/// The highest watermark of a task's checkpoint rows on `target`.
pub async fn checkpoint(target: &MariaDb, task: &str) -> Option<(String, u64)> {
    let mut conn = target.conn().await;
    conn.exec_first(
        "SELECT low_file, low_offset FROM sluice_meta.stream_checkpoints WHERE task = ? \
         ORDER BY low_file DESC, low_offset DESC LIMIT 1",
        (task,),
    )
    .await
    .unwrap_or(None)
}

/// Waits until the task's checkpoint has reached `end`; panics with `context` after `limit`.
pub async fn wait_for_checkpoint(
    target: &MariaDb,
    task: &str,
    end: &(String, u64),
    limit: Duration,
    context: impl Fn() -> String,
) {
    let started = Instant::now();
    loop {
        if let Some(at) = checkpoint(target, task).await
            && at >= *end
        {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "task {task} did not reach {}:{} within {limit:?} (at {:?}); {}",
            end.0,
            end.1,
            checkpoint(target, task).await,
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `sluice stream` running in the background, its stderr going to a file (a pipe nobody
/// reads could fill up and stall it).
pub struct Background {
    pub child: std::process::Child,
    log: tempfile::NamedTempFile,
}

impl Background {
    /// Starts `bin stream ARGS…`.
    pub fn start(bin: &str, args: &[&str]) -> Background {
        Background::command(bin, "stream", args)
    }

    /// Starts `bin SUBCOMMAND ARGS…` (e.g. `relay`).
    pub fn command(bin: &str, subcommand: &str, args: &[&str]) -> Background {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = std::process::Command::new(bin)
            .arg(subcommand)
            .args(args)
            .env("SLUICE_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().expect("reopen the log file"))
            .spawn()
            .expect("spawn sluice");
        Background { child, log }
    }

    /// What it has written to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// SIGTERM, then waits: a stream stops at a transaction boundary and exits 0.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait for sluice stream");
        (status, self.log())
    }

    /// SIGKILL, then waits.
    pub fn kill(mut self) -> std::process::ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("wait for sluice stream")
    }
}
