//! Rows of binlog files written by other servers (MySQL 5.7 and 8.0, MariaDB 10.5), decoded by
//! the streamer's own path: each row event against the table as the target's schema view gives
//! it, every cell made a SQL literal by `cell::literal`, the changes written as SQL by
//! `sql::append_changes` and run on the harness's target. What the target then holds is
//! compared with what the source repositories' own tests assert about those files
//! (../shared/fixtures/binlogs/*.expected.md).

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use std::io::{BufReader, Cursor, Read};
use std::path::PathBuf;
use std::sync::Arc;

use mysql_async::prelude::*;
use mysql_common::binlog::EventStreamReader;
use mysql_common::binlog::consts::{BinlogVersion, EventType};
use mysql_common::binlog::events::{Event, EventData, TransactionPayloadEvent};
use mysql_common::binlog::row::BinlogRow;
use sluice_core::{Endpoint, TableName};
use sluice_streamer::cell::{literal, row_literals};
use sluice_streamer::schema_view::SchemaView;
use sluice_streamer::sql::append_changes;
use sluice_streamer::transaction::{ChangeKind, RowChange};
use sluice_tests::{target, unique_name};

fn fixture(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/binlogs")
        .join(rel);
    if path.is_file() {
        return Some(path);
    }
    eprintln!(
        "\n!!!!!!!! FIXTURE SUITE DID NOT RUN: {} is missing (CI has it; a plain clone may not) !!!!!!!!\n",
        path.display()
    );
    None
}

/// Every event of a binlog file, with the events of a compressed transaction (MySQL 8
/// TRANSACTION_PAYLOAD) expanded after it, as the binlog stream expands them.
fn events(path: &std::path::Path) -> Vec<Event> {
    let mut input = BufReader::new(std::fs::File::open(path).unwrap());
    let mut magic = [0u8; 4];
    input.read_exact(&mut magic).unwrap();
    assert_eq!(&magic, b"\xfebin", "{}", path.display());
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut out = Vec::new();
    while let Some(ev) = reader.read(&mut input).unwrap() {
        let payload = (ev.header().event_type_raw() == EventType::TRANSACTION_PAYLOAD_EVENT as u8)
            .then(|| {
                ev.read_event::<TransactionPayloadEvent<'_>>()
                    .unwrap()
                    .danger_decompress()
            });
        out.push(ev);
        if let Some(bytes) = payload {
            let mut inner = Cursor::new(bytes);
            while let Some(e) = reader.read_decompressed(&mut inner).unwrap() {
                out.push(e);
            }
        }
    }
    out
}

/// Creates `ddl`'s table in a new database of the target, then applies the first `limit` row
/// events of `file` on `table` to it the way the streamer does. Returns the database.
async fn replay(file: &str, table: &str, ddl: &str, limit: usize) -> Option<String> {
    replay_files(&[file], table, ddl, limit).await
}

