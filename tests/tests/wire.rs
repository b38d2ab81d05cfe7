//! `RawConn`, the dump workers' lean text-protocol connection, against a real MariaDB: every
//! column type reads exactly as `mysql_async` reads it, rows straddling the 16 MiB frame limit
//! and batches spanning receive buffers come out whole, and errors, passwords and multiple
//! result sets behave as with the driver.

#![allow(clippy::unwrap_used)] // a panic is a fine failure in a test

use mysql_async::prelude::*;
use mysql_async::{Error, Value};
use sluice_core::{Endpoint, RawConn, Secret};
use sluice_tests::types_table::seed_types_table;
use sluice_tests::{MariaDb, Role, source};

/// What the driver reads for `sql` over the text protocol, cell by cell.
async fn driver_rows(sql: &str) -> Vec<Vec<Option<Vec<u8>>>> {
    let mut conn = source().conn().await;
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap();
    rows.into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    Value::NULL => None,
                    Value::Bytes(b) => Some(b),
                    other => panic!("the text protocol gave {other:?}"),
                })
                .collect()
        })
        .collect()
}

async fn raw(server: &MariaDb) -> RawConn {
    server.endpoint().connect_raw().await.unwrap()
}

fn server_code(e: &Error) -> u16 {
    match e {
        Error::Server(s) => s.code,
        other => panic!("not a server error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_column_type_reads_as_the_driver_reads_it() {
    let db = seed_types_table("wire_types").await;
    let sql = format!("SELECT * FROM `{db}`.t ORDER BY id");
    let expected = driver_rows(&sql).await;
    let mut conn = raw(source()).await;
    let got = conn.query_rows(&sql).await.unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(got, expected);
    // The session is set up as every Sluice connection's.
    let session = conn
        .query_rows("SELECT @@session.time_zone, @@character_set_results, @@session.sql_mode")
        .await
        .unwrap();
    assert_eq!(
        session[0],
        vec![
            Some(b"+00:00".to_vec()),
            Some(b"utf8mb4".to_vec()),
            Some(b"NO_AUTO_VALUE_ON_ZERO".to_vec())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_small_rows_stream_in_batches_and_a_huge_row_among_them_comes_whole() {
    // Enough to need many receive buffers; row 500 is a 17 MB cell, two frames.
    let server = MariaDb::start_with(Role::Source, "max_allowed_packet = 64M");
    let mut conn = raw(&server).await;
    let mut rows = conn
        .query_stream(
            "SELECT seq, IF(seq = 500, REPEAT('b', 17000000), REPEAT('x', seq % 300)) \
             FROM mysql.seq_1_to_200000",
        )
        .await
        .unwrap();
    let (mut count, mut sum, mut batches, mut big) = (0u64, 0u64, 0, 0);
    loop {
        let more = rows
            .next_batch(|cells| {
                let seq: u64 = std::str::from_utf8(cells[0].unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                let text = cells[1].unwrap();
                if seq == 500 {
                    big = text.len();
                    assert!(text.iter().all(|&b| b == b'b'));
                } else {
                    assert_eq!(text.len() as u64, seq % 300, "row {seq}");
                }
                count += 1;
                sum += seq;
                Ok::<(), ()>(())
            })
            .await
            .unwrap();
        if !more {
            break;
        }
        batches += 1;
    }
    assert_eq!(count, 200_000);
    assert_eq!(sum, 200_000 * 200_001 / 2);
    assert_eq!(big, 17_000_000);
    assert!(batches > 10, "{batches} batches");

    // Payloads of exactly 16 MiB − 1 (an empty frame follows), one less, and one more.
    for n in [0xFF_FFFB_usize, 0xFF_FFFA, 0xFF_FFFC] {
        let got = conn
            .query_rows(&format!("SELECT REPEAT('z', {n}), 7"))
            .await
            .unwrap();
        assert_eq!(got[0][0].as_ref().map(Vec::len), Some(n));
        assert_eq!(got[0][1], Some(b"7".to_vec()), "the frame after {n}");
    }
    assert_eq!(
        conn.query_rows("SELECT 'after'").await.unwrap(),
        vec![vec![Some(b"after".to_vec())]]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_keep_the_server_code_and_the_connection_usable() {
    let mut conn = raw(source()).await;
    let e = conn
        .query_rows("SELECT * FROM no_such_db.no_such_table")
        .await
        .unwrap_err();
    assert_eq!(server_code(&e), 1146);
    let e = conn.query_drop("SELEC 1").await.unwrap_err();
    assert_eq!(server_code(&e), 1064);
    // An error after the first rows were sent.
    let e = conn
        .query_rows("SELECT seq, IF(seq < 3, 1, (SELECT 1 UNION SELECT 2)) FROM mysql.seq_1_to_10")
        .await
        .unwrap_err();
    assert_eq!(server_code(&e), 1242, "subquery returns more than 1 row");
    assert_eq!(
        conn.query_rows("SELECT 1 + 1").await.unwrap(),
        vec![vec![Some(b"2".to_vec())]]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_databases_and_several_result_sets() {
    let server = MariaDb::start_with(Role::Source, "");
    let mut admin = server.conn().await;
    admin
        .query_drop(
            "CREATE DATABASE wire_db; \
             CREATE USER 'wire_pw'@'127.0.0.1' IDENTIFIED BY 'sécret \\'quoted\\''; \
             GRANT ALL ON wire_db.* TO 'wire_pw'@'127.0.0.1'; \
             CREATE PROCEDURE wire_db.two() BEGIN SELECT 1; SELECT 2, 3; END",
        )
        .await
        .unwrap();
    let base = server.endpoint();
    let user = Endpoint {
        user: "wire_pw".into(),
        database: Some("wire_db".into()),
        ..base.clone()
    };
    let mut conn = user
        .clone()
        .with_password(Secret::new("sécret 'quoted'"))
        .connect_raw()
        .await
        .unwrap();
    assert_eq!(
        conn.query_rows("SELECT DATABASE(), CURRENT_USER()")
            .await
            .unwrap(),
        vec![vec![
            Some(b"wire_db".to_vec()),
            Some(b"wire_pw@127.0.0.1".to_vec())
        ]]
    );
    assert!(conn.id() > 0);
    // A procedure's result sets, then its final OK: all read, the connection still in step.
    conn.query_drop("CALL two()").await.unwrap();
    assert_eq!(
        conn.query_rows("CALL two()").await.unwrap(),
        vec![vec![Some(b"1".to_vec())]]
    );
    assert_eq!(
        conn.query_rows("SELECT 'next'").await.unwrap(),
        vec![vec![Some(b"next".to_vec())]]
    );
    conn.quit().await;

    let wrong = user.with_password(Secret::new("guess")).connect_raw().await;
    let message = wrong.err().unwrap().to_string();
    assert!(
        message.contains("1045") || message.contains("Access denied"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_killed_mid_result_is_an_error_not_a_hang() {
    let mut conn = raw(source()).await;
    let id = conn.id();
    let mut rows = conn
        .query_stream("SELECT seq, REPEAT('k', 200) FROM mysql.seq_1_to_5000000")
        .await
        .unwrap();
    let mut admin = source().conn().await;
    let mut seen = 0u64;
    let outcome = loop {
        match rows
            .next_batch(|_| {
                seen += 1;
                Ok::<(), ()>(())
            })
            .await
        {
            Ok(true) if seen > 1000 && seen < 2_000_000 => {
                // Killed once rows flow, well before the end.
                if admin.query_drop(format!("KILL {id}")).await.is_ok() {
                    seen = 2_000_000;
                }
            }
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    match outcome {
        Err(sluice_core::BatchError::Wire(e)) => {
            let text = e.to_string();
            assert!(
                text.contains("closed") || text.contains("killed") || text.contains("reset"),
                "{text}"
            );
        }
        other => panic!("the rows ended without an error: {other:?}"),
    }
}
