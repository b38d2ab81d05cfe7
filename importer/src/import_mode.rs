//! Import mode: while a bulk import runs, the target's redo log, not SQL parsing, decides the
//! speed (measured: LOAD DATA into empty tables 6.7–7.4 s with a 96 MiB redo log, 5.1–5.9 s
//! with 2 GiB and `innodb_flush_log_at_trx_commit=2`). Like Lightning's import mode for TiKV,
//! `--import-mode` raises those two settings for the import and puts them back afterwards.
//! The redo log is resized only for imports of 8 GiB or more: the resize itself writes the new
//! log file in full, there and back, which cost more than it saved on a 400 MB import.
//!
//! Order of durability: the original values are written to the meta schema *before* any
//! setting changes, and removed only after they are restored. A run that dies in between
//! leaves them recorded; the next `sluice import` against that target (or
//! `sluice import --restore-target-settings`) restores them first. A target that refuses
//! `SET GLOBAL` (no SUPER / SYSTEM_VARIABLES_ADMIN) gets a warning and a normal import.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{Endpoint, quote_ident};

use crate::ImportError;

/// The redo log size import mode asks for (never shrinks a bigger one).
const IMPORT_LOG_FILE_SIZE: u64 = 2 << 30;
/// Resizing the redo log writes the new file in full, there and back (measured here: about
/// 16 s for 96 MiB → 2 GiB → 96 MiB), which only pays off for big imports.
pub const RESIZE_LOG_FROM_BYTES: u64 = 8 << 30;

fn table(schema: &str) -> String {
    format!("{}.`target_settings`", quote_ident(schema))
}

async fn ensure_table(
    conn: &mut Conn,
    endpoint: &Endpoint,
    schema: &str,
) -> Result<(), ImportError> {
    let err = |e| ImportError::from(endpoint.error("create the target settings table", e));
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS {}",
        quote_ident(schema)
    ))
    .await
    .map_err(err)?;
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {} (name VARCHAR(64) NOT NULL PRIMARY KEY, value VARCHAR(64) NOT NULL) \
         DEFAULT CHARSET = utf8mb4",
        table(schema)
    ))
    .await
    .map_err(|e| ImportError::from(endpoint.error("create the target settings table", e)))
}

/// Puts back settings an earlier import mode changed (after a crash too); returns how many.
pub async fn restore(
    conn: &mut Conn,
    endpoint: &Endpoint,
    schema: &str,
) -> Result<usize, ImportError> {
    ensure_table(conn, endpoint, schema).await?;
    let saved: Vec<(String, String)> = conn
        .query(format!("SELECT name, value FROM {}", table(schema)))
        .await
        .map_err(|e| endpoint.error("read saved target settings", e))?;
    for (name, value) in &saved {
        // Only the two names import mode writes are ever restored: nothing else is pasted.
        let sql = match name.as_str() {
            "innodb_flush_log_at_trx_commit" | "innodb_log_file_size" => {
                let v: u64 = value.parse().map_err(|_| {
                    ImportError::Target(format!("saved setting {name} = `{value}` is not a number"))
                })?;
                format!("SET GLOBAL {name} = {v}")
            }
            _ => continue,
        };
        conn.query_drop(&sql)
            .await
            .map_err(|e| endpoint.error(format!("restore {name}"), e))?;
        tracing::info!(setting = %name, value = %value, "target setting restored");
    }
    conn.query_drop(format!("DELETE FROM {}", table(schema)))
        .await
        .map_err(|e| endpoint.error("forget restored target settings", e))?;
    Ok(saved.len())
}

/// Records the current values, then raises them for the import: the flush policy always, the
/// redo log size only with `resize_log` (an import of at least [`RESIZE_LOG_FROM_BYTES`]).
/// `Ok(false)` when the target does not allow it (a warning has been logged).
pub async fn enter(
    conn: &mut Conn,
    endpoint: &Endpoint,
    schema: &str,
    resize_log: bool,
) -> Result<bool, ImportError> {
    ensure_table(conn, endpoint, schema).await?;
    let current: Option<(u64, u64)> = conn
        .query_first(
            "SELECT @@GLOBAL.innodb_flush_log_at_trx_commit, @@GLOBAL.innodb_log_file_size",
        )
        .await
        .map_err(|e| endpoint.error("read the target's redo log settings", e))?;
    let Some((flush, log_size)) = current else {
        return Ok(false);
    };
    conn.exec_drop(
        format!(
            "INSERT IGNORE INTO {} (name, value) VALUES (?, ?), (?, ?)",
            table(schema)
        ),
        (
            "innodb_flush_log_at_trx_commit",
            flush.to_string(),
            "innodb_log_file_size",
            log_size.to_string(),
        ),
    )
    .await
    .map_err(|e| endpoint.error("record the target's settings before import mode", e))?;
    let mut statements = vec!["SET GLOBAL innodb_flush_log_at_trx_commit = 2".to_owned()];
    if resize_log && log_size < IMPORT_LOG_FILE_SIZE {
        statements.push(format!(
            "SET GLOBAL innodb_log_file_size = {IMPORT_LOG_FILE_SIZE}"
        ));
    }
    for sql in &statements {
        match conn.query_drop(sql).await {
            Ok(()) => {}
            Err(mysql_async::Error::Server(e)) if matches!(e.code, 1227 | 1238 | 1044 | 1045) => {
                // Not allowed, or not dynamic on this server (MariaDB < 10.9): import normally.
                tracing::warn!(statement = %sql, error = %e.message, "import mode: the target refused a setting; importing without it");
            }
            Err(e) => return Err(endpoint.error(sql.clone(), e).into()),
        }
    }
    tracing::info!(
        redo_log_resized = resize_log && log_size < IMPORT_LOG_FILE_SIZE,
        "import mode on: innodb_flush_log_at_trx_commit = 2"
    );
    Ok(true)
}
