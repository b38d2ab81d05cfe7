//! What `sluice import` does with schema objects beside the rows. Views: created after the
//! tables, a view over another view whatever the name order, a definer the target lacks
//! replaced by the importing user (with a warning), a second run that leaves them as they
//! were. Tables the user owns (`--no-schema`): rows they held before the import are kept,
//! counted apart in the verification, and never emptied, also not by a rerun.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::path::Path;
use std::process::Output;

use mysql_async::prelude::*;
use sluice_tests::{source, target, unique_name};

fn sluice(args: &[&str]) -> Output {
    sluice_tests::run_cli(env!("CARGO_BIN_EXE_sluice-under-test"), args)
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sluice dump` of database `db` on the source into a new folder, with `extra`.
fn dump(db: &str, extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (url, filter) = (source().url(), format!("{db}.*"));
    let mut args = vec!["dump", "--source", &url, "--output"];
    args.extend([dir.path().to_str().unwrap(), "--filter", &filter]);
    args.extend(extra);
    assert_ok(&sluice(&args));
    dir
}

fn import(input: &Path, extra: &[&str]) -> Output {
    let url = target().url();
    let mut args = vec![
        "import",
        "--input",
        input.to_str().unwrap(),
        "--target",
        &url,
    ];
    args.extend(["--json"]);
    args.extend(extra);
    sluice(&args)
}

#[tokio::test]
async fn views_are_created_after_the_tables_in_dependency_order() {
    let db = unique_name("import_views");
    let mut s = source().conn().await;
    // `a_top` reads `b_middle`, which reads the table: name order is the wrong order. The
    // middle view's definer exists only on the source.
    s.query_drop(format!(
        "CREATE DATABASE `{db}`; USE `{db}`;
         CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10));
         INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three');
         CREATE USER IF NOT EXISTS 'view_owner'@'%';
         GRANT SELECT ON *.* TO 'view_owner'@'%';
         CREATE DEFINER = 'view_owner'@'%' VIEW b_middle AS SELECT id, v FROM t WHERE id > 1;
         CREATE VIEW a_top AS SELECT COUNT(*) AS n, GROUP_CONCAT(v ORDER BY id) AS vs FROM b_middle;"
    ))
    .await
    .unwrap();
    let dir = dump(&db, &[]);
    let out = import(dir.path(), &[]);
    assert_ok(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["views"], 2, "{summary}");
    assert_eq!(summary["tables"], 1, "{summary}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("definer does not exist") && stderr.contains("b_middle"),
        "{stderr}"
    );

    let mut t = target().conn().await;
    let top: (i64, String) = t
        .query_first(format!("SELECT n, vs FROM `{db}`.a_top"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(top, (2, "two,three".to_owned()));
    let definer: String = t
        .query_first(format!(
            "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'b_middle'"
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(definer.starts_with("root@"), "{definer}");

    // Run again: the tables are done, the views are made again and still answer.
    let out = import(dir.path(), &[]);
    assert_ok(&out);
    let n: i64 = t
        .query_first(format!("SELECT n FROM `{db}`.a_top"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 2);

    // --no-schema creates nothing, views included.
    t.query_drop(format!("DROP VIEW `{db}`.a_top"))
        .await
        .unwrap();
    assert_ok(&import(dir.path(), &["--no-schema"]));
    let views: i64 = t
        .query_first(format!(
            "SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{db}'"
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(views, 1, "only b_middle, from the first runs");
}

#[tokio::test]
async fn rows_a_table_held_before_a_no_schema_import_are_never_emptied() {
    let db = unique_name("import_held");
    let mut s = source().conn().await;
    s.query_drop(format!(
        "CREATE DATABASE `{db}`; USE `{db}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t SELECT seq, CONCAT('dump ', seq) FROM seq_1_to_3000;"
    ))
    .await
    .unwrap();
    let dir = dump(&db, &[]);
    // The user's table holds rows of its own, with keys the dump does not have.
    let mut t = target().conn().await;
    t.query_drop(format!(
        "CREATE DATABASE `{db}`; USE `{db}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t SELECT 100000 + seq, 'mine' FROM seq_1_to_10;"
    ))
    .await
    .unwrap();
    let mine = format!("SELECT COUNT(*) FROM `{db}`.t WHERE v = 'mine'");
    let all = format!("SELECT COUNT(*) FROM `{db}`.t");
    let out = import(dir.path(), &["--no-schema"]);
    assert_ok(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rows"], 3000, "{summary}");
    let count = |sql: String| async move {
        let mut t = target().conn().await;
        t.query_first::<i64, _>(sql).await.unwrap().unwrap()
    };
    assert_eq!(count(all.clone()).await, 3010);
    assert_eq!(count(mine.clone()).await, 10);

    // An import that stopped while loading into such a table: the rerun refuses to empty it.
    t.query_drop(format!(
        "UPDATE sluice_meta.import_tables SET state = 'appending' WHERE db = '{db}'"
    ))
    .await
    .unwrap();
    let out = import(dir.path(), &["--no-schema"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("held rows before") && err.contains("--restart"),
        "{err}"
    );
    assert_eq!(count(mine.clone()).await, 10);
    assert_eq!(count(all.clone()).await, 3010);

    // Put back as it was before the import, --restart loads it again beside the user's rows.
    t.query_drop(format!("DELETE FROM `{db}`.t WHERE v <> 'mine'"))
        .await
        .unwrap();
    assert_ok(&import(dir.path(), &["--no-schema", "--restart"]));
    assert_eq!(count(all).await, 3010);
    assert_eq!(count(mine).await, 10);
}

/// `pk, y, s, b + 0, n` of the defaults test's table.
type DefaultsRow = (i64, i64, Option<String>, u8, Option<i64>);

/// Rows that leave columns out (a column list without them, or `VALUES ()`) get the target's
/// defaults, evaluated once (one CURRENT_TIMESTAMP for the table, as Lightning fills it), an
/// AUTO_INCREMENT key its next values, a NOT NULL column without a default the server's
/// implicit default; a per-row default (UUID()) left out is refused. Both load methods.
#[tokio::test]
async fn columns_a_dump_leaves_out_take_the_target_defaults() {
    let db = unique_name("import_defaults");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        &format!("{db}-schema-create.sql"),
        format!("CREATE DATABASE `{db}`;\n"),
    );
    write(
        &format!("{db}.t-schema.sql"),
        "CREATE TABLE t (pk INT PRIMARY KEY AUTO_INCREMENT, y INT NOT NULL DEFAULT 123, \
         s VARCHAR(5) DEFAULT 'abc', b BIT(4) DEFAULT b'101', n INT, \
         at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));\n"
            .into(),
    );
    write(
        &format!("{db}.t.0.sql"),
        "INSERT INTO t () VALUES (), ();\nINSERT INTO t VALUES ();\nINSERT INTO t (n) VALUES (5), (NULL);\n\
         INSERT INTO t (pk, y, s) VALUES (100, 1, NULL);\n"
            .into(),
    );
    let mut t = target().conn().await;
    for method in ["bulk-insert", "load-data"] {
        t.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
            .await
            .unwrap();
        assert_ok(&import(dir.path(), &["--restart", "--load-method", method]));
        let rows: Vec<DefaultsRow> = t
            .query(format!(
                "SELECT pk, y, s, b + 0, n FROM `{db}`.t ORDER BY pk"
            ))
            .await
            .unwrap();
        let abc = || Some("abc".to_owned());
        assert_eq!(
            rows,
            [
                (1, 123, abc(), 5, None),
                (2, 123, abc(), 5, None),
                (3, 123, abc(), 5, None),
                (4, 123, abc(), 5, Some(5)),
                (5, 123, abc(), 5, None),
                (100, 1, None, 5, None),
            ],
            "{method}"
        );
        let (instants, recent): (i64, i64) = t
            .query_first(format!(
                "SELECT COUNT(DISTINCT at), SUM(at > UTC_TIMESTAMP() - INTERVAL 5 MINUTE) FROM `{db}`.t"
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((instants, recent), (1, 6), "{method}");
    }
    // A NOT NULL column without a default, left out: the server's implicit default (0), as
    // MySQL gives it outside strict mode.
    write(
        &format!("{db}.t-schema.sql"),
        "CREATE TABLE t (pk INT PRIMARY KEY, r INT NOT NULL);\n".into(),
    );
    write(
        &format!("{db}.t.0.sql"),
        "INSERT INTO t (pk) VALUES (1);\n".into(),
    );
    t.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
        .await
        .unwrap();
    assert_ok(&import(dir.path(), &["--restart"]));
    let r: Option<i64> = t
        .query_first(format!("SELECT r FROM `{db}`.t WHERE pk = 1"))
        .await
        .unwrap();
    assert_eq!(r, Some(0));

    // A default that differs per row (UUID()) cannot be evaluated once: a row without the
    // column is refused, naming it, rather than every row getting one value.
    write(
        &format!("{db}.t-schema.sql"),
        "CREATE TABLE t (pk INT PRIMARY KEY, u CHAR(36) DEFAULT (UUID()));\n".into(),
    );
    t.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
        .await
        .unwrap();
    let out = import(dir.path(), &["--restart"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{db}.t.0.sql:1")) && err.contains("`u`") && err.contains("uuid()"),
        "{err}"
    );
}

/// A mydumper dump taken with `-G -R -E`: the trigger is made after the rows (it does not
/// fire for them, and does for the next insert), the function, procedure and event after
/// everything, routed with the database.
#[tokio::test]
async fn mydumper_triggers_routines_and_events_come_across() {
    let db = unique_name("import_objects");
    sluice_tests::tools::mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; USE `{db}`;
             CREATE TABLE t (id INT PRIMARY KEY, v INT);
             CREATE TABLE audit (id INT);
             INSERT INTO t SELECT seq, seq FROM seq_1_to_100;
             CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO audit VALUES (NEW.id);
             DELIMITER ;;
             CREATE PROCEDURE two_rows() BEGIN SELECT 1; SELECT 2; END;;
             CREATE FUNCTION plus_one(x INT) RETURNS INT DETERMINISTIC RETURN x + 1;;
             CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit;;
             DELIMITER ;"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mydumper")
        .args(["--host", "127.0.0.1", "--port", &source().port.to_string()])
        .args([
            "--user",
            "root",
            "--database",
            &db,
            "-G",
            "-R",
            "-E",
            "--outputdir",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("mydumper is installed by ci/setup.sh");
    assert!(status.success());
    let into = format!("{db}_copy");
    let out = import(dir.path(), &["--route", &format!("{db}={into}")]);
    assert_ok(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&summary["triggers"], &summary["routines_and_events"]),
        (&serde_json::json!(1), &serde_json::json!(3)),
        "{summary}"
    );
    let mut t = target().conn().await;
    let count = |sql: String| async move {
        let mut t = target().conn().await;
        t.query_first::<i64, _>(sql).await.unwrap().unwrap()
    };
    assert_eq!(count(format!("SELECT COUNT(*) FROM `{into}`.t")).await, 100);
    assert_eq!(
        count(format!("SELECT COUNT(*) FROM `{into}`.audit")).await,
        0,
        "the trigger fired for imported rows"
    );
    t.query_drop(format!("INSERT INTO `{into}`.t VALUES (101, 1)"))
        .await
        .unwrap();
    assert_eq!(
        count(format!("SELECT COUNT(*) FROM `{into}`.audit")).await,
        1
    );
    assert_eq!(count(format!("SELECT `{into}`.plus_one(41)")).await, 42);
    t.query_drop(format!("CALL `{into}`.two_rows()"))
        .await
        .unwrap();
    assert_eq!(
        count(format!(
            "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{into}'"
        ))
        .await,
        1
    );
}

/// `sluice dump --triggers --routines --events` and back: a trigger with a body over several
/// lines, a function, a procedure and an event, each under its own sql_mode.
#[tokio::test]
async fn sluice_dumps_triggers_routines_and_events_and_imports_them() {
    let db = unique_name("dump_objects");
    sluice_tests::tools::mariadb_client(
        source(),
        None,
        format!(
            "CREATE DATABASE `{db}`; USE `{db}`;
             CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT);
             INSERT INTO t VALUES (1, 10, 20);
             DELIMITER ;;
             CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW
             BEGIN
               SET NEW.a = NEW.id * 2;
               SET NEW.b = NEW.id * 3;
             END;;
             CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;;
             CREATE PROCEDURE two_rows() BEGIN SELECT 1; SELECT 2; END;;
             CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM t WHERE id < 0;;
             DELIMITER ;"
        )
        .as_bytes(),
    );
    let dir = dump(&db, &["--triggers", "--routines", "--events"]);
    assert!(
        dir.path()
            .join(format!("{db}.t-schema-triggers.sql"))
            .exists()
    );
    assert!(dir.path().join(format!("{db}-schema-post.sql")).exists());
    let out = import(dir.path(), &[]);
    assert_ok(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["triggers"], 1, "{summary}");
    assert_eq!(summary["routines_and_events"], 3, "{summary}");
    let mut t = target().conn().await;
    // The imported row kept its values: the trigger came after it.
    let row: (i64, i64) = t
        .query_first(format!("SELECT a, b FROM `{db}`.t WHERE id = 1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row, (10, 20));
    t.query_drop(format!("INSERT INTO `{db}`.t (id) VALUES (5)"))
        .await
        .unwrap();
    let row: (i64, i64, i64) = t
        .query_first(format!(
            "SELECT a, b, `{db}`.twice(21) FROM `{db}`.t WHERE id = 5"
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row, (10, 15, 42));
    t.query_drop(format!("CALL `{db}`.two_rows()"))
        .await
        .unwrap();
    let events: Option<i64> = t
        .query_first(format!(
            "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{db}'"
        ))
        .await
        .unwrap();
    assert_eq!(events, Some(1));
    // A second run makes nothing twice (the table is done; the routines are dropped first).
    assert_ok(&import(dir.path(), &[]));
}
