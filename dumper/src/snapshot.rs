//! The consistent snapshot: N worker connections that all see the database at one moment, and
//! the binlog position and GTID set of exactly that moment.
//!
//! Why this is correct, per mode:
//! * `flush`: a coordinator blocks commits (MariaDB `BACKUP STAGE BLOCK_COMMIT`, else
//!   `FLUSH TABLES WITH READ LOCK`). While nothing can commit, every worker runs
//!   `START TRANSACTION WITH CONSISTENT SNAPSHOT`, so all snapshots contain the same commits,
//!   and the binlog position read then is the end of exactly those commits. The lock is
//!   released right after: writers stall for milliseconds, not for the dump.
//! * `lock`: the same with `LOCK TABLES … READ` on the dumped tables (for accounts without
//!   RELOAD); commits to other tables may still run, which cannot change dumped rows, so the
//!   workers' positions may differ by such commits and the latest one is recorded.
//! * `snapshot`: no lock. MariaDB reports, per connection, the binlog position its snapshot
//!   corresponds to (`Binlog_snapshot_file`/`_position`). Workers open snapshots together and
//!   the dump only proceeds when all report the same position; otherwise they retry.
//! * `none`: no transaction; the position is read before the first row and is not exact.
//!
//! XA transactions. One prepared but not yet committed at the snapshot is in neither the dump
//! nor the binlog after its position (its XA PREPARE lies before), so a stream from the dump
//! could not apply its XA COMMIT. Every mode but `none` therefore waits (up to the lock wait,
//! or the snapshot retries) until `XA RECOVER` lists none at the snapshot, else fails naming
//! them. Without a lock, one that prepared and ended between the two lists is found in the
//! binlog after the position (`xa.rs`), and the snapshot is opened again.
//!
//! Under the global lock the position is also read per worker on MariaDB and must agree, which
//! checks the lock actually held. The GTID set is then the server's `@@gtid_binlog_pos`, read
//! under the lock together with `SHOW MASTER STATUS` and used only if that is the workers'
//! position. Otherwise (LOCK TABLES, snapshot mode) it is `BINLOG_GTID_POS(file, offset)`, read
//! once the lock is released: it scans the binlog file (75 ms of server CPU for 380 MB, about a
//! tenth of a sysbench dump), and measured on MariaDB 10.11, `@@gtid_binlog_pos` read inside a
//! snapshot can already be ahead of the snapshot.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::layout::SnapshotMeta;
use sluice_core::{Endpoint, Flavor, RawConn, ServerInfo, TableName, cells};

use crate::DumpError;
use crate::config::Consistency;
use crate::xa;

/// How many times `snapshot` mode re-opens the snapshots before giving up.
const SNAPSHOT_TRIES: usize = 20;
/// The pause before looking again for prepared XA transactions to end.
const XA_RETRY: Duration = Duration::from_millis(250);

/// The workers in their snapshot, and where that snapshot stands in the binlog.
///
/// The planner shares the snapshot to read the schemas and plan the chunks with the driver's
/// typed queries; the workers read the rows over the lean [`RawConn`].
pub struct Snapshot {
    pub planner: Conn,
    pub workers: Vec<RawConn>,
    pub position: Option<SnapshotMeta>,
    /// What was actually done, for metadata.json (`flush (BACKUP STAGE)`, `lock`, …).
    pub method: String,
}

