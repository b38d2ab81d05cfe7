//! Dumpling and Lightning cases of ../shared/fixtures/dumps that go beyond loading a folder:
//! views, dumps taken by Sluice of the fixtures' input data (compared row by row after an
//! import), Dumpling's golden output, Parquet written by Spark and a CSV with a header. Each
//! case's EXPECTED.md says what the source project's test checks. The helpers are in
//! tests/src/fixture_cases.rs.
//!
//! A clone without ../shared/fixtures prints loudly that this suite did not run. Each test
//! drops its databases first: the servers may hold them from an earlier run.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::path::{Path, PathBuf};
use std::process::Output;

use sluice_tests::fixture_cases::{
    self, check, drop_databases, drop_databases_on, exec, exec_on, fixtures, rows_text,
};
use sluice_tests::tools::mariadb_client;
use sluice_tests::{source, target};

/// `sluice dump --source SOURCE --output OUT --filter 'DB.*' --threads 2 EXTRA…`; fails
/// unless it succeeds.
fn sluice_dump(db: &str, out: &Path, extra: &[&str]) {
    let source_url = source().url();
    let filter = format!("{db}.*");
    let mut args = vec![
        "dump",
        "--source",
        &source_url,
        "--output",
        out.to_str().unwrap(),
        "--filter",
        &filter,
        "--threads",
        "2",
    ];
    args.extend(extra);
    let o = sluice_tests::run_cli(env!("CARGO_BIN_EXE_sluice-under-test"), &args);
    assert!(
        o.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The data files a Sluice dump wrote for `db.table` (`db.table.NNNNNNNNN.sql`), sorted.
fn data_files(dir: &Path, db: &str, table: &str) -> Vec<String> {
    let prefix = format!("{db}.{table}.");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            n.strip_prefix(&prefix).is_some_and(|rest| {
                rest.strip_suffix(".sql")
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .collect();
    names.sort();
    names
}

/// Fails unless `source_query` on the SOURCE and `target_query` on the TARGET return the same
/// rows (in the order the queries give them), and at least one.
async fn same_rows(source_query: &str, target_query: &str) {
    let want = rows_text(&mut source().conn().await, source_query).await;
    let got = rows_text(&mut target().conn().await, target_query).await;
    assert!(!want.is_empty(), "{source_query}: no rows on the source");
    assert!(
        want == got,
        "rows differ\n  source {source_query}:\n{want}\n  target {target_query}:\n{got}"
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_sluice-under-test");

/// `sluice import --restart` on a fixture folder or script; fails unless it succeeds.
fn import_fixture(input: &Path, extra: &[&str]) -> String {
    fixture_cases::import_fixture(BIN, input, extra)
}

/// `sluice import --input INPUT --target … EXTRA…`, however it ends.
fn sluice_import(input: &Path, extra: &[&str]) -> Output {
    fixture_cases::sluice_import(BIN, input, extra)
}

/// dumpling/views: the fixture holds only the view (with Dumpling's placeholder table of the
/// same name, which the importer does not create). Its table is created first on the target,
/// as the source test's run.sh does on its source. views-schema-create.sql carries MySQL 8's
/// `DEFAULT ENCRYPTION='N'` (in a `/*!80016 */` comment, which MariaDB runs and refuses), so the
/// importer creates the database plainly, here over the one that already exists.
#[tokio::test]
async fn dumpling_views() {
    let Some(dir) = fixtures() else { return };
    drop_databases(&["views"]).await;
    let rows = (1..=20)
        .map(|i| format!("({i},'{i}')"))
        .collect::<Vec<_>>()
        .join(",");
    exec(&[
        "CREATE DATABASE views",
        "CREATE TABLE views.t (a bigint, b varchar(255))",
        &format!("INSERT INTO views.t VALUES {rows}"),
    ])
    .await;
    import_fixture(&dir.join("dumpling/views/data"), &[]);
    check(&[
        ("SELECT count(*), sum(a) FROM views.v", "20\t210"),
        (
            "SELECT TABLE_TYPE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = 'views' AND TABLE_NAME = 'v'",
            "VIEW",
        ),
        ("SELECT count(*) FROM views.t", "20"),
    ])
    .await;

    // Into a database that does not exist yet (the view's SELECT still reads `views`.`t`): the
    // schema file's CREATE DATABASE is refused and the database is created plainly.
    drop_databases(&["views_fallback"]).await;
    let out = sluice_import(
        &dir.join("dumpling/views/data"),
        &["--restart", "--route", "views=views_fallback"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.lines().any(|l| l.contains("WARN")
            && l.contains("CREATE DATABASE")
            && l.contains("views_fallback")),
        "no warning about the refused CREATE DATABASE:\n{err}"
    );
    check(&[
        ("SELECT count(*), sum(a) FROM views_fallback.v", "20\t210"),
        (
            "SELECT TABLE_TYPE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = 'views_fallback' AND TABLE_NAME = 'v'",
            "VIEW",
        ),
    ])
    .await;
}

/// lightning_view: a view over a table and a view (in another database) over that view, each
/// with Dumpling's placeholder table. Their definer `root`@`192.168.198.178` does not exist on
/// the target, so the importing user becomes the definer, with a warning naming the view.
#[tokio::test]
async fn lightning_view() {
    let Some(dir) = fixtures() else { return };
    drop_databases(&["db0", "db1"]).await;
    let out = sluice_import(&dir.join("lightning/lightning_view/data"), &["--restart"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for view in ["db1.v1", "db0.v2"] {
        assert!(
            err.lines()
                .any(|l| l.contains("definer") && l.contains(view)),
            "no definer warning names {view}:\n{err}"
        );
    }
    check(&[
        ("SELECT count(*), sum(i) FROM `db1`.v1", "3\t6"),
        ("SELECT count(*) FROM `db0`.v2", "1"),
        ("SELECT s FROM `db0`.v2", "test1"),
        (
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA IN ('db0', 'db1') ORDER BY 1, 2",
            "db0\tv2\tVIEW\ndb1\ttbl\tBASE TABLE\ndb1\tv1\tVIEW",
        ),
    ])
    .await;
}

/// Loads a Dumpling input case into a fresh database `db` on the SOURCE: `tables` are the
/// CREATE TABLE statements (EXPECTED.md's setup), `files` the data files run through the
/// `mariadb` client.
async fn load_source(db: &str, tables: &[&str], files: &[PathBuf]) {
    drop_databases_on(source(), &[db]).await;
    let mut statements = vec![format!("CREATE DATABASE `{db}`"), format!("USE `{db}`")];
    statements.extend(tables.iter().map(|t| (*t).to_owned()));
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    exec_on(source(), &statements).await;
    for f in files {
        mariadb_client(source(), Some(db), &std::fs::read(f).unwrap());
    }
}

/// dumpling/rows: 100 rows of strings full of quotes, backslashes and control characters,
/// dumped by Sluice in chunks of 10 rows and imported under another name.
#[tokio::test]
async fn dumpling_rows_dump_and_import() {
    let Some(dir) = fixtures() else { return };
    load_source(
        "rows",
        &["CREATE TABLE t (id int not null auto_increment primary key, a varchar(24))"],
        &[dir.join("dumpling/rows/data/rows.t.000000000.sql")],
    )
    .await;
    drop_databases(&["rows_copy"]).await;
    let out = tempfile::tempdir().unwrap();
    sluice_dump("rows", out.path(), &["--chunk-rows", "10"]);
    let files = data_files(out.path(), "rows", "t");
    assert_eq!(files.len(), 10, "100 rows in chunks of 10: {files:?}");
    import_fixture(out.path(), &["--route", "rows=rows_copy"]);
    same_rows(
        "SELECT id, a, hex(a) FROM `rows`.t ORDER BY id",
        "SELECT id, a, hex(a) FROM rows_copy.t ORDER BY id",
    )
    .await;
    check(&[("SELECT count(*) FROM rows_copy.t", "100")]).await;
}

/// dumpling/rows_extreme_int: keys at the INT and BIGINT UNSIGNED limits (and negative ones),
/// dumped by Sluice in chunks of 10 rows and imported under another name.
#[tokio::test]
async fn dumpling_rows_extreme_int_dump_and_import() {
    let Some(dir) = fixtures() else { return };
    let data = dir.join("dumpling/rows_extreme_int/data");
    load_source(
        "rei",
        &[
            "CREATE TABLE t (id int not null auto_increment primary key, a varchar(24))",
            "CREATE TABLE t2 (id bigint unsigned not null auto_increment primary key, a varchar(24))",
        ],
        &[data.join("rei.t.0.sql"), data.join("rei.t2.0.sql")],
    )
    .await;
    drop_databases(&["rei_copy"]).await;
    let out = tempfile::tempdir().unwrap();
    sluice_dump("rei", out.path(), &["--chunk-rows", "10"]);
    // Ids at both ends of the type: equal key ranges would put 98 rows in one chunk; the
    // planner re-splits the skewed range (core/src/chunks.rs), so no chunk holds more than
    // twice --chunk-rows and several threads share the table.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("metadata.json")).unwrap()).unwrap();
    for t in meta["tables"].as_array().unwrap() {
        let rows: Vec<u64> = t["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["rows"].as_u64().unwrap())
            .collect();
        assert!(
            rows.len() >= 5 && rows.iter().all(|&r| r <= 20),
            "{}: {rows:?}",
            t["table"]
        );
        assert_eq!(rows.iter().sum::<u64>(), 100);
    }
    import_fixture(out.path(), &["--route", "rei=rei_copy"]);
    for table in ["t", "t2"] {
        same_rows(
            &format!("SELECT id, a, hex(a) FROM rei.{table} ORDER BY id"),
            &format!("SELECT id, a, hex(a) FROM rei_copy.{table} ORDER BY id"),
        )
        .await;
    }
    check(&[
        (
            "SELECT count(*), min(id), max(id) FROM rei_copy.t",
            "100\t-2\t2147483647",
        ),
        (
            "SELECT count(*), max(id) FROM rei_copy.t2",
            "100\t18446744073709551615",
        ),
    ])
    .await;
}

/// The `CREATE TABLE …;` statement of a dumpling/primary_key input script.
fn create_table_of(script: &str) -> &str {
    let start = script.to_ascii_lowercase().find("create table").unwrap();
    let end = start + script[start..].find(';').unwrap() + 1;
    &script[start..end]
}

/// dumpling/primary_key: each input table (rows in random order; case 3 without a primary key
/// and with a GEOMETRY column) is dumped by Sluice and imported under another name, and
/// Dumpling's golden output for it, loaded as a Dumpling folder, gives the same rows. Sluice's
/// SQL differs from Dumpling's in form (so the files are not compared byte for byte); the values
/// are what both must keep.
#[tokio::test]
async fn dumpling_primary_key() {
    let Some(dir) = fixtures() else { return };
    let case_dir = dir.join("dumpling/primary_key");
    for n in 0..4 {
        let table = format!("pk_case_{n}");
        let script = case_dir.join(format!("data/{table}.sql"));
        load_source("primary_key", &[], std::slice::from_ref(&script)).await;
        drop_databases(&["primary_key_copy", "primary_key_golden"]).await;

        // Sluice's dump, imported.
        let out = tempfile::tempdir().unwrap();
        sluice_dump("primary_key", out.path(), &[]);
        import_fixture(out.path(), &["--route", "primary_key=primary_key_copy"]);

        // Dumpling's golden file as the chunk of a Dumpling folder. The importer takes a
        // folder with `.000000000` chunks for Dumpling's only with Dumpling's `metadata` file
        // (else it is a Sluice dump missing its metadata.json), so one is written too.
        let golden = tempfile::tempdir().unwrap();
        let g = golden.path();
        std::fs::write(
            g.join("primary_key-schema-create.sql"),
            "CREATE DATABASE `primary_key`;\n",
        )
        .unwrap();
        let body = std::fs::read_to_string(&script).unwrap();
        std::fs::write(
            g.join(format!("primary_key.{table}-schema.sql")),
            format!("{}\n", create_table_of(&body)),
        )
        .unwrap();
        std::fs::copy(
            case_dir.join(format!("result/{table}.sql")),
            g.join(format!("primary_key.{table}.000000000.sql")),
        )
        .unwrap();
        std::fs::write(
            g.join("metadata"),
            "Started dump at: 2020-01-01 00:00:00\nFinished dump at: 2020-01-01 00:00:00\n",
        )
        .unwrap();
        import_fixture(g, &["--route", "primary_key=primary_key_golden"]);

        let (columns, order) = if n < 3 {
            ("a, b", "a")
        } else {
            ("a, b, HEX(g), ST_AsText(g)", "a, b, HEX(g)")
        };
        let source_query = format!("SELECT {columns} FROM primary_key.{table} ORDER BY {order}");
        for db in ["primary_key_copy", "primary_key_golden"] {
            same_rows(
                &source_query,
                &format!("SELECT {columns} FROM {db}.{table} ORDER BY {order}"),
            )
            .await;
        }
    }
}

/// lightning_parquet: Parquet files written by Spark (gzip pages, `part-*.gz.parquet`), loaded
/// with `--no-schema` into tables created first from the fixture's db.sql. Lightning routes the
/// files by a pattern on their folder; here each is copied as `test.<table>.0.parquet`.
#[tokio::test]
async fn lightning_parquet() {
    let Some(dir) = fixtures() else { return };
    let case_dir = dir.join("lightning/lightning_parquet");
    drop_databases(&["test"]).await;
    exec(&["CREATE DATABASE test"]).await;
    mariadb_client(
        target(),
        Some("test"),
        &std::fs::read(case_dir.join("db.sql")).unwrap(),
    );
    let work = tempfile::tempdir().unwrap();
    // The importer skips a data file without a `{db}.{table}-schema.sql` (with a warning),
    // `--no-schema` or not, so each table gets its CREATE TABLE from db.sql (not run here:
    // `--no-schema`).
    let db_sql = std::fs::read_to_string(case_dir.join("db.sql")).unwrap();
    for create in db_sql.split("CREATE TABLE `").skip(1) {
        let table = &create[..create.find('`').unwrap()];
        let create = &create[..create.find(";\n").unwrap()];
        std::fs::write(
            work.path().join(format!("test.{table}-schema.sql")),
            format!("CREATE TABLE `{create};\n"),
        )
        .unwrap();
    }
    for entry in std::fs::read_dir(case_dir.join("data/test")).unwrap() {
        let folder = entry.unwrap().path();
        let name = folder.file_name().unwrap().to_str().unwrap().to_owned();
        let mut n = 0;
        for file in std::fs::read_dir(&folder).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "parquet") {
                std::fs::copy(&file, work.path().join(format!("{name}.{n}.parquet"))).unwrap();
                n += 1;
            }
        }
    }
    import_fixture(work.path(), &["--no-schema"]);
    check(&[
        ("SELECT count(*) FROM test.customer", "20"),
        ("SELECT count(*) FROM test.district", "10"),
        ("SELECT count(*) FROM test.history", "100"),
        ("SELECT count(*) FROM test.item", "100"),
        ("SELECT count(*) FROM test.new_order", "100"),
        ("SELECT count(*) FROM test.order_line", "100"),
        ("SELECT count(*) FROM test.orders", "100"),
        ("SELECT count(*) FROM test.stock", "50"),
        ("SELECT count(*) FROM test.warehouse", "1"),
        ("SELECT sum(c_id) FROM test.customer", "210"),
        ("SELECT w_name FROM test.warehouse", "eLNEDIW"),
        // The file holds an instant (TIMESTAMP_MICROS, adjusted to UTC): 12:17:16 UTC.
        // Lightning's expectation, 20:17:16, is that instant in its CI's UTC+8; Sluice's
        // sessions run in UTC, so a DATETIME column gets the UTC wall time.
        (
            "SELECT c_since, c_discount FROM test.customer WHERE c_id = 20",
            "2020-09-10 12:17:16\t0.0585",
        ),
    ])
    .await;
}

/// lightning_split_large_file: a CSV with a header line and `NULL` as the NULL marker. The
/// source test checks where Lightning cuts the file into regions for a given
/// max-region-size; that does not apply here: Sluice's importer has no byte-range regions (it
/// parses each data file whole, in one piece), so only the rows it loads are checked.
#[tokio::test]
async fn lightning_split_large_file() {
    let Some(dir) = fixtures() else { return };
    drop_databases(&["slf"]).await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::copy(
        dir.join("lightning/lightning_split_large_file/split_large_file.csv"),
        w.join("slf.t.0.csv"),
    )
    .unwrap();
    std::fs::write(w.join("slf-schema-create.sql"), "CREATE DATABASE slf;\n").unwrap();
    std::fs::write(
        w.join("slf.t-schema.sql"),
        "CREATE TABLE t (a INT PRIMARY KEY, b INT, c INT);\n",
    )
    .unwrap();
    import_fixture(w, &["--csv-header", "true", "--csv-null", "NULL"]);
    check(&[(
        "SELECT a, b, c FROM slf.t ORDER BY a",
        "1\t1\t2\n2\t2\t1\n3\t2\t2\n4\t2\t2",
    )])
    .await;
}
