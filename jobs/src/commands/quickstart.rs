//! `sluice quickstart`: the whole product in one command. Two throwaway MariaDB servers on free
//! loopback ports (the same launcher the tests use), a seeded `shop` database with a light write
//! load, and a one-shot job between them: dump → import → stream → online checksum. Everything
//! it started stops when it ends.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use sluice_core::TableFilter;
use sluice_servers::{MariaDb, Role};
use tokio::sync::watch;

use crate::ExitCode;
use crate::job::file::Job;
use crate::job::runner;

const SEED: &str = "CREATE DATABASE shop;
CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(128), created DATETIME(6) NOT NULL);
CREATE TABLE shop.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(12,2) NOT NULL,
                          status ENUM('new','paid','shipped') NOT NULL, note TEXT, KEY (customer_id));
INSERT INTO shop.customers SELECT seq, CONCAT('customer ', seq), CONCAT('c', seq, '@example.com'), NOW(6) FROM shop.seq_1_to_20000;
INSERT INTO shop.orders (customer_id, amount, status, note)
  SELECT seq % 20000 + 1, (seq % 100000) / 100, ELT(seq % 3 + 1, 'new', 'paid', 'shipped'), IF(seq % 7 = 0, NULL, 'it''s fine')
  FROM shop.seq_1_to_200000;";

fn start(role: Role) -> Result<MariaDb, String> {
    std::panic::catch_unwind(|| MariaDb::start(role)).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the server did not start".into())
    })
}

pub async fn run() -> ExitCode {
    let started = Instant::now();
    eprintln!("== quickstart: starting two throwaway MariaDB servers …");
    let servers = tokio::task::spawn_blocking(|| {
        Ok::<_, String>((start(Role::Source)?, start(Role::Target)?))
    })
    .await;
    let (source, target) = match servers {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            eprintln!("sluice quickstart: {e}");
            return ExitCode::UsageOrInput;
        }
        Err(e) => {
            eprintln!("sluice quickstart: {e}");
            return ExitCode::Transient;
        }
    };
    eprintln!(
        "== quickstart: SOURCE {} (binlog on, ROW), TARGET {}",
        source.url(),
        target.url()
    );
    let mut conn = match source.endpoint().connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice quickstart: {e}");
            return ExitCode::Transient;
        }
    };
    if let Err(e) = conn.query_drop(SEED).await {
        eprintln!("sluice quickstart: seeding the shop database: {e}");
        return ExitCode::Transient;
    }
    eprintln!(
        "== quickstart: seeded shop.customers (20,000 rows) and shop.orders (200,000 rows); writing new orders from now on"
    );
    let (stop_writes, mut writes_stopped) = watch::channel(false);
    let writer = tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            let sql = format!(
                "BEGIN; INSERT INTO shop.orders (customer_id, amount, status) VALUES ({}, 9.99, 'new'); \
                 UPDATE shop.orders SET status = 'paid' WHERE id = {}; COMMIT",
                1 + n % 20_000,
                1 + (n * 7919) % 200_000
            );
            if conn.query_drop(sql).await.is_err() {
                return n;
            }
            n += 1;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                _ = writes_stopped.changed() => return n,
            }
        }
    });
    let storage = match tempfile::Builder::new()
        .prefix("sluice-quickstart-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("sluice quickstart: a temporary folder: {e}");
            return ExitCode::Transient;
        }
    };
    let job = Job {
        name: "quickstart".into(),
        continuous: false,
        source: source.endpoint(),
        target: target.endpoint(),
        storage: storage.path().join("dump").display().to_string(),
        filter: TableFilter::new(&["shop.*"]).unwrap_or_default(),
        routes: Default::default(),
        dump_threads: Some(2),
        dump_format: Some("csv".into()),
        dump_compress: Some("zstd".into()),
        dump_chunk_rows: Some(50_000),
        dump_file_size: None,
        import_threads: Some(2),
        sort_dir: None,
        sort_memory: None,
        load_method: None,
        stream_workers: 2,
        server_id: None,
        status_every: None,
        relay_dir: None,
        relay_retention: None,
        relay_max_bytes: None,
        checksum_threads: Some(2),
        checksum_chunk_rows: None,
        control_listen: None,
        control_token: None,
        schedules: Vec::new(),
    };
    eprintln!(
        "== quickstart: the job: dump (consistent, zstd CSV) → import (sorted, LOAD DATA) → stream from the dump's position → online checksum, all while orders keep coming"
    );
    let (_stop, stop_rx) = watch::channel(false);
    let result = runner::run(job, storage.path().join("quickstart.toml"), stop_rx).await;
    let _ = stop_writes.send(true);
    let written = writer.await.unwrap_or(0);
    match result {
        Ok(summary) => {
            eprintln!(
                "== quickstart: done in {:.1} s: {} rows dumped, {} imported, {} transactions streamed ({written} written during the job); the checksum found TARGET equal to SOURCE",
                started.elapsed().as_secs_f64(),
                summary.dumped_rows,
                summary.imported_rows,
                summary.streamed_transactions
            );
            eprintln!(
                "== quickstart: both servers stop now. Next: `sluice config example > job.toml` for your own servers."
            );
            ExitCode::Success
        }
        Err(failed) => {
            eprintln!("sluice quickstart: {}", failed.message);
            failed.code
        }
    }
}
