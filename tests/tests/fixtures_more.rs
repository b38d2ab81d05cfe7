//! More dumps written by other tools (../shared/fixtures/dumps), imported with `sluice import`
//! and checked against the results their source projects' tests expect (each case's
//! EXPECTED.md). The first cases are in tests/fixtures.rs; the helpers in tests/src/fixture_cases.rs.
//!
//! A clone without ../shared/fixtures prints loudly that this suite did not run. Each test
//! drops its databases first: the target may hold them from an earlier run.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mysql_async::prelude::*;
use sluice_tests::fixture_cases::{self, check, drop_databases, exec, fixtures};
use sluice_tests::target;

/// The `db.table` names among these databases' tables, sorted, and whether each database
/// exists.
async fn tables_of(databases: &[&str]) -> (Vec<String>, Vec<bool>) {
    let mut conn = target().conn().await;
    let mut tables = Vec::new();
    let mut exists = Vec::new();
    for db in databases {
        let t: Vec<String> = conn
            .exec(
                "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables \
                 WHERE table_schema = ?",
                (db,),
            )
            .await
            .unwrap();
        tables.extend(t);
        let n: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?",
                (db,),
            )
            .await
            .unwrap();
        exists.push(n == Some(1));
    }
    tables.sort();
    (tables, exists)
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

/// lightning_black-white-list: table filters, and a `mysql` schema in the dump that is taken
/// only when named.
#[tokio::test]
async fn lightning_black_white_list() {
    let Some(dir) = fixtures() else { return };
    let data = dir.join("lightning/lightning_black-white-list/data");
    let reset = || async {
        drop_databases(&["firstdb", "seconddb"]).await;
        exec(&["DROP TABLE IF EXISTS mysql.testtable"]).await;
    };
    let mysql_testtable = || async {
        let (t, _) = tables_of(&["mysql"]).await;
        t.contains(&"mysql.testtable".to_owned())
    };

    // Run A: Lightning's `-f 'f*.*'` is the same pattern in Sluice.
    reset().await;
    import_fixture(&data, &["--filter", "f*.*"]);
    let (tables, exists) = tables_of(&["firstdb", "seconddb"]).await;
    assert_eq!(tables, ["firstdb.first", "firstdb.second"]);
    assert_eq!(exists, [true, false], "firstdb present, seconddb absent");
    assert!(!mysql_testtable().await, "mysql.testtable was created");

    // Run B: Lightning's `-f '!firstdb.*' -f '*.second' -f 'seconddb.fourth'` takes the last
    // matching rule, so `*.second` re-includes firstdb.second. In Sluice an exclusion wins
    // over every inclusion whatever the order (and a table no inclusion names is left out),
    // so the same selection is written with inclusions only. `*.second` does not take
    // `mysql.*`: a system schema is taken only when a pattern names it.
    reset().await;
    import_fixture(
        &data,
        &["--filter", "*.second", "--filter", "seconddb.fourth"],
    );
    let (tables, exists) = tables_of(&["firstdb", "seconddb"]).await;
    assert_eq!(tables, ["firstdb.second", "seconddb.fourth"]);
    assert_eq!(exists, [true, true]);
    assert!(!mysql_testtable().await, "mysql.testtable was created");

    // Run C: Lightning's rules word for word. Under Sluice's precedence `!firstdb.*` also
    // excludes firstdb.second, so nothing of firstdb is imported.
    reset().await;
    import_fixture(
        &data,
        &[
            "--filter",
            "!firstdb.*",
            "--filter",
            "*.second",
            "--filter",
            "seconddb.fourth",
        ],
    );
    let (tables, _) = tables_of(&["firstdb", "seconddb"]).await;
    assert_eq!(tables, ["seconddb.fourth"]);
    assert!(!mysql_testtable().await, "mysql.testtable was created");
}

