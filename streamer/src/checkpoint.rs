//! The stream's checkpoints in the target's meta schema: one row per (task, applier), written
//! in the same target transaction as the changes it covers, so a crash can neither lose nor
//! double a change.
//!
//! Each row holds the applier's own last position (`applied_*`) and the watermark (`low_*`, see
//! [`crate::progress`]). On restart the stream resumes from the highest watermark and applies
//! in safe mode up to the highest `applied` position (and a DDL recorded as pending), beyond
//! which it is exact again. With one applier the two are the same and there is no safe window.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{BinlogPosition, CoreError, Endpoint, GtidSet, quote_ident, quote_string};

use crate::transaction::Mark;

/// Where to resume, from the rows of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub start: Mark,
    /// Re-applied transactions up to here run in safe mode.
    pub safe_until: Option<BinlogPosition>,
}

/// The checkpoint table of one task.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    table: String,
    task: String,
}

impl Checkpoints {
    pub fn new(meta_schema: &str, task: &str) -> Checkpoints {
        Checkpoints {
            table: format!("{}.`stream_checkpoints`", quote_ident(meta_schema)),
            task: task.to_owned(),
        }
    }

    /// Creates the meta schema and table when missing.
    pub async fn ensure(
        &self,
        conn: &mut Conn,
        target: &Endpoint,
        meta_schema: &str,
    ) -> Result<(), CoreError> {
        let err = |e| target.error("create the checkpoint table", e);
        conn.query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            quote_ident(meta_schema)
        ))
        .await
        .map_err(err)?;
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {} (\
               task VARCHAR(128) NOT NULL, worker INT NOT NULL, \
               applied_file VARCHAR(512) NOT NULL, applied_offset BIGINT UNSIGNED NOT NULL, \
               applied_gtid TEXT NOT NULL, \
               low_file VARCHAR(512) NOT NULL, low_offset BIGINT UNSIGNED NOT NULL, low_gtid TEXT NOT NULL, \
               pending_ddl VARCHAR(600) NULL, \
               updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), \
               PRIMARY KEY (task, worker)) ENGINE=InnoDB",
            self.table
        ))
        .await
        .map_err(err)
    }

    /// The resume point of this task, `None` when it has never checkpointed.
    pub async fn read(
        &self,
        conn: &mut Conn,
        target: &Endpoint,
    ) -> Result<Option<Resume>, CoreError> {
        type Row = (String, u64, String, String, u64, String, Option<String>);
        let rows: Vec<Row> = conn
            .query(format!(
                "SELECT applied_file, applied_offset, applied_gtid, low_file, low_offset, low_gtid, pending_ddl \
                 FROM {} WHERE task = {}",
                self.table,
                quote_string(&self.task)
            ))
            .await
            .map_err(|e| target.error("read the stream checkpoint", e))?;
        let mut start: Option<Mark> = None;
        let mut safe_until: Option<BinlogPosition> = None;
        for (af, ao, _ag, lf, lo, lg, pending) in rows {
            let low = Mark {
                position: BinlogPosition::new(lf, lo),
                gtid: parse_gtid(&lg)?,
            };
            if start.as_ref().is_none_or(|s| low.position > s.position) {
                start = Some(low);
            }
            let mut candidates = vec![BinlogPosition::new(af, ao)];
            if let Some(p) = pending {
                candidates.push(p.parse()?);
            }
            for c in candidates {
                if safe_until.as_ref().is_none_or(|s| c > *s) {
                    safe_until = Some(c);
                }
            }
        }
        Ok(start.map(|start| Resume {
            safe_until: safe_until.filter(|s| *s > start.position),
            start,
        }))
    }

    /// Forgets this task's checkpoints (`--restart`).
    pub async fn clear(&self, conn: &mut Conn, target: &Endpoint) -> Result<(), CoreError> {
        conn.query_drop(format!(
            "DELETE FROM {} WHERE task = {}",
            self.table,
            quote_string(&self.task)
        ))
        .await
        .map_err(|e| target.error("clear the stream checkpoint", e))
    }

    /// The upsert of one applier's row, to run inside its apply transaction.
    pub fn upsert(
        &self,
        worker: usize,
        applied: &Mark,
        low: &Mark,
        pending_ddl: Option<&BinlogPosition>,
    ) -> String {
        format!(
            "INSERT INTO {} (task, worker, applied_file, applied_offset, applied_gtid, low_file, low_offset, low_gtid, pending_ddl) \
             VALUES ({}, {worker}, {}, {}, {}, {}, {}, {}, {}) ON DUPLICATE KEY UPDATE \
             applied_file = VALUES(applied_file), applied_offset = VALUES(applied_offset), \
             applied_gtid = VALUES(applied_gtid), low_file = VALUES(low_file), \
             low_offset = VALUES(low_offset), low_gtid = VALUES(low_gtid), pending_ddl = VALUES(pending_ddl);\n",
            self.table,
            quote_string(&self.task),
            quote_string(&applied.position.file),
            applied.position.offset,
            quote_string(&applied.gtid.to_string()),
            quote_string(&low.position.file),
            low.position.offset,
            quote_string(&low.gtid.to_string()),
            pending_ddl.map_or("NULL".to_owned(), |p| quote_string(&p.to_string())),
        )
    }

    /// This applier's recorded position: after a lost connection, whether its last COMMIT
    /// made it.
    pub async fn applied(
        &self,
        conn: &mut Conn,
        target: &Endpoint,
        worker: usize,
    ) -> Result<Option<BinlogPosition>, CoreError> {
        let row: Option<(String, u64)> = conn
            .query_first(format!(
                "SELECT applied_file, applied_offset FROM {} WHERE task = {} AND worker = {worker}",
                self.table,
                quote_string(&self.task)
            ))
            .await
            .map_err(|e| target.error("read the stream checkpoint", e))?;
        Ok(row.map(|(f, o)| BinlogPosition::new(f, o)))
    }

    /// Every applier row of this task set to `mark` (nothing is in flight): after a DDL, when
    /// idle, and at the end.
    pub fn all_rows(
        &self,
        workers: usize,
        mark: &Mark,
        pending_ddl: Option<&BinlogPosition>,
    ) -> String {
        (0..workers)
            .map(|w| self.upsert(w, mark, mark, pending_ddl))
            .collect()
    }
}

fn parse_gtid(text: &str) -> Result<GtidSet, CoreError> {
    if text.trim().is_empty() {
        return Ok(GtidSet::default());
    }
    text.parse()
}