pub async fn open(
    endpoint: &Endpoint,
    info: &ServerInfo,
    mode: Consistency,
    threads: usize,
    tables: &[TableName],
    lock_wait: Duration,
) -> Result<Snapshot, DumpError> {
    let mut coordinator = endpoint.connect().await?;
    let binlog_on: u8 = coordinator
        .query_first("SELECT @@log_bin")
        .await
        .map_err(|e| endpoint.error("read @@log_bin", e))?
        .unwrap_or(0);
    let binlog_on = binlog_on == 1;
    if !binlog_on {
        tracing::warn!(source = %endpoint, "the source has no binlog: this dump has no position to stream from");
    }
    let mut planner = endpoint.connect().await?;
    let mut workers = try_join_all((0..threads.max(1)).map(|_| endpoint.connect_raw())).await?;
    for mut m in members(&mut planner, &mut workers) {
        m.run("SET SESSION net_write_timeout = 3600, net_read_timeout = 3600")
            .await
            .map_err(|e| endpoint.error("set worker session timeouts", e))?;
    }

    match mode {
        Consistency::None => {
            // Without consistency the position is informational: an account that may not read
            // it (no BINLOG MONITOR / REPLICATION CLIENT) still gets its dump.
            let position = if binlog_on {
                match server_position(&mut coordinator, endpoint, info).await {
                    Ok(p) => Some(p),
                    Err(e) => {
                        tracing::warn!(error = %e, "no binlog position recorded");
                        None
                    }
                }
            } else {
                None
            };
            Ok(Snapshot {
                planner,
                workers,
                position,
                method: "none".into(),
            })
        }
        Consistency::Snapshot => {
            snapshot_without_lock(planner, workers, endpoint, info, binlog_on).await
        }
        Consistency::Auto | Consistency::Flush | Consistency::Lock => {
            let started = Instant::now();
            let method = loop {
                let method =
                    lock(&mut coordinator, endpoint, info, mode, tables, lock_wait).await?;
                // Under the lock no XA transaction can prepare or end: the list is exact.
                let prepared = if binlog_on {
                    xa::prepared(&mut coordinator).await
                } else {
                    Vec::new()
                };
                if prepared.is_empty() {
                    break method;
                }
                unlock(&mut coordinator, endpoint, &method).await?;
                if started.elapsed() >= lock_wait {
                    return Err(xa::prepared_error(endpoint, &prepared));
                }
                tracing::info!(prepared = ?prepared, "XA transactions are prepared on the source: waiting for their XA COMMIT or XA ROLLBACK");
                tokio::time::sleep(XA_RETRY).await;
            };
            // From here on nothing commits (to the dumped tables): open every snapshot.
            let opened = begin_all(&mut planner, &mut workers, endpoint).await;
            let position = match opened {
                Ok(()) if binlog_on => {
                    locked_position(
                        &mut coordinator,
                        &mut planner,
                        &mut workers,
                        endpoint,
                        info,
                        method.starts_with("lock"),
                    )
                    .await
                }
                Ok(()) => Ok(None),
                Err(e) => Err(e),
            };
            unlock(&mut coordinator, endpoint, &method).await?;
            let (mut position, gtid_known) = match position? {
                Some((p, known)) => (Some(p), known),
                None => (None, true),
            };
            // BINLOG_GTID_POS reads the binlog file from its start up to the offset (111 ms for
            // a 650 MB file, measured): a pure function of the position, so it runs after the
            // unlock rather than keep the source's commits waiting.
            if info.flavor == Flavor::MariaDb
                && !gtid_known
                && let Some(p) = &mut position
            {
                p.gtid_set =
                    mariadb_gtid_at(&mut coordinator, endpoint, &p.binlog_file, p.binlog_offset)
                        .await?;
            }
            tracing::info!(method = %method, position = ?position, "consistent snapshot open");
            Ok(Snapshot {
                planner,
                workers,
                position,
                method,
            })
        }
    }
}