/// lightning_checkpoint_engines: tables split over numbered chunk files; a rerun without
/// `--restart` skips the finished tables, and one left `loading` (as by a run that died) is
/// loaded again from scratch, so no row is doubled.
#[tokio::test]
async fn lightning_checkpoint_engines() {
    let Some(dir) = fixtures() else { return };
    let data = dir.join("lightning/lightning_checkpoint_engines/data");
    drop_databases(&["cpeng"]).await;
    let expect = [
        ("SELECT count(*), sum(c) FROM cpeng.a", "4\t10"),
        ("SELECT count(*), sum(c) FROM cpeng.b", "4\t46"),
    ];
    let summary = |stdout: &str| -> serde_json::Value {
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    };
    let first = summary(&import_fixture(&data, &["--json"]));
    assert_eq!(first["rows"], 8, "{first}");
    check(&expect).await;

    // Again, resuming: both tables are done.
    let out = sluice_import(&data, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = summary(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(
        (&again["tables_skipped"], &again["rows"]),
        (&2.into(), &0.into()),
        "{again}"
    );
    check(&expect).await;

    // As if the import had died while loading `b`: its checkpoint says `loading`.
    exec(&[
        "UPDATE sluice_meta.import_tables SET state = 'loading' WHERE db = 'cpeng' AND tbl = 'b'",
    ])
    .await;
    let out = sluice_import(&data, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resumed = summary(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(
        (&resumed["tables_skipped"], &resumed["rows"]),
        (&1.into(), &4.into()),
        "{resumed}"
    );
    check(&expect).await;
}

/// lightning_issue_410: a CSV whose header names long columns.
#[tokio::test]
async fn lightning_issue_410() {
    let Some(dir) = fixtures() else { return };
    drop_databases(&["issue410"]).await;
    import_fixture(&dir.join("lightning/lightning_issue_410/data"), &[]);
    check(&[
        ("SELECT count(*) FROM issue410.row_flow_d", "1"),
        (
            "SELECT A123456789012345678901234567890123456789, B123456789012345678901234567890123456789, \
             X123456789012345678901234567890123456789, Y12345678901234567890123456789012345678, Z \
             FROM issue410.row_flow_d",
            "A\tB\tX\tY\tZ",
        ),
    ])
    .await;
}

/// lightning_partitioned-table: a table partitioned by hash.
#[tokio::test]
async fn lightning_partitioned_table() {
    let Some(dir) = fixtures() else { return };
    drop_databases(&["partitioned"]).await;
    import_fixture(&dir.join("lightning/lightning_partitioned-table/data"), &[]);
    check(&[
        ("SELECT count(1), sum(a) FROM partitioned.a", "8\t277151781"),
        (
            "SELECT create_options LIKE '%partitioned%' FROM information_schema.tables \
             WHERE table_schema = 'partitioned' AND table_name = 'a'",
            "1",
        ),
    ])
    .await;
}

/// lightning_too_many_columns: a CSV with 256 columns. The table (256 × VARCHAR(16), utf8mb4
/// by the server's default) is wider than InnoDB's strict row-size check allows (ERROR 1118 at
/// CREATE TABLE; TiDB, the source test's target, has no such limit), so the test creates it
/// from the fixture's own schema file with `innodb_strict_mode` off and imports the data with
/// `--no-schema`. The actual rows are short and fit.
#[tokio::test]
async fn lightning_too_many_columns() {
    let Some(dir) = fixtures() else { return };
    let data = dir.join("lightning/lightning_too_many_columns/data");
    drop_databases(&["too_many_columns"]).await;
    let schema = std::fs::read_to_string(data.join("too_many_columns.t-schema.sql")).unwrap();
    exec(&[
        "CREATE DATABASE too_many_columns",
        "USE too_many_columns",
        "SET SESSION innodb_strict_mode = OFF",
        schema.trim().trim_end_matches(';'),
    ])
    .await;
    import_fixture(&data, &["--no-schema"]);
    check(&[
        ("SELECT count(*) FROM too_many_columns.t", "1"),
        (
            "SELECT COL001, COL100, COL256 FROM too_many_columns.t",
            "1001\t1100\t1256",
        ),
    ])
    .await;
}

/// lightning_tool_135: lower-case INSERTs; AUTO_INCREMENT continues after the imported rows.
#[tokio::test]
async fn lightning_tool_135() {
    let Some(dir) = fixtures() else { return };
    drop_databases(&["tool_135"]).await;
    import_fixture(&dir.join("lightning/lightning_tool_135/data"), &[]);
    check(&[
        (
            "SELECT count(a), sum(a), min(a), max(a) FROM tool_135.bar1",
            "1000\t601500\t102\t1101",
        ),
        (
            "SELECT count(a), sum(a), min(a), max(a) FROM tool_135.bar2",
            "1000\t548500\t49\t1048",
        ),
        (
            "SELECT count(a), sum(a), min(a), max(a), count(b), sum(b), min(b), max(b) FROM tool_135.bar3",
            "1000\t532218793\t1071\t1048054\t1000\t645500\t146\t1145",
        ),
        (
            "SELECT count(a), sum(a), min(a), max(a) FROM tool_135.bar4",
            "1000\t588500\t89\t1088",
        ),
        (
            "SELECT count(a), sum(a), min(a), max(a), count(b), sum(b), min(b), max(b) FROM tool_135.bar5",
            "1000\t534846115\t970\t1045357\t1000\t563500\t64\t1063",
        ),
    ])
    .await;
    exec(&[
        "INSERT INTO tool_135.bar1 () VALUES ()",
        "INSERT INTO tool_135.bar2 () VALUES ()",
        "INSERT INTO tool_135.bar3 (a) VALUES (229267)",
        "INSERT INTO tool_135.bar4 () VALUES ()",
        "INSERT INTO tool_135.bar5 (a) VALUES (668233)",
    ])
    .await;
    check(&[
        (
            "SELECT count(a), min(a), max(a) > 1101 FROM tool_135.bar1",
            "1001\t102\t1",
        ),
        (
            "SELECT count(a), min(a), max(a) > 1048 FROM tool_135.bar2",
            "1001\t49\t1",
        ),
        (
            "SELECT count(a), sum(a), min(a), max(a), count(b), min(b), max(b) > 1145 FROM tool_135.bar3",
            "1001\t532448060\t1071\t1048054\t1001\t146\t1",
        ),
        (
            "SELECT count(a), min(a), max(a) > 1088 FROM tool_135.bar4",
            "1001\t89\t1",
        ),
        (
            "SELECT count(a), sum(a), min(a), max(a), count(b), min(b), max(b) > 1063 FROM tool_135.bar5",
            "1001\t535514348\t970\t1045357\t1001\t64\t1",
        ),
    ])
    .await;
}

/// lightning_tool_1420: upper-case database and column names.
#[tokio::test]
async fn lightning_tool_1420() {
    let Some(dir) = fixtures() else { return };
    drop_databases(&["EE1420"]).await;
    import_fixture(&dir.join("lightning/lightning_tool_1420/data"), &[]);
    check(&[("SELECT `ROLE_ID` FROM `EE1420`.`pt_role`", "1")]).await;
}

/// lightning_tool_241: tables with an empty data file or none at all are still created; zero
/// dates in column defaults.
#[tokio::test]
async fn lightning_tool_241() {
    let Some(dir) = fixtures() else { return };
    drop_databases(&["qyjc"]).await;
    import_fixture(&dir.join("lightning/lightning_tool_241/data"), &[]);
    let empty = [
        "q_alarm_group",
        "q_alarm_message_log",
        "q_alarm_receiver",
        "q_config",
        "q_report_circular_data",
        "q_report_desc",
        "q_report_summary",
        "q_system_update",
        "q_user_log",
    ]
    .map(|t| format!("SELECT count(*) FROM qyjc.{t}"));
    let mut expectations: Vec<(&str, &str)> = empty.iter().map(|q| (q.as_str(), "0")).collect();
    expectations.push((
        "SELECT count(id), min(id), max(id) FROM qyjc.q_fish_event",
        "84\t8343146\t8343229",
    ));
    check(&expectations).await;
}

/// mydumper-examples-mocker_test: a mydumper folder, with the table `i` renamed to `ı`
/// (U+0131) as the source test does, in a temporary copy.
#[tokio::test]
async fn mydumper_examples_mocker_test() {
    let Some(dir) = fixtures() else { return };
    let case = dir.join("lightning/mydumper-examples-mocker_test");
    let work = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&case).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let renamed = match name.as_str() {
            "EXPECTED.md" => continue,
            "mocker_test.i-schema.sql" => "mocker_test.ı-schema.sql",
            "mocker_test.i.sql" => "mocker_test.ı.sql",
            other => other,
        };
        std::fs::copy(case.join(&name), work.path().join(renamed)).unwrap();
    }
    drop_databases(&["mocker_test"]).await;
    import_fixture(work.path(), &[]);
    check(&[
        ("SELECT count(DISTINCT ID) cnt FROM mocker_test.`tbl_autoid`", "10000"),
        ("SELECT count(DISTINCT Name) cnt FROM mocker_test.`tbl_multi_index`", "10000"),
        ("SELECT * FROM mocker_test.ı LIMIT 2", "🤪"),
        ("SELECT `ſ` FROM mocker_test.ı", "🤪"),
        (
            "SELECT * FROM mocker_test.report_case_high_risk LIMIT 2",
            "2\t4\t6\t8\t10",
        ),
        (
            "SELECT count(*), sum(id), max(name), min(name), sum(crc32(name)) FROM mocker_test.tbl_autoid",
            "10000\t50005000\t4-9-9\t0-0-0\t21388950023608",
        ),
        (
            "SELECT count(*), avg(age), max(name), min(name), sum(crc32(name)) FROM mocker_test.tbl_multi_index",
            "10000\t477.7500\t4+9+9\t0+0+0\t21433704622808",
        ),
        ("SELECT age FROM mocker_test.tbl_multi_index WHERE name = '1+2+3'", "6"),
        ("SELECT count(*) FROM mocker_test.tbl_multi_index WHERE age = 6", "20"),
    ])
    .await;
    exec(&["INSERT INTO mocker_test.tbl_autoid (name) VALUES ('new')"]).await;
    check(&[(
        "SELECT id > 10000 FROM mocker_test.tbl_autoid WHERE name = 'new'",
        "1",
    )])
    .await;
}

// ---- mysqldump/mysqlnothx: single-file scripts compared with a PostgreSQL rendering ----

/// One `COPY table [(cols)] FROM stdin;` block of a PostgreSQL script.
struct CopyBlock {
    table: String,
    columns: Option<Vec<String>>,
    rows: Vec<Vec<Option<String>>>,
}

/// What an expected-postgresql script states: the tables it creates and its COPY blocks.
struct PgExpected {
    created: Vec<String>,
    copies: Vec<CopyBlock>,
}

fn pg_ident(s: &str) -> String {
    s.trim().trim_matches('"').replace("\"\"", "\"")
}

/// A field of COPY's text format: `\N` is NULL; backslash escapes `\\`, `\t`, `\n`, `\r`,
/// `\b`, `\f`, `\v`, and any other escaped character stands for itself.
fn pg_field(raw: &str) -> Option<String> {
    if raw == "\\N" {
        return None;
    }
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(out)
}

fn parse_pg(text: &str) -> PgExpected {
    let mut created = Vec::new();
    let mut copies = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
            let name = rest.split_once(" (").map_or(rest, |(n, _)| n);
            created.push(pg_ident(name));
        } else if let Some(rest) = line.strip_prefix("COPY ") {
            let head = rest
                .strip_suffix(" FROM stdin;")
                .unwrap_or_else(|| panic!("unexpected COPY line {line:?}"));
            let (table, columns) = match head.split_once('(') {
                Some((t, cols)) => (
                    pg_ident(t),
                    Some(
                        cols.trim_end_matches(')')
                            .split(',')
                            .map(pg_ident)
                            .collect(),
                    ),
                ),
                None => (pg_ident(head), None),
            };
            let mut rows = Vec::new();
            for row in lines.by_ref() {
                if row == "\\." {
                    break;
                }
                rows.push(row.split('\t').map(pg_field).collect());
            }
            copies.push(CopyBlock {
                table,
                columns,
                rows,
            });
        }
    }
    PgExpected { created, copies }
}

