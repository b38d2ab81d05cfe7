//! `--route` against real servers: a dump imported under other names, streamed with DDL that
//! names the tables qualified and unqualified, and checked by `sluice checksum` across the
//! names; a route that would merge two tables is refused by every command.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::process::Output;

use mysql_async::prelude::*;
use sluice_tests::stream::binlog_end;
use sluice_tests::tools::all_rows;
use sluice_tests::{source, target, unique_name};

fn sluice(args: &[&str]) -> Output {
    sluice_tests::run_cli(env!("CARGO_BIN_EXE_sluice-under-test"), args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn assert_same(source_table: &str, target_table: &str) {
    let mut s = source().conn().await;
    let mut t = target().conn().await;
    let a = all_rows(&mut s, source_table, "1").await;
    let b = all_rows(&mut t, target_table, "1").await;
    assert!(
        !a.is_empty(),
        "{source_table} is empty: the test proves nothing"
    );
    assert_eq!(a, b, "{source_table} vs {target_table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_stream_and_checksum_follow_the_routes() {
    let db = unique_name("route");
    let (v2, arch) = (format!("{db}_v2"), format!("{db}_arch"));
    let mut s = source().conn().await;
    s.query_drop(format!(
        "CREATE DATABASE `{db}`; USE `{db}`;
         CREATE TABLE orders (id INT PRIMARY KEY, v VARCHAR(20));
         CREATE TABLE items (id INT PRIMARY KEY, n INT, KEY (n));
         CREATE TABLE logs (a INT, b VARCHAR(10));
         INSERT INTO orders VALUES (1, 'a'), (2, 'b'), (3, 'c');
         INSERT INTO items VALUES (1, 10), (2, 20);
         INSERT INTO logs VALUES (1, 'x'), (1, 'x');"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (src, tgt) = (source().url(), target().url());
    let filter = format!("{db}.*");
    // The table rule first: the first rule that matches decides.
    let r1 = format!("{db}.orders={arch}.orders_2026");
    let r2 = format!("{db}={v2}");
    let o = sluice(&[
        "dump",
        "--source",
        &src,
        "--output",
        dir.path().to_str().unwrap(),
        "--filter",
        &filter,
    ]);
    assert!(o.status.success(), "dump: {}", stderr(&o));
    let o = sluice(&[
        "import",
        "--input",
        dir.path().to_str().unwrap(),
        "--target",
        &tgt,
        "--route",
        &r1,
        "--route",
        &r2,
    ]);
    assert!(o.status.success(), "import: {}", stderr(&o));
    let mut t = target().conn().await;
    let landed: Vec<(String, String)> = t
        .exec(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA IN (?, ?, ?) ORDER BY 1, 2",
            (&db, &v2, &arch),
        )
        .await
        .unwrap();
    let want: Vec<(String, String)> = vec![
        (arch.clone(), "orders_2026".into()),
        (v2.clone(), "items".into()),
        (v2.clone(), "logs".into()),
    ];
    assert_eq!(landed, want, "tables on the target after the routed import");
    // The secondary index of the schema file came along under the new name.
    let keys: Vec<String> = t
        .exec(
            "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME = 'items' ORDER BY 1",
            (&v2,),
        )
        .await
        .unwrap();
    assert_eq!(keys, ["n", "PRIMARY"]);

    // Changes after the dump, with DDL naming the tables both ways.
    s.query_drop(format!(
        "USE `{db}`;
         INSERT INTO orders VALUES (4, 'd');
         UPDATE orders SET v = 'B' WHERE id = 2;
         DELETE FROM orders WHERE id = 1;
         ALTER TABLE orders ADD COLUMN note VARCHAR(20);
         INSERT INTO orders VALUES (5, 'e', 'with note');
         CREATE TABLE `{db}`.fresh (id INT PRIMARY KEY, r INT,
             FOREIGN KEY (r) REFERENCES orders (id));
         INSERT INTO fresh VALUES (1, 5);
         RENAME TABLE items TO `{db}`.items2;
         INSERT INTO items2 VALUES (3, 30);
         INSERT INTO logs VALUES (2, 'y');
         CREATE DATABASE `{db}_other`;
         CREATE TABLE `{db}_other`.ignored (id INT PRIMARY KEY);"
    ))
    .await
    .unwrap();
    let (file, offset) = binlog_end(&mut s).await;
    let until = format!("{file}:{offset}");
    let o = sluice(&[
        "stream",
        "--source",
        &src,
        "--target",
        &tgt,
        "--from-dump",
        dir.path().to_str().unwrap(),
        "--until",
        &until,
        "--filter",
        &filter,
        "--route",
        &r1,
        "--route",
        &r2,
        "--task",
        &db,
    ]);
    assert!(o.status.success(), "stream: {}", stderr(&o));
    assert_same(&format!("`{db}`.orders"), &format!("`{arch}`.orders_2026")).await;
    assert_same(&format!("`{db}`.items2"), &format!("`{v2}`.items2")).await;
    assert_same(&format!("`{db}`.fresh"), &format!("`{v2}`.fresh")).await;
    assert_same(&format!("`{db}`.logs"), &format!("`{v2}`.logs")).await;
    let old: Option<String> = t
        .exec_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?, ?)",
            (&db, format!("{db}_other")),
        )
        .await
        .unwrap();
    assert_eq!(old, None, "nothing may land under the source's names");
    // The foreign key names the routed parent.
    let parent: Option<(String, String)> = t
        .exec_first(
            "SELECT REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME FROM \
             information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'fresh' \
             AND REFERENCED_TABLE_NAME IS NOT NULL",
            (&v2,),
        )
        .await
        .unwrap();
    assert_eq!(parent, Some((arch.clone(), "orders_2026".into())));

    // The checksum compares across the names, finds a row taken away, and fixes it there.
    let check = |extra: &[&str]| {
        let mut args = vec![
            "checksum",
            "--source",
            &src,
            "--target",
            &tgt,
            "--filter",
            &filter,
            "--route",
            &r1,
            "--route",
            &r2,
            "--json",
            "--rechecks",
            "0",
        ];
        args.extend_from_slice(extra);
        sluice(&args)
    };
    let o = check(&[]);
    assert_eq!(o.status.code(), Some(0), "checksum: {}", stderr(&o));
    t.query_drop(format!("DELETE FROM `{arch}`.orders_2026 WHERE id = 4"))
        .await
        .unwrap();
    let fix = dir.path().join("fix.sql");
    let o = check(&["--fix-sql", fix.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "checksum: {}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let orders = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == format!("{db}.orders"))
        .unwrap();
    assert_eq!(orders["target_table"], format!("{arch}.orders_2026"));
    let sql = std::fs::read_to_string(&fix).unwrap();
    assert!(
        sql.contains(&format!("REPLACE INTO `{arch}`.`orders_2026`")),
        "{sql}"
    );
    let o = check(&["--apply-fix"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(check(&[]).status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_that_merges_two_tables_is_refused() {
    let db = unique_name("route_merge");
    let mut s = source().conn().await;
    s.query_drop(format!(
        "CREATE DATABASE `{db}`; USE `{db}`;
         CREATE TABLE a (id INT PRIMARY KEY); CREATE TABLE b (id INT PRIMARY KEY);
         INSERT INTO a VALUES (1); INSERT INTO b VALUES (1);"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (src, tgt) = (source().url(), target().url());
    let filter = format!("{db}.*");
    let merge = format!("{db}.*={db}_all.t");
    let o = sluice(&[
        "dump",
        "--source",
        &src,
        "--output",
        dir.path().to_str().unwrap(),
        "--filter",
        &filter,
    ]);
    assert!(o.status.success(), "dump: {}", stderr(&o));
    let want = format!("{db}.a and {db}.b would both land in {db}_all.t");
    let import = sluice(&[
        "import",
        "--input",
        dir.path().to_str().unwrap(),
        "--target",
        &tgt,
        "--route",
        &merge,
    ]);
    let stream = sluice(&[
        "stream",
        "--source",
        &src,
        "--target",
        &tgt,
        "--from-dump",
        dir.path().to_str().unwrap(),
        "--filter",
        &filter,
        "--route",
        &merge,
        "--task",
        &db,
    ]);
    let checksum = sluice(&[
        "checksum", "--source", &src, "--target", &tgt, "--filter", &filter, "--route", &merge,
    ]);
    for (what, o) in [
        ("import", import),
        ("stream", stream),
        ("checksum", checksum),
    ] {
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains(&want), "{what}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).trim().lines().count(),
            1,
            "{what}: {}",
            stderr(&o)
        );
    }
    let bad = sluice(&[
        "import",
        "--input",
        "/nonexistent",
        "--target",
        &tgt,
        "--route",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("--route: invalid route `x`"),
        "{}",
        stderr(&bad)
    );
    let mut t = target().conn().await;
    let made: Option<String> = t
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (format!("{db}_all"),),
        )
        .await
        .unwrap();
    assert_eq!(made, None, "a refused route creates nothing");
}