/// [`replay`] over consecutive binlog files.
async fn replay_files(files: &[&str], table: &str, ddl: &str, limit: usize) -> Option<String> {
    let paths = files
        .iter()
        .map(|f| fixture(f))
        .collect::<Option<Vec<_>>>()?;
    let file = files.join(" + ");
    let db = unique_name("binlog_rows");
    let mut conn = target().conn().await;
    conn.query_drop(format!("CREATE DATABASE `{db}`; USE `{db}`; {ddl}"))
        .await
        .unwrap();
    let endpoint: Endpoint = target().url().parse().unwrap();
    let mut view = SchemaView::new(endpoint.clone());
    let def = view
        .table(&TableName::new(&db, table))
        .await
        .unwrap()
        .unwrap();
    let mut apply = endpoint.connect().await.unwrap();
    // The file's events carry table maps of their own; a reader keeps them by table id.
    let all: Vec<Event> = paths.iter().flat_map(|p| events(p)).collect();
    let mut maps = std::collections::HashMap::new();
    let mut applied = 0;
    for ev in &all {
        let data = match ev.read_data() {
            Ok(Some(EventData::TableMapEvent(tme))) => {
                maps.insert(tme.table_id(), tme.into_owned());
                continue;
            }
            Ok(Some(EventData::RowsEvent(data))) => data,
            _ => continue,
        };
        let tme = &maps[&data.table_id()];
        if tme.table_name() != table || applied == limit {
            continue;
        }
        applied += 1;
        let kind = ChangeKind::of(&data);
        let mut changes = Vec::new();
        for row in data.rows(tme) {
            let (before, after) = row.unwrap();
            let cells = |r: Option<&BinlogRow>, old: Option<&BinlogRow>| {
                r.map(|r| row_literals(r, old, &def.columns).unwrap())
            };
            changes.push(RowChange {
                table: Arc::clone(&def),
                kind,
                before: cells(before.as_ref(), None),
                after: cells(after.as_ref(), before.as_ref()),
            });
        }
        let mut sql = Vec::new();
        append_changes(&mut sql, &changes, false);
        apply
            .query_drop(String::from_utf8(sql).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{file}: applying row event {applied}: {e}"));
    }
    assert!(applied > 0, "{file}: no row event on {table}");
    Some(db)
}

/// The target's rows of `select` (each column as text, NULL as "NULL").
async fn rows(select: &str) -> Vec<Vec<String>> {
    let rows: Vec<mysql_async::Row> = target().conn().await.query(select).await.unwrap();
    rows.into_iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    r.get::<Option<String>, _>(i)
                        .flatten()
                        .unwrap_or_else(|| "NULL".into())
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn bit_columns_as_mysql_8_writes_them() {
    // mysql.foo(a BIT(3), b TEXT, c BIT(8)): every written row is a = 0b100, b = "foo",
    // c = 0b100000.
    let Some(db) = replay(
        "rust_mysql_common/mysql_type_bit.000001",
        "foo",
        "CREATE TABLE foo(a BIT(3), b TEXT, c BIT(8))",
        usize::MAX,
    )
    .await
    else {
        return;
    };
    let got = rows(&format!("SELECT a + 0, b, c + 0 FROM `{db}`.foo")).await;
    assert!(!got.is_empty());
    for row in got {
        assert_eq!(row, ["4", "foo", "32"]);
    }
}

#[tokio::test]
async fn enum_and_set_columns_sent_as_strings_with_their_real_type_in_metadata() {
    const S298: &str = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456780123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456780123456789012345678901234567890123456789";
    let ddl = "CREATE TABLE t(f1 CHAR(128), f2 VARCHAR(300), f3 ENUM('var1', 'variant2', 'foo'), \
               f4 SET('one', 'two', 'three', 'four'), f5 TEXT)";
    let file = "rust_mysql_common/mysql-enum-string-set.000001";
    // The written row: f3 = 1, f4 = 0b0101.
    let Some(db) = replay(file, "t", ddl, 1).await else {
        return;
    };
    let s100 = "0123456789".repeat(10);
    assert_eq!(
        rows(&format!("SELECT f1, f2, f3, f4, f5 FROM `{db}`.t")).await,
        [[s100.as_str(), S298, "var1", "one,three", "0123456789"]]
    );
    // Then updated to f3 = 2, f4 = 0b1010 (the update finds the row by all its columns).
    let db = replay(file, "t", ddl, 2).await.unwrap();
    assert_eq!(
        rows(&format!("SELECT f1, f2, f3, f4, f5 FROM `{db}`.t")).await,
        [["field1", "field_2", "variant2", "two,four", S298]]
    );
    // Then deleted.
    let db = replay(file, "t", ddl, 3).await.unwrap();
    assert!(rows(&format!("SELECT * FROM `{db}`.t")).await.is_empty());
}

#[tokio::test]
async fn mysql_binary_json_with_opaque_scalars() {
    let Some(db) = replay(
        "rust_mysql_common/json-opaque.binlog",
        "test",
        "CREATE TABLE test (a JSON)",
        usize::MAX,
    )
    .await
    else {
        return;
    };
    let want = [
        r#"{"a": "base64:type15:VQ=="}"#,
        r#"{"b": "2012-03-18"}"#,
        r#"{"c": "2012-03-18 11:30:45.000000"}"#,
        r#"{"c": "87:31:46.654321"}"#,
        // mysql_common's own decode gives these two as strings; MySQL prints a DECIMAL in a
        // JSON document as a number, and that is what the target must hold.
        r#"{"d": 123.456}"#,
        r#"{"e": 9.00}"#,
        r#"{"e": [0, 1, true, false]}"#,
        r#"{"e": null}"#,
    ];
    let got = rows(&format!("SELECT a FROM `{db}`.test")).await;
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (row, want) in got.iter().zip(want) {
        // The text itself, not only its meaning: 9.00 keeps its scale.
        assert_eq!(row[0], want);
    }
}

#[tokio::test]
async fn mysql_5_7_decimal_and_bigint_keys() {
    let Some(db) = replay(
        "rust-mysql-binlog/bin-log.000001",
        "foo",
        "CREATE TABLE foo(id BIGINT AUTO_INCREMENT PRIMARY KEY, val_decimal DECIMAL(10, 5) NOT NULL, \
         comment VARCHAR(255) NOT NULL)",
        usize::MAX,
    )
    .await
    else {
        return;
    };
    assert_eq!(
        rows(&format!("SELECT * FROM `{db}`.foo ORDER BY id")).await,
        [
            ["1", "0.10000", "zero point one"],
            ["2", "1.00000", "one point zero"]
        ]
    );
}

#[tokio::test]
async fn rows_inside_a_mysql_8_compressed_transaction() {
    // The TRANSACTION_PAYLOAD decompresses to QUERY, TABLE_MAP, WRITE_ROWS, XID: one row, 1.
    let Some(db) = replay(
        "rust_mysql_common/transaction_compression.000001",
        "tb1",
        "CREATE TABLE tb1 (c1 INT)",
        usize::MAX,
    )
    .await
    else {
        return;
    };
    assert_eq!(rows(&format!("SELECT * FROM `{db}`.tb1")).await, [["1"]]);
}

#[tokio::test]
async fn mariadb_10_5_rows_with_full_metadata() {
    // toddy_test.outbox: id (PRI), topic and event_type utf8mb4, event binary, created.
    let Some(db) = replay(
        "rust_mysql_common/mariadb-bin.000001",
        "outbox",
        "CREATE TABLE outbox (id INT PRIMARY KEY, topic VARCHAR(255) CHARACTER SET utf8mb4, \
         event_type ENUM('a', 'b', 'c') CHARACTER SET utf8mb4, event BLOB NOT NULL, \
         created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        usize::MAX,
    )
    .await
    else {
        return;
    };
    let got = rows(&format!(
        "SELECT id, topic, event_type + 0, event, UNIX_TIMESTAMP(created) \
         FROM `{db}`.outbox ORDER BY id"
    ))
    .await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0][..4], ["62", "foo", "2", r#"{"foo":1}"#]);
    assert_eq!(
        got[0][4], "1650493084",
        "TIMESTAMP is seconds since the epoch"
    );
    assert_eq!(got[1][..4], ["63", "foo", "2", r#"{"foo":1}"#]);
    assert_eq!(got[1][4], "1650493195");
}

#[tokio::test]
async fn mysql_5_7_utf8mb4_table() {
    let Some(db) = replay(
        "mysql-binlog-connector-rust/mysql-bin.000080",
        "emoji",
        "CREATE TABLE emoji (id INT NOT NULL, value VARCHAR(255) CHARACTER SET utf8mb4 \
         COLLATE utf8mb4_unicode_ci NOT NULL, PRIMARY KEY (id)) DEFAULT CHARSET=utf8mb4",
        usize::MAX,
    )
    .await
    else {
        return;
    };
    let got: Vec<(i64, Vec<u8>)> = target()
        .conn()
        .await
        .query(format!("SELECT id, value FROM `{db}`.emoji"))
        .await
        .unwrap();
    assert_eq!(got, [(2, Vec::new())]);
}

#[tokio::test]
async fn mysql_8_0_45_keys_changed_across_two_binlog_files() {
    // t1(id SERIAL): six inserts; in the next file ids 1..3 become 101..103 and the rest go.
    let Some(db) = replay_files(
        &[
            "percona-binlog-server/data_80045_gtid/binlog.000001",
            "percona-binlog-server/data_80045_gtid/binlog.000002",
        ],
        "t1",
        "CREATE TABLE t1(id SERIAL, PRIMARY KEY(id))",
        usize::MAX,
    )
    .await
    else {
        return;
    };
    assert_eq!(
        rows(&format!("SELECT id FROM `{db}`.t1 ORDER BY id")).await,
        [["101"], ["102"], ["103"]]
    );
}

#[tokio::test]
async fn a_minimal_row_image_is_named_and_an_unsigned_int_over_2_31_is_exact() {
    // noria.t1 written with binlog_row_image=MINIMAL: the after image holds @0, @2 and @4, and
    // @4 is 3230202323 (an INT UNSIGNED above 2^31).
    let Some(path) = fixture("rust_mysql_common/minimal_row_metadata.000001") else {
        return;
    };
    let db = unique_name("binlog_minimal");
    target()
        .conn()
        .await
        .query_drop(format!(
            "CREATE DATABASE `{db}`; CREATE TABLE `{db}`.t1 \
             (a INT, b BLOB, c CHAR(10), d INT, e INT UNSIGNED)"
        ))
        .await
        .unwrap();
    let endpoint: Endpoint = target().url().parse().unwrap();
    let def = SchemaView::new(endpoint)
        .table(&TableName::new(&db, "t1"))
        .await
        .unwrap()
        .unwrap();
    let all = events(&path);
    let mut maps = std::collections::HashMap::new();
    let mut checked = 0;
    for ev in &all {
        match ev.read_data() {
            Ok(Some(EventData::TableMapEvent(tme))) => {
                maps.insert(tme.table_id(), tme.into_owned());
            }
            Ok(Some(EventData::RowsEvent(data))) => {
                let (_, after) = data.rows(&maps[&data.table_id()]).next().unwrap().unwrap();
                let after = after.unwrap();
                let refused = row_literals(&after, None, &def.columns);
                assert!(
                    refused.as_ref().is_err_and(|e| e.contains(
                        "the row image holds 3 of the table's 5 columns (binlog_row_image is not FULL)"
                    )),
                    "{refused:?}"
                );
                // The image packs the present columns: its third cell is @4.
                let e = literal(after.as_ref(2), &def.columns[4]).map(String::from_utf8);
                assert_eq!(e, Ok(Ok("3230202323".into())));
                checked += 1;
            }
            _ => {}
        }
    }
    assert_eq!(checked, 1);
}