/// Compares the rows of `db.(block.table)` with the block's, as unordered multisets. Values
/// are compared as text in the form the PostgreSQL rendering writes them: BIT(n) as n binary
/// digits, binary strings as bytea hex (`\x…`, compared as hex digits), SET as a text array.
async fn compare_copy(conn: &mut mysql_async::Conn, db: &str, block: &CopyBlock) {
    let cols: Vec<(String, String, Option<u64>)> = conn
        .exec(
            "SELECT column_name, data_type, numeric_precision FROM information_schema.columns \
             WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            (db, &block.table),
        )
        .await
        .unwrap();
    assert!(!cols.is_empty(), "{db}.{} was not created", block.table);
    let picked: Vec<&(String, String, Option<u64>)> = match &block.columns {
        None => cols.iter().collect(),
        Some(names) => names
            .iter()
            .map(|n| {
                cols.iter()
                    .find(|c| c.0.eq_ignore_ascii_case(n))
                    .unwrap_or_else(|| panic!("{db}.{} has no column {n}", block.table))
            })
            .collect(),
    };
    let binary = |t: &str| {
        matches!(
            t,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
        )
    };
    let exprs: Vec<String> = picked
        .iter()
        .map(|(name, ty, precision)| match ty.as_str() {
            "bit" => format!("LPAD(BIN(`{name}`), {}, '0')", precision.unwrap_or(1)),
            t if binary(t) => format!("HEX(`{name}`)"),
            _ => format!("`{name}`"),
        })
        .collect();
    let query = format!("SELECT {} FROM `{db}`.`{}`", exprs.join(", "), block.table);
    let got_rows: Vec<mysql_async::Row> = conn
        .query(&query)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    let mut got: Vec<Vec<Option<String>>> = got_rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<Option<String>, _>(i).flatten())
                .collect()
        })
        .collect();
    let mut expected: Vec<Vec<Option<String>>> = block
        .rows
        .iter()
        .map(|row| {
            assert_eq!(row.len(), picked.len(), "{}: {row:?}", block.table);
            row.iter()
                .zip(&picked)
                .map(|(v, (_, ty, _))| {
                    v.as_ref().map(|v| match ty.as_str() {
                        t if binary(t) => v.trim_start_matches("\\x").to_ascii_uppercase(),
                        // A PostgreSQL text array: {"a","b"} is the SET value a,b.
                        "set" => v
                            .trim_start_matches('{')
                            .trim_end_matches('}')
                            .split(',')
                            .map(|e| e.trim_matches('"'))
                            .collect::<Vec<_>>()
                            .join(","),
                        _ => v.clone(),
                    })
                })
                .collect()
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "rows of {db}.{}", block.table);
}