/// Takes the lock for `flush`/`lock`/`auto`; returns the method used.
async fn lock(
    coordinator: &mut Conn,
    endpoint: &Endpoint,
    info: &ServerInfo,
    mode: Consistency,
    tables: &[TableName],
    lock_wait: Duration,
) -> Result<String, DumpError> {
    let wait = lock_wait.as_secs().max(1);
    coordinator
        .query_drop(format!("SET SESSION lock_wait_timeout = {wait}"))
        .await
        .map_err(|e| endpoint.error("set lock_wait_timeout", e))?;
    if mode != Consistency::Lock {
        let (method, statements): (&str, &[&str]) =
            if info.flavor == Flavor::MariaDb && info.version >= (10, 4, 1) {
                (
                    "flush (BACKUP STAGE BLOCK_COMMIT)",
                    &["BACKUP STAGE START", "BACKUP STAGE BLOCK_COMMIT"],
                )
            } else {
                (
                    "flush (FLUSH TABLES WITH READ LOCK)",
                    &["FLUSH TABLES WITH READ LOCK"],
                )
            };
        match run_with_deadline(coordinator, endpoint, statements, lock_wait).await {
            Ok(()) => return Ok(method.to_owned()),
            Err(LockError::Denied(e))
                if mode == Consistency::Auto || mode == Consistency::Flush =>
            {
                tracing::warn!(error = %e, "the global lock is denied; falling back to LOCK TABLES … READ");
            }
            Err(LockError::Denied(e)) => return Err(e),
            Err(LockError::Other(e)) => return Err(e),
        }
    }
    if tables.is_empty() {
        return Ok("lock (no tables)".to_owned());
    }
    let list: Vec<String> = tables.iter().map(|t| format!("{t} READ")).collect();
    let statement = format!("LOCK TABLES {}", list.join(", "));
    match run_with_deadline(coordinator, endpoint, &[&statement], lock_wait).await {
        Ok(()) => Ok("lock (LOCK TABLES … READ)".to_owned()),
        Err(LockError::Denied(e)) | Err(LockError::Other(e)) => Err(e),
    }
}

enum LockError {
    Denied(DumpError),
    Other(DumpError),
}

/// Runs lock statements with a deadline; a statement still waiting then is killed from another
/// connection so that it does not take the lock later behind our back.
async fn run_with_deadline(
    conn: &mut Conn,
    endpoint: &Endpoint,
    statements: &[&str],
    deadline: Duration,
) -> Result<(), LockError> {
    let id = conn.id();
    let started = Instant::now();
    for &sql in statements {
        let left = deadline.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, conn.query_drop(sql)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let denied = matches!(&e, mysql_async::Error::Server(s) if matches!(s.code, 1044 | 1045 | 1142 | 1227));
                let err = DumpError::from(endpoint.error(sql, e));
                return Err(if denied {
                    LockError::Denied(err)
                } else {
                    LockError::Other(err)
                });
            }
            Err(_) => {
                if let Ok(mut killer) = endpoint.connect().await {
                    let _ = killer.query_drop(format!("KILL QUERY {id}")).await;
                }
                return Err(LockError::Other(DumpError::Snapshot {
                    endpoint: endpoint.address(),
                    reason: format!(
                        "`{sql}` did not get its lock within {} s (long statements running? see SHOW PROCESSLIST); \
                         retry, raise the wait, or use --consistency snapshot",
                        deadline.as_secs()
                    ),
                }));
            }
        }
    }
    Ok(())
}

async fn unlock(
    coordinator: &mut Conn,
    endpoint: &Endpoint,
    method: &str,
) -> Result<(), DumpError> {
    let sql = if method.contains("BACKUP STAGE") {
        "BACKUP STAGE END"
    } else {
        "UNLOCK TABLES"
    };
    coordinator
        .query_drop(sql)
        .await
        .map_err(|e| endpoint.error(sql, e).into())
}

