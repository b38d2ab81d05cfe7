//! Helpers for the fixture suites (tests/fixtures*.rs): where ../shared/fixtures/dumps is,
//! running `sluice import` on a case, and checking the target against a case's expectations.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mysql_async::prelude::Queryable;

use crate::{MariaDb, target};

pub fn fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/dumps");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "\n!!!!!!!! FIXTURE SUITE DID NOT RUN: {} is missing (CI has it; a plain clone may not) !!!!!!!!\n",
            dir.display()
        );
        None
    }
}

/// Every row the query returns, columns tab-joined, rows newline-joined, NULL as `NULL`.
pub async fn rows_text(conn: &mut mysql_async::Conn, query: &str) -> String {
    let rows: Vec<mysql_async::Row> = conn
        .query(query)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    r.get::<Option<String>, _>(i)
                        .flatten()
                        .unwrap_or_else(|| "NULL".into())
                })
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs each query on the target and compares all its rows (see [`rows_text`]) with the
/// expectation, reporting every mismatch at once.
pub async fn check(expectations: &[(&str, &str)]) {
    let mut conn = target().conn().await;
    let mut failures = Vec::new();
    for (query, expected) in expectations {
        let got = rows_text(&mut conn, query).await;
        if got != *expected {
            failures.push(format!(
                "{query}\n    expected {expected:?}\n    got      {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "fixture expectations failed:\n{}",
        failures.join("\n")
    );
}

/// Runs statements on one connection to `server`, in order.
pub async fn exec_on(server: &MariaDb, statements: &[&str]) {
    let mut conn = server.conn().await;
    for s in statements {
        conn.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// Runs statements on one target connection, in order.
pub async fn exec(statements: &[&str]) {
    exec_on(target(), statements).await;
}

pub async fn drop_databases_on(server: &MariaDb, names: &[&str]) {
    let mut conn = server.conn().await;
    for db in names {
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
            .await
            .unwrap_or_else(|e| panic!("drop database {db}: {e}"));
    }
}

pub async fn drop_databases(names: &[&str]) {
    drop_databases_on(target(), names).await;
}

/// Runs `BIN import --input INPUT --target … EXTRA…` and returns how it ended.
pub fn sluice_import(bin: &str, input: &Path, extra: &[&str]) -> Output {
    Command::new(bin)
        .args([
            "import",
            "--input",
            &input.to_string_lossy(),
            "--target",
            &target().url(),
        ])
        .args(extra)
        .env("SLUICE_LOG", "warn")
        .output()
        .expect("run the sluice binary")
}

/// Runs `sluice import --restart` on a dump folder or script and fails unless it succeeds;
/// returns its stdout.
pub fn import_fixture(bin: &str, input: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--restart"];
    args.extend(extra);
    let out = sluice_import(bin, input, &args);
    assert!(
        out.status.success(),
        "sluice import --input {} {args:?}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