/// Checks the target database `db` against expected-postgresql/`case`.sql: every COPY block's
/// rows, and every other table it creates exists and is empty (except those in `skip`).
async fn compare_with_pg(dir: &Path, case: &str, db: &str, skip: &[&str]) {
    let text = std::fs::read_to_string(dir.join(format!(
        "mysqldump/mysqlnothx/expected-postgresql/{case}.sql"
    )))
    .unwrap();
    let expected = parse_pg(&text);
    assert!(!expected.copies.is_empty(), "{case}: no COPY block parsed");
    let mut conn = target().conn().await;
    for block in &expected.copies {
        compare_copy(&mut conn, db, block).await;
    }
    for t in &expected.created {
        if skip.contains(&t.as_str()) || expected.copies.iter().any(|c| &c.table == t) {
            continue;
        }
        let n: Option<u64> = conn
            .query_first(format!("SELECT count(*) FROM `{db}`.`{t}`"))
            .await
            .unwrap_or_else(|e| panic!("{db}.{t}: {e}"));
        assert_eq!(n, Some(0), "{db}.{t} should exist and be empty");
    }
}

/// The script mysql/`case`.sql with `prefix` put before it, in a temporary folder. These
/// dumps were taken of one database without `--databases`, so they hold no `USE`; the prefix
/// says where they go, as `mysql DB < dump.sql` would.
fn nothx_script(
    dir: &Path,
    case: &str,
    prefix: &str,
    edit: impl Fn(String) -> String,
) -> (tempfile::TempDir, PathBuf) {
    let body = std::fs::read_to_string(dir.join(format!("mysqldump/mysqlnothx/mysql/{case}.sql")))
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join(format!("{case}.sql"));
    std::fs::write(&path, format!("{prefix}\n{}", edit(body))).unwrap();
    (work, path)
}

