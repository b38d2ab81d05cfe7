//! Dumps written by other tools (../shared/fixtures/dumps), imported with `sluice import` and
//! checked against the results their source projects' tests expect (each case's EXPECTED.md).
//!
//! A clone without ../shared/fixtures prints loudly that this suite did not run; the core
//! suite (tests/import.rs) still covers every reader and parser with data made here.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::path::Path;
use std::process::Command;

use mysql_async::prelude::*;
use sluice_tests::fixture_cases::{self, check, fixtures};
use sluice_tests::target;

const BIN: &str = env!("CARGO_BIN_EXE_sluice-under-test");

/// `sluice import --restart` on a fixture folder or script; fails unless it succeeds.
fn import_fixture(input: &Path, extra: &[&str]) -> String {
    fixture_cases::import_fixture(BIN, input, extra)
}

/// lightning_various_types: SQL dumps of BIT, DECIMAL, DOUBLE, temporal, CHAR, BINARY,
/// ENUM/SET, empty strings and extreme integers. `vt.json` is left out: one of its documents
/// nests deeper than MariaDB's JSON limit of 32 levels, which MariaDB refuses (the import
/// reports it with the server's warning: see the next test).
#[tokio::test]
async fn lightning_various_types() {
    let Some(dir) = fixtures() else { return };
    let data = dir.join("lightning/lightning_various_types/data");
    // The case's database is `vt`; the shared target may hold it from an earlier run.
    target()
        .conn()
        .await
        .query_drop("DROP DATABASE IF EXISTS vt")
        .await
        .unwrap();
    // One test does all of `vt`, so nothing else touches it meanwhile.
    json_is_refused_with_the_servers_reason(&data).await;
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args([
            "import",
            "--input",
            data.to_str().unwrap(),
            "--target",
            &target().url(),
            "--filter",
            "vt.*",
            "--filter",
            "!vt.json",
        ])
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(&[
        (
            "SELECT count(pk), bin(min(pk)), bin(max(pk)) FROM vt.bit",
            "16\t0\t11",
        ),
        ("SELECT sum(ref) FROM vt.bit WHERE pk = 0b10", "82"),
        (
            "SELECT count(pk), min(pk), max(pk), sum(pk) FROM vt.decimal",
            "50\t-99.9990\t99.9912\t-9.9123",
        ),
        (
            "SELECT ref FROM vt.decimal WHERE pk BETWEEN -1.0 AND 0.0",
            "22",
        ),
        (
            "SELECT count(pk), min(pk), max(pk) FROM vt.double",
            "41\t9.85967654375977e-305\t1.0142320547350045e304",
        ),
        (
            "SELECT ref FROM vt.double WHERE pk BETWEEN 1e100 AND 1e120",
            "245",
        ),
        (
            "SELECT count(pk), min(pk), max(pk), count(uk) FROM vt.datetime",
            "70\t1026-09-21 15:15:54.335745\t9889-01-08 08:51:03.389832\t70",
        ),
        (
            "SELECT ref FROM vt.datetime WHERE pk BETWEEN '2882-01-01' AND '2882-12-31'",
            "7",
        ),
        (
            "SELECT count(pk), min(pk), max(pk) FROM vt.char",
            "50\t090abbb2-f22e-4f97-a4fe-a52eb1a80a0b\tfde1328c-409c-43a8-b1b0-8c35c8000f92",
        ),
        (
            "SELECT ref FROM vt.char WHERE pk = '55dc0343-db6a-4208-9872-9096305b8c07'",
            "41",
        ),
        // The source test expects hex(min(pk)) = '' (TiDB); MariaDB pads BINARY(16) with zero
        // bytes, so the empty key reads back as sixteen 00 bytes.
        (
            "SELECT count(pk), hex(min(pk)), hex(max(pk)) FROM vt.binary",
            "51\t00000000000000000000000000000000\tFDE1328C409C43A8B1B08C35C8000F92",
        ),
        (
            "SELECT ref FROM vt.binary WHERE pk = x'55dc0343db6a420898729096305b8c07'",
            "41",
        ),
        ("SELECT count(*) FROM vt.`enum-set`", "26"),
        (
            "SELECT count(*) FROM vt.`enum-set` WHERE find_in_set('x50', `set`) > 0",
            "10",
        ),
        (
            "SELECT `set` FROM vt.`enum-set` WHERE `enum` = 'gcc'",
            "x00,x06,x07,x09,x17,x20,x23,x24,x27,x37,x44,x46,x49,x54,x55,x58,x61,x62",
        ),
        ("SELECT count(*) FROM vt.empty_strings", "6"),
        ("SELECT sum(pk) FROM vt.empty_strings WHERE a = ''", "5"),
        ("SELECT sum(pk) FROM vt.empty_strings WHERE a = 0x22", "18"),
        ("SELECT sum(pk) FROM vt.empty_strings WHERE a = 0x27", "40"),
        (
            "SELECT count(*), sum(id) FROM vt.bigint",
            "6\t-3341565093352173667",
        ),
    ])
    .await;
}