/// A connection that takes part in the snapshot.
enum Member<'a> {
    Planner(&'a mut Conn),
    Worker(&'a mut RawConn),
}

fn members<'a>(planner: &'a mut Conn, workers: &'a mut [RawConn]) -> Vec<Member<'a>> {
    std::iter::once(Member::Planner(planner))
        .chain(workers.iter_mut().map(Member::Worker))
        .collect()
}

impl Member<'_> {
    async fn run(&mut self, sql: &str) -> Result<(), mysql_async::Error> {
        match self {
            Member::Planner(c) => c.query_drop(sql).await,
            Member::Worker(c) => c.query_drop(sql).await,
        }
    }

    /// The rows of a small result, as text (`None` for NULL).
    async fn text_rows(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<Vec<u8>>>>, mysql_async::Error> {
        match self {
            Member::Planner(c) => {
                let rows: Vec<mysql_async::Row> = c.query(sql).await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        cells(r)
                            .into_iter()
                            .map(|c| c.map(Cow::into_owned))
                            .collect()
                    })
                    .collect())
            }
            Member::Worker(c) => c.query_rows(sql).await,
        }
    }
}

async fn begin_all(
    planner: &mut Conn,
    workers: &mut [RawConn],
    endpoint: &Endpoint,
) -> Result<(), DumpError> {
    try_join_all(
        members(planner, workers)
            .into_iter()
            .map(|mut m| async move {
                m.run("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    .await?;
                m.run("START TRANSACTION WITH CONSISTENT SNAPSHOT").await
            }),
    )
    .await
    .map_err(|e| endpoint.error("START TRANSACTION WITH CONSISTENT SNAPSHOT", e))?;
    Ok(())
}

/// While locked: MariaDB workers report their snapshot's position, which must agree; MySQL
/// reads the server position and `gtid_executed`, which cannot move under the lock. The flag
/// says whether the GTID set is known; if not the caller reads it after the unlock.
async fn locked_position(
    coordinator: &mut Conn,
    planner: &mut Conn,
    workers: &mut [RawConn],
    endpoint: &Endpoint,
    info: &ServerInfo,
    tables_only: bool,
) -> Result<Option<(SnapshotMeta, bool)>, DumpError> {
    if info.flavor == Flavor::MariaDb {
        let positions = worker_positions(planner, workers, endpoint).await?;
        let chosen = if tables_only {
            // LOCK TABLES blocks only the dumped tables: commits to other tables go on while
            // the snapshots open, so the workers may stand at different positions. Nothing
            // between them touches a dumped table (it would wait for the lock), so every
            // snapshot holds the same dumped rows; the latest position skips the most events
            // that do not concern this dump.
            positions.iter().max().cloned()
        } else {
            // Under a global commit block every snapshot must sit at one position; if not,
            // the lock did not hold and the dump would not be consistent.
            let first = &positions[0];
            if positions.iter().any(|p| p != first) {
                return Err(DumpError::Snapshot {
                    endpoint: endpoint.address(),
                    reason: format!(
                        "workers saw different positions under the lock: {positions:?}"
                    ),
                });
            }
            Some(first.clone())
        };
        let Some((file, offset)) = chosen else {
            return Ok(None);
        };
        // Under a global commit block the server stands still at the workers' position, so
        // its `gtid_binlog_pos` is that position's GTID set: no binlog scan is needed. Else
        // (LOCK TABLES, or a server that moved) the set comes after the unlock (see `open`).
        let mut gtid_set = None;
        if !tables_only {
            let server = server_binlog_position(coordinator, endpoint).await?;
            if server
                .as_ref()
                .is_some_and(|(f, o, _)| *f == file && *o == offset)
            {
                gtid_set = server.map(|(_, _, gtid)| gtid);
            }
        }
        return Ok(Some((
            SnapshotMeta {
                binlog_file: file,
                binlog_offset: offset,
                gtid_set: gtid_set.clone().unwrap_or_default(),
            },
            gtid_set.is_some(),
        )));
    }
    Ok(Some((
        server_position(coordinator, endpoint, info).await?,
        true,
    )))
}

/// MariaDB's binlog position and `gtid_binlog_pos`, read in one statement.
async fn server_binlog_position(
    conn: &mut Conn,
    endpoint: &Endpoint,
) -> Result<Option<(String, u64, String)>, DumpError> {
    let status: Option<mysql_async::Row> = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .map_err(|e| endpoint.error("SHOW MASTER STATUS", e))?;
    let gtid: Option<Option<String>> = conn
        .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
        .await
        .map_err(|e| endpoint.error("read gtid_binlog_pos", e))?;
    Ok(status.map(|row| {
        (
            row.get::<String, _>(0).unwrap_or_default(),
            row.get::<u64, _>(1).unwrap_or(0),
            gtid.flatten().unwrap_or_default(),
        )
    }))
}

async fn snapshot_without_lock(
    mut planner: Conn,
    mut workers: Vec<RawConn>,
    endpoint: &Endpoint,
    info: &ServerInfo,
    binlog_on: bool,
) -> Result<Snapshot, DumpError> {
    if info.flavor != Flavor::MariaDb {
        return Err(DumpError::Unsupported(format!(
            "--consistency snapshot needs per-connection snapshot positions, which {info} does not report; \
             use --consistency flush or lock"
        )));
    }
    let mut last = Vec::new();
    let mut prepared = Vec::new();
    let mut crossed = Vec::new();
    for attempt in 1..=SNAPSHOT_TRIES {
        crossed.clear();
        // Without a lock, an XA transaction prepared before the snapshot shows in one of the
        // two lists unless it also ended between them; then its end lies in the binlog after
        // the snapshot's position, where `xa_across_snapshot` looks.
        if binlog_on {
            prepared = xa::prepared(&mut planner).await;
        }
        begin_all(&mut planner, &mut workers, endpoint).await?;
        let positions = worker_positions(&mut planner, &mut workers, endpoint).await?;
        if prepared.is_empty() && binlog_on {
            prepared = xa::prepared(&mut planner).await;
        }
        if !prepared.is_empty() {
            tracing::info!(prepared = ?prepared, "XA transactions are prepared on the source: waiting for their XA COMMIT or XA ROLLBACK");
        } else if positions.iter().all(|p| p == &positions[0]) {
            let (file, offset) = positions[0].clone();
            let crossing = if binlog_on {
                xa_across_snapshot(&mut planner, endpoint, &file, offset).await?
            } else {
                Vec::new()
            };
            if !crossing.is_empty() {
                tracing::info!(attempt, crossing = ?crossing, "XA transactions prepared before the snapshot ended after it: opening the snapshot again");
                crossed = crossing;
            } else {
                let position = if binlog_on {
                    let gtid = mariadb_gtid_at(&mut planner, endpoint, &file, offset).await?;
                    Some(SnapshotMeta {
                        binlog_file: file,
                        binlog_offset: offset,
                        gtid_set: gtid,
                    })
                } else {
                    None
                };
                tracing::info!(attempt, position = ?position, "consistent snapshot open without a lock");
                return Ok(Snapshot {
                    planner,
                    workers,
                    position,
                    method: "snapshot".into(),
                });
            }
        }
        for mut m in members(&mut planner, &mut workers) {
            m.run("ROLLBACK")
                .await
                .map_err(|e| endpoint.error("ROLLBACK", e))?;
        }
        last = positions;
        if !prepared.is_empty() {
            tokio::time::sleep(XA_RETRY).await;
        }
    }
    if !prepared.is_empty() {
        return Err(xa::prepared_error(endpoint, &prepared));
    }
    if !crossed.is_empty() {
        return Err(DumpError::Snapshot {
            endpoint: endpoint.address(),
            reason: format!(
                "in {SNAPSHOT_TRIES} tries every lock-free snapshot fell between the XA PREPARE \
                 and the XA COMMIT of a transaction, or could not be checked for one (last: {}); \
                 use --consistency flush",
                crossed.join(", ")
            ),
        });
    }
    Err(DumpError::Snapshot {
        endpoint: endpoint.address(),
        reason: format!(
            "{} workers did not agree on one position in {SNAPSHOT_TRIES} tries (last: {last:?}); \
             the source commits too often for lock-free snapshots: use --consistency flush",
            workers.len()
        ),
    })
}

/// XA transactions prepared before the snapshot at `file:offset` and ended after it, read
/// after the second `XA RECOVER` (see `xa.rs`). A binlog that rotated since the snapshot
/// counts as one such (the snapshot is simply opened again); a binlog that cannot be read
/// counts as none, after `xa::ended_across`'s warning.
async fn xa_across_snapshot(
    planner: &mut Conn,
    endpoint: &Endpoint,
    file: &str,
    offset: u64,
) -> Result<Vec<String>, DumpError> {
    let Some((now_file, now_offset, _)) = server_binlog_position(planner, endpoint).await? else {
        return Ok(Vec::new());
    };
    if now_file != file {
        return Ok(vec![format!("binlog rotated from {file} to {now_file}")]);
    }
    Ok(xa::ended_across(planner, file, offset, now_offset)
        .await
        .unwrap_or_default())
}

/// Every member's snapshot position (MariaDB `Binlog_snapshot_file`/`_position`).
async fn worker_positions(
    planner: &mut Conn,
    workers: &mut [RawConn],
    endpoint: &Endpoint,
) -> Result<Vec<(String, u64)>, DumpError> {
    let positions = try_join_all(
        members(planner, workers)
            .into_iter()
            .map(|mut m| async move {
                let rows = m.text_rows("SHOW STATUS LIKE 'binlog_snapshot_%'").await?;
                let text = |c: &Option<Vec<u8>>| {
                    String::from_utf8_lossy(c.as_deref().unwrap_or_default()).into_owned()
                };
                let get = |name: &str| {
                    rows.iter()
                        .find(|r| r.len() == 2 && text(&r[0]).eq_ignore_ascii_case(name))
                        .map(|r| text(&r[1]))
                        .unwrap_or_default()
                };
                Ok::<_, mysql_async::Error>((
                    get("Binlog_snapshot_file"),
                    get("Binlog_snapshot_position").parse().unwrap_or(0),
                ))
            }),
    )
    .await
    .map_err(|e| endpoint.error("SHOW STATUS LIKE 'binlog_snapshot_%'", e))?;
    Ok(positions)
}

async fn mariadb_gtid_at(
    conn: &mut Conn,
    endpoint: &Endpoint,
    file: &str,
    offset: u64,
) -> Result<String, DumpError> {
    let gtid: Option<Option<String>> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file, offset))
        .await
        .map_err(|e| endpoint.error("SELECT BINLOG_GTID_POS", e))?;
    Ok(gtid.flatten().unwrap_or_default())
}