/// Imports mysql/`case`.sql into a new database `nothx_{case}` and compares its rows.
async fn mysqlnothx_case(case: &str) {
    let Some(dir) = fixtures() else { return };
    let db = format!("nothx_{case}");
    drop_databases(&[&db]).await;
    let (_work, script) = nothx_script(
        &dir,
        case,
        &format!("CREATE DATABASE `{db}`;\nUSE `{db}`;"),
        |s| s,
    );
    import_fixture(&script, &[]);
    compare_with_pg(&dir, case, &db, &[]).await;
}

#[tokio::test]
async fn mysqlnothx_simple() {
    mysqlnothx_case("simple").await;
}

#[tokio::test]
async fn mysqlnothx_binary_bit() {
    mysqlnothx_case("binary_bit").await;
}

#[tokio::test]
async fn mysqlnothx_enum_set() {
    mysqlnothx_case("enum_set").await;
}

/// tables.sql says of itself that it "will not successfully import into MySQL": its table
/// `integers` has ten AUTO_INCREMENT columns. The import stops there with the server's
/// reason, as the `mariadb` client would; without that one statement (the PostgreSQL
/// rendering has no rows for `integers` either) the rest imports and matches.
#[tokio::test]
async fn mysqlnothx_tables() {
    let Some(dir) = fixtures() else { return };
    let db = "nothx_tables";
    let prefix = format!("CREATE DATABASE `{db}`;\nUSE `{db}`;");
    drop_databases(&[db]).await;
    let (_work, script) = nothx_script(&dir, "tables", &prefix, |s| s);
    let out = sluice_import(&script, &["--restart"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("1075") && err.contains("tables.sql:"),
        "{err}"
    );

    drop_databases(&[db]).await;
    let (_work, script) = nothx_script(&dir, "tables", &prefix, |s| {
        let start = s.find("CREATE TABLE integers").unwrap();
        let end = start + s[start..].find(';').unwrap() + 1;
        format!("{}{}", &s[..start], &s[end..])
    });
    import_fixture(&script, &[]);
    compare_with_pg(&dir, "tables", db, &["integers"]).await;
}

/// data_only.sql holds rows without any CREATE TABLE; the table is the one simple.sql creates
/// (expected-postgresql/data_only.sql lists the same row as simple.sql's), made here first.
#[tokio::test]
async fn mysqlnothx_data_only() {
    let Some(dir) = fixtures() else { return };
    let db = "nothx_data_only";
    drop_databases(&[db]).await;
    let simple =
        std::fs::read_to_string(dir.join("mysqldump/mysqlnothx/mysql/simple.sql")).unwrap();
    let create = &simple[simple.find("CREATE TABLE").unwrap()..];
    let create = &create[..create.find(';').unwrap()];
    exec(&[
        &format!("CREATE DATABASE `{db}`"),
        &format!("USE `{db}`"),
        create,
    ])
    .await;
    let (_work, script) = nothx_script(&dir, "data_only", &format!("USE `{db}`;"), |s| s);
    import_fixture(&script, &[]);
    compare_with_pg(&dir, "data_only", db, &[]).await;
}

/// The same dump without a prefix, its database named in the target URL
/// (`mysql://…/nothx_url`): a script without `USE` runs there, as `mysql nothx_url < f.sql`.
#[tokio::test]
async fn mysqlnothx_simple_into_url_database() {
    let Some(dir) = fixtures() else { return };
    let db = "nothx_url";
    drop_databases(&[db]).await;
    exec(&[&format!("CREATE DATABASE `{db}`")]).await;
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-under-test"))
        .args(["import", "--restart", "--input"])
        .arg(dir.join("mysqldump/mysqlnothx/mysql/simple.sql"))
        .args(["--target", &format!("{}/{db}", target().url())])
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    compare_with_pg(&dir, "simple", db, &[]).await;
}