/// `vt.json` holds a document nested deeper than MariaDB allows: the import must not pass it
/// over silently but fail verification, quoting the server's reason.
async fn json_is_refused_with_the_servers_reason(data: &std::path::Path) {
    target()
        .conn()
        .await
        .query_drop("DROP TABLE IF EXISTS vt.json")
        .await
        .unwrap();
    target()
        .conn()
        .await
        .query_drop("CREATE DATABASE IF NOT EXISTS vt")
        .await
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args([
            "import",
            "--input",
            data.to_str().unwrap(),
            "--target",
            &target().url(),
            "--filter",
            "vt.json",
            "--restart",
        ])
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("92 rows were sent but the target took 91") && err.contains("JSON"),
        "{err}"
    );
}

/// lightning_csv: no header, backslash escapes, JSON, binary bytes, CRLF in quoted fields,
/// `\N` NULLs, an upper-case `.CSV` extension, and a schema file that creates `CSV` for the
/// folder's `csv`.
#[tokio::test]
async fn lightning_csv() {
    let Some(dir) = fixtures() else { return };
    target()
        .conn()
        .await
        .query_drop("DROP DATABASE IF EXISTS csv")
        .await
        .unwrap();
    import_fixture(
        &dir.join("lightning/lightning_csv/data"),
        &["--csv-header", "false"],
    );
    check(&[
        (
            "SELECT count(*), sum(PROCESSLIST_TIME), sum(THREAD_OS_ID), count(PROCESSLIST_STATE) FROM csv.threads",
            "43\t322253\t303775702\t3",
        ),
        ("SELECT count(*) FROM csv.threads WHERE PROCESSLIST_TIME IS NOT NULL", "12"),
        ("SELECT hex(t), j, hex(b) FROM csv.escapes WHERE i = 1", "5C\t{\"?\": []}\tFFFFFFFF"),
        ("SELECT hex(t), j, hex(b) FROM csv.escapes WHERE i = 2", "22\t\"\\n\\n\\n\"\t0D0A0D0A"),
        ("SELECT hex(t), j, hex(b) FROM csv.escapes WHERE i = 3", "0A\t[\",,,\"]\t5C2C5C2C"),
        ("SELECT id FROM csv.empty_strings WHERE a = '\"'", "3"),
        ("SELECT count(*) FROM csv.empty_strings WHERE b <> ''", "0"),
    ])
    .await;
}

/// lightning_column_permutation: a CSV header lists the columns in another order than the
/// table; leading zeros stay.
#[tokio::test]
async fn lightning_column_permutation() {
    let Some(dir) = fixtures() else { return };
    target()
        .conn()
        .await
        .query_drop("DROP DATABASE IF EXISTS perm")
        .await
        .unwrap();
    import_fixture(
        &dir.join("lightning/lightning_column_permutation/data"),
        &[],
    );
    check(&[
        ("SELECT count(*) FROM perm.test_perm", "5"),
        (
            "SELECT fund_seq_no, region_code, credit_code FROM perm.test_perm WHERE contract_no = '2020061000019011020164030597'",
            "202006100001901102016403059520200627\t000002\t33",
        ),
    ])
    .await;
}

/// The MD5 chain the employees test database defines: over the rows in key order,
/// `@crc := MD5(CONCAT_WS('#', @crc, cols…))`.
async fn chained_md5(table: &str, cols: &str, order: &str) -> String {
    let mut conn = target().conn().await;
    conn.query_drop("SET @crc = ''").await.unwrap();
    let _: Vec<String> = conn
        .query(format!("SELECT @crc := MD5(CONCAT_WS('#', @crc, {cols})) FROM employees.{table} ORDER BY {order}"))
        .await
        .unwrap();
    conn.query_first("SELECT @crc").await.unwrap().unwrap()
}