/// The server's current position (`SHOW MASTER STATUS`) and executed GTIDs.
async fn server_position(
    conn: &mut Conn,
    endpoint: &Endpoint,
    info: &ServerInfo,
) -> Result<SnapshotMeta, DumpError> {
    let statement = if info.flavor == Flavor::MySql && info.version >= (8, 2, 0) {
        "SHOW BINARY LOG STATUS"
    } else {
        "SHOW MASTER STATUS"
    };
    let row: Option<mysql_async::Row> = conn
        .query_first(statement)
        .await
        .map_err(|e| endpoint.error(statement, e))?;
    let row = row.ok_or_else(|| DumpError::Snapshot {
        endpoint: endpoint.address(),
        reason: format!("{statement} returned nothing: is log_bin on?"),
    })?;
    let file: String = row.get(0).unwrap_or_default();
    let offset: u64 = row.get(1).unwrap_or(0);
    let gtid = if info.flavor == Flavor::MariaDb {
        mariadb_gtid_at(conn, endpoint, &file, offset).await?
    } else {
        let g: Option<String> = conn
            .query_first("SELECT @@GLOBAL.gtid_executed")
            .await
            .map_err(|e| endpoint.error("read gtid_executed", e))?;
        g.unwrap_or_default().replace('\n', "")
    };
    Ok(SnapshotMeta {
        binlog_file: file,
        binlog_offset: offset,
        gtid_set: gtid,
    })
}
