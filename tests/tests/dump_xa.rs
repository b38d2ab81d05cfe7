//! A dump never lands between an XA PREPARE and its XA COMMIT: such a dump would hold none of
//! the transaction's changes, and a stream from its position would meet the commit without the
//! prepare. `sluice dump` waits for prepared XA transactions to end, else fails naming them.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::{Command, Output};
use std::time::Duration;

use mysql_async::prelude::*;
use sluice_tests::{MariaDb, Role, unique_name};

fn dump(source: &MariaDb, db: &str, consistency: &str, out: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args([
            "dump",
            "--source",
            &source.url(),
            "--output",
            out.to_str().unwrap(),
            "--filter",
            &format!("{db}.*"),
            "--consistency",
            consistency,
            "--lock-wait",
            "3",
        ])
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap()
}

async fn prepare(source: &MariaDb, db: &str, xid: &str, id: i32) {
    let mut c = source.conn().await;
    c.query_drop(format!(
        "XA START {xid}; INSERT INTO `{db}`.t VALUES ({id}); XA END {xid}; XA PREPARE {xid};"
    ))
    .await
    .unwrap();
    c.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_waits_for_prepared_xa_transactions_and_fails_naming_those_that_stay() {
    // A private source: other tests' dumps on the shared one would wait for these too.
    let source = MariaDb::start_with(Role::Source, "");
    let db = unique_name("dump_xa");
    let mut c = source.conn().await;
    c.query_drop(format!(
        "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.t (id INT PRIMARY KEY); INSERT INTO `{db}`.t VALUES (1)"
    ))
    .await
    .unwrap();

    for consistency in ["flush", "snapshot"] {
        // Committed a second into the dump's wait: the dump holds its row.
        let xid = format!("'w_{consistency}'");
        prepare(&source, &db, &xid, 2).await;
        let committer = {
            let source_url = source.url();
            let xid = xid.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let endpoint: sluice_core::Endpoint = source_url.parse().unwrap();
                let mut c = endpoint.connect().await.unwrap();
                c.query_drop(format!("XA COMMIT {xid}")).await.unwrap();
            })
        };
        let dir = tempfile::tempdir().unwrap();
        let o = dump(&source, &db, consistency, dir.path());
        committer.await.unwrap();
        assert!(
            o.status.success(),
            "{consistency}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let data = std::fs::read_to_string(dir.path().join(format!("{db}.t.000000000.sql")))
            .unwrap_or_else(|_| {
                let names: Vec<_> = std::fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                panic!("{consistency}: no data file among {names:?}")
            });
        assert!(
            data.contains("(2)"),
            "{consistency}: the committed row is in the dump"
        );
        c.query_drop(format!("DELETE FROM `{db}`.t WHERE id = 2"))
            .await
            .unwrap();

        // Left prepared: the dump fails, names it, and leaves nothing that looks complete.
        prepare(&source, &db, "'stays'", 3).await;
        let dir = tempfile::tempdir().unwrap();
        let o = dump(&source, &db, consistency, dir.path());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{consistency}: {err}");
        assert!(
            err.contains("XA transactions stay prepared") && err.contains("X'7374617973',X'',1"),
            "{consistency}: {err}"
        );
        assert!(!dir.path().join("metadata.json").exists());
        c.query_drop("XA ROLLBACK 'stays'").await.unwrap();
    }
}