/// mysqldump/test_db-employees: a mysqldump-style script that creates the schema and `source`s
/// data files. Only two data files are in the fixture, so the script is run with the `source`
/// lines of the others removed (in a temporary copy; the fixture is never edited).
#[tokio::test]
async fn mysqldump_employees_script() {
    let Some(dir) = fixtures() else { return };
    let case = dir.join("mysqldump/test_db-employees");
    let work = tempfile::tempdir().unwrap();
    let script = std::fs::read_to_string(case.join("employees.sql")).unwrap();
    let kept: Vec<&str> = script
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with("source ")
                || t.contains("load_departments.dump")
                || t.contains("load_dept_manager.dump")
        })
        .collect();
    std::fs::write(work.path().join("employees.sql"), kept.join("\n")).unwrap();
    for f in ["load_departments.dump", "load_dept_manager.dump"] {
        std::fs::copy(case.join(f), work.path().join(f)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args([
            "import",
            "--input",
            work.path().join("employees.sql").to_str().unwrap(),
            "--target",
            &target().url(),
        ])
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(&[
        ("SELECT count(*) FROM employees.departments", "9"),
        ("SELECT count(*) FROM employees.dept_manager", "24"),
    ])
    .await;
    assert_eq!(
        chained_md5("departments", "dept_no, dept_name", "dept_no").await,
        "d1af5e170d2d1591d776d5638d71fc5f"
    );
    assert_eq!(
        chained_md5(
            "dept_manager",
            "dept_no, emp_no, from_date, to_date",
            "dept_no, emp_no"
        )
        .await,
        "8720e2f0853ac9096b689c14664f847e"
    );
}

/// lightning_checkpoint_timestamp: `INSERT INTO cpts VALUES (), …` into a table whose only
/// column defaults to CURRENT_TIMESTAMP(6): one instant for the whole import, as in Lightning
/// (the default is evaluated once on the target; see importer/src/defaults.rs).
#[tokio::test]
async fn lightning_checkpoint_timestamp() {
    let Some(dir) = fixtures() else { return };
    target()
        .conn()
        .await
        .query_drop("DROP DATABASE IF EXISTS cpts")
        .await
        .unwrap();
    import_fixture(
        &dir.join("lightning/lightning_checkpoint_timestamp/data"),
        &[],
    );
    check(&[(
        "SELECT COUNT(ts) a, COUNT(DISTINCT ts) b FROM cpts.cpts",
        "98\t1",
    )])
    .await;
}

/// lightning_default-columns: `INSERT INTO t () VALUES ()`, `INSERT INTO t VALUES ()` and a
/// column list without the AUTO_INCREMENT column: defaults and generated keys.
#[tokio::test]
async fn lightning_default_columns() {
    let Some(dir) = fixtures() else { return };
    target()
        .conn()
        .await
        .query_drop("DROP DATABASE IF EXISTS defcol")
        .await
        .unwrap();
    import_fixture(&dir.join("lightning/lightning_default-columns/data"), &[]);
    check(&[
        ("SELECT min(pk), count(pk) FROM defcol.t", "1\t9"),
        (
            "SELECT COUNT(*) FROM defcol.t WHERE x IS NOT NULL OR y <> 123 OR z IS NULL \
             OR z NOT BETWEEN UTC_TIMESTAMP() - INTERVAL 5 MINUTE AND UTC_TIMESTAMP()",
            "0",
        ),
        ("SELECT xx FROM defcol.u WHERE yy = 40", "1"),
        ("SELECT xx FROM defcol.u WHERE yy = 60", "2"),
    ])
    .await;
}

/// lightning_no_schema: a data file and no schema file. Into a table made by hand with
/// `--no-schema`; without it, refused naming the table and file.
#[tokio::test]
async fn lightning_no_schema() {
    let Some(dir) = fixtures() else { return };
    let mut conn = target().conn().await;
    conn.query_drop(
        "DROP DATABASE IF EXISTS noschema; CREATE DATABASE noschema; \
         CREATE TABLE noschema.t (x INT PRIMARY KEY)",
    )
    .await
    .unwrap();
    let data = dir.join("lightning/lightning_no_schema/data");
    let refused = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args(["import", "--input", data.to_str().unwrap(), "--target"])
        .arg(target().url())
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("no schema file for noschema.t (noschema.t.sql)")
            && err.contains("--no-schema"),
        "{err}"
    );
    import_fixture(&data, &["--no-schema"]);
    check(&[("SELECT sum(x) FROM noschema.t", "120")]).await;
}

/// lightning_tool_1472: a TiDB schema (`PRIMARY KEY CLUSTERED`), created without the word, and
/// AUTO_INCREMENT columns that go on after the imported values.
#[tokio::test]
async fn lightning_tool_1472() {
    let Some(dir) = fixtures() else { return };
    let mut conn = target().conn().await;
    conn.query_drop("DROP DATABASE IF EXISTS EE1472")
        .await
        .unwrap();
    import_fixture(&dir.join("lightning/lightning_tool_1472/data"), &[]);
    conn.query_drop("INSERT INTO EE1472.pk VALUES (); INSERT INTO EE1472.notpk (a) VALUES (3333)")
        .await
        .unwrap();
    check(&[
        ("SELECT count(a), max(a) FROM EE1472.pk", "3\t5"),
        ("SELECT b FROM EE1472.notpk WHERE a = 3333", "10"),
    ])
    .await;
}
