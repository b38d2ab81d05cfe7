//! Helpers the end-to-end tests share: the real MariaDB client tools run against the harness's
//! servers, and whole-table comparisons.

use std::io::Write;
use std::process::{Command, Stdio};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use crate::MariaDb;
use crate::harness::process::find_program;

const CLIENT_DIRS: &[&str] = &["/usr/bin", "/usr/local/bin", "/usr/local/mysql/bin"];

/// Pipes `sql` into the `mariadb` client connected to `server` (database `db` if given).
/// Panics with the client's error output if it fails.
pub fn mariadb_client(server: &MariaDb, db: Option<&str>, sql: &[u8]) {
    let client = find_program("mariadb", CLIENT_DIRS);
    let mut cmd = Command::new(client);
    cmd.args([
        "--no-defaults",
        "--protocol=TCP",
        "-h",
        "127.0.0.1",
        "-u",
        "root",
        "--binary-mode",
    ])
    .arg(format!("-P{}", server.port));
    if let Some(db) = db {
        cmd.arg(format!("--database={db}"));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mariadb");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sql)
        .expect("feed mariadb");
    let out = child.wait_with_output().expect("wait for mariadb");
    assert!(
        out.status.success(),
        "mariadb client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The source's binlog from `file:offset` to its end, for database `db` only, as SQL text
/// (`mariadb-binlog --read-from-remote-server`).
pub fn binlog_since(source: &MariaDb, file: &str, offset: u64, db: &str) -> Vec<u8> {
    let tool = find_program("mariadb-binlog", CLIENT_DIRS);
    let out = Command::new(tool)
        .args([
            "--no-defaults",
            "--read-from-remote-server",
            "--protocol=TCP",
            "-h",
            "127.0.0.1",
            "-u",
            "root",
        ])
        .arg(format!("-P{}", source.port))
        .arg(format!("--start-position={offset}"))
        .arg(format!("--database={db}"))
        .arg("--to-last-log")
        .arg(file)
        .output()
        .expect("run mariadb-binlog");
    assert!(
        out.status.success(),
        "mariadb-binlog failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every row of a table in primary-key order, as the text protocol returns it.
pub async fn all_rows(conn: &mut Conn, table: &str, order_by: &str) -> Vec<Vec<Value>> {
    let rows: Vec<mysql_async::Row> = conn
        .query(format!("SELECT * FROM {table} ORDER BY {order_by}"))
        .await
        .unwrap_or_else(|e| panic!("read {table}: {e}"));
    rows.into_iter().map(|r| r.unwrap()).collect()
}

/// `CHECKSUM TABLE … EXTENDED`.
pub async fn checksum_table(conn: &mut Conn, table: &str) -> Option<u64> {
    let row: Option<(String, Option<u64>)> = conn
        .query_first(format!("CHECKSUM TABLE {table} EXTENDED"))
        .await
        .unwrap_or_else(|e| panic!("checksum {table}: {e}"));
    row.and_then(|(_, c)| c)
}
