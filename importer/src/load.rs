//! Loading sorted rows into the target, in primary-key order so that InnoDB appends, by one of
//! two methods ([`LoadMethod`]):
//! * MariaDB's bulk execution of one prepared INSERT per batch (`bulk.rs`): the target's CPU per
//!   row is about three quarters of LOAD DATA's (measured on the sysbench import, session 12),
//!   because the server does not read the values one byte at a time.
//! * `LOAD DATA LOCAL INFILE`, streamed from memory: about 1.7 times the rate of multi-row
//!   INSERTs at less than half the client CPU per row (measured in ../shared/notes). The
//!   stream is tab-separated with backslash escapes (`\N` for NULL). Binary columns travel as
//!   hex and are decoded by `UNHEX()`, and BIT columns as numbers cast back, so no byte passes
//!   through a charset conversion it should not see. It is the only method MySQL offers. A
//!   bulk batch is one packet, which must fit the target's `max_allowed_packet`; LOAD DATA
//!   streams, so a table holding a row too big for a bulk batch is loaded again this way (see
//!   `table_load::import_table`).
//!
//! Which method a table gets is `method.rs`'s choice.

use sluice_core::{
    ColumnInfo, ColumnKind, Endpoint, Prepared, RawConn, TableName, escape_with, quote_ident,
};

use crate::ImportError;
use crate::config::LoadMethod;

/// Encoded rows sent to the server in one LOAD DATA statement.
pub(crate) const BATCH_BYTES: usize = 16 << 20;

/// Batch buffers kept for reuse: about what the loaders and the producer hold at once.
const POOLED_BUFFERS: usize = 8;

/// The batch buffers the loaders are done with, shared by every table of one import. A fresh
/// 17 MiB buffer is fresh pages the kernel must clear and fault in: about a tenth of the
/// client's CPU (perf, sysbench import). A per-table pool did not help: a table of three
/// batches had taken all its buffers before the first came back.
#[derive(Debug, Clone, Default)]
pub struct BufferPool(std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl BufferPool {
    /// An empty buffer for a batch.
    pub fn take(&self) -> Vec<u8> {
        let pooled = self.0.lock().ok().and_then(|mut p| p.pop());
        pooled.unwrap_or_else(|| Vec::with_capacity(BATCH_BYTES + (1 << 20)))
    }

    /// Gives a buffer back once its batch is loaded.
    pub fn give(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        if let Ok(mut p) = self.0.lock()
            && p.len() < POOLED_BUFFERS
        {
            p.push(buffer);
        }
    }
}

/// Where a producer sends its LOAD DATA batches, and where it gets its buffers.
pub struct BatchSink {
    tx: tokio::sync::mpsc::Sender<(Vec<u8>, u64)>,
    pool: BufferPool,
}

impl BatchSink {
    pub fn new(tx: tokio::sync::mpsc::Sender<(Vec<u8>, u64)>, pool: BufferPool) -> BatchSink {
        BatchSink { tx, pool }
    }

    /// An empty buffer for the next batch.
    pub fn buffer(&self) -> Vec<u8> {
        self.pool.take()
    }

    /// Sends a batch of `rows` rows, waiting while the loaders are busy (from a blocking
    /// thread).
    pub fn send(&self, data: Vec<u8>, rows: u64) -> Result<(), ImportError> {
        self.tx
            .blocking_send((data, rows))
            .map_err(|_| ImportError::Worker("the loaders stopped".into()))
    }
}

/// How one table is loaded.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub table: TableName,
    /// The loaded columns, in stream order.
    pub columns: Vec<ColumnInfo>,
    /// The stream's charset (`utf8mb4`, or `binary` for mydumper's raw files).
    pub charset: String,
    /// REPLACE rows the target already holds (else the target keeps its row).
    pub replace: bool,
    /// `BulkInsert` or `LoadData` (never `Auto`): how batches are encoded and sent.
    pub method: LoadMethod,
    /// A batch is sent once its buffer holds this many bytes.
    pub batch_bytes: usize,
    /// The biggest encoded row a batch may take (see [`crate::method::Wire`]).
    pub max_row_bytes: usize,
}

/// Whether a column stores a binary string of ASCII text as it stores that text. True for
/// numbers, BIT and hex-carried binary columns, temporals, and text in a charset where ASCII
/// is itself. Not for UCS-2/UTF-16/UTF-32 text, MySQL's JSON (it refuses binary strings), nor
/// any type without a charset outside those: MariaDB's INET4, INET6 and UUID take a binary
/// string as their packed bytes, so `'::1'` sent raw would be stored as NULL (or, for a text
/// of exactly 16 bytes, as those bytes).
fn reads_ascii_as_itself(c: &ColumnInfo) -> bool {
    match (c.kind, c.charset.as_deref()) {
        (ColumnKind::Text, None) => matches!(
            c.data_type.to_ascii_lowercase().as_str(),
            "date" | "time" | "datetime" | "timestamp" | "year"
        ),
        (ColumnKind::Text, Some(cs)) => {
            c.data_type != "json"
                && matches!(
                    cs,
                    "latin1" | "ascii" | "utf8mb3" | "utf8" | "utf8mb4" | "binary"
                )
        }
        _ => true,
    }
}

impl LoadSpec {
    /// The stream's charset for one batch. A batch of ASCII bytes only goes as `binary` when
    /// every column reads ASCII as itself: the server then converts nothing (converting the
    /// stream to a latin1 table's columns was 6 % of the target's CPU, perf on the sysbench
    /// import) and its field reader skips the multi-byte check per byte. Not for UCS-2/UTF-16/
    /// UTF-32 columns (ASCII is not itself there), nor MySQL's JSON type, which refuses binary
    /// strings.
    pub fn batch_charset(&self, data: &[u8]) -> &str {
        if self.ascii_goes_raw() && data.is_ascii() {
            "binary"
        } else {
            &self.charset
        }
    }

    /// ASCII text in this stream may skip the server's charset conversion: the stream is
    /// utf8mb4 and every column reads ASCII as itself.
    pub(crate) fn ascii_goes_raw(&self) -> bool {
        self.charset == "utf8mb4" && self.columns.iter().all(reads_ascii_as_itself)
    }

    fn statement_in(&self, charset: &str) -> String {
        let mut targets = Vec::new();
        let mut sets = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            let name = quote_ident(&c.name);
            match c.kind {
                ColumnKind::Binary => {
                    targets.push(format!("@v{i}"));
                    sets.push(format!("{name} = UNHEX(@v{i})"));
                }
                ColumnKind::Bit => {
                    targets.push(format!("@v{i}"));
                    sets.push(format!("{name} = CAST(@v{i} AS UNSIGNED)"));
                }
                _ => targets.push(name),
            }
        }
        let mode = if self.replace { "REPLACE" } else { "IGNORE" };
        let mut sql = format!(
            "LOAD DATA LOCAL INFILE 'sluice-stream' {mode} INTO TABLE {} CHARACTER SET {} \
             FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
            self.table,
            charset,
            targets.join(", ")
        );
        if !sets.is_empty() {
            sql.push_str(" SET ");
            sql.push_str(&sets.join(", "));
        }
        sql
    }

    /// Refuses a row that took `bytes` to encode when a batch cannot hold it.
    pub(crate) fn check_row_size(&self, bytes: usize) -> Result<(), ImportError> {
        if bytes > self.max_row_bytes {
            return Err(ImportError::RowTooBigForBulk {
                table: self.table.plain(),
                bytes,
            });
        }
        Ok(())
    }

    /// Appends one row (cells in `columns` order) to a batch.
    pub fn encode_row(&self, out: &mut Vec<u8>, cells: &[Option<&[u8]>]) {
        if self.method == LoadMethod::BulkInsert {
            return crate::bulk::encode_row(self, out, cells);
        }
        for (i, (c, v)) in self.columns.iter().zip(cells).enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            match v {
                None => out.extend_from_slice(b"\\N"),
                Some(v) if c.kind == ColumnKind::Binary => {
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    for &b in *v {
                        out.push(HEX[usize::from(b >> 4)]);
                        out.push(HEX[usize::from(b & 15)]);
                    }
                }
                Some(v) => escape(out, v),
            }
        }
        out.push(b'\n');
    }
}

fn escape(out: &mut Vec<u8>, v: &[u8]) {
    escape_with(out, v, [b'\\', b'\t', b'\n'], [b'\r', 0, 0], |b| match b {
        b'\\' => b"\\\\",
        b'\t' => b"\\t",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        _ => b"\\0",
    });
}

/// Session settings for bulk loading; the connection is dropped after the load, which
/// restores them.
pub async fn prepare_session(conn: &mut RawConn, endpoint: &Endpoint) -> Result<(), ImportError> {
    conn.query_drop("SET SESSION unique_checks = 0, foreign_key_checks = 0, sql_mode = 'NO_AUTO_VALUE_ON_ZERO', time_zone = '+00:00'")
        .await
        .map_err(|e| ImportError::from(endpoint.error("set bulk-load session settings", e)))
}

/// What the server did with a batch.
pub struct Loaded {
    /// Rows the server took.
    pub taken: u64,
    /// The server raised at least one warning (a value truncated, converted or refused).
    pub warned: bool,
    /// When it took fewer rows than sent, the first warnings, which say why (a duplicate under
    /// the collation, a value the target refuses).
    pub why: Vec<String>,
    /// The batch's buffer, back for reuse.
    pub buffer: Vec<u8>,
}

/// How many times a batch is sent when InnoDB picks its statement as a deadlock victim or it
/// waits out `innodb_lock_wait_timeout`.
const LOCK_TRIES: u64 = 5;

/// ER_LOCK_DEADLOCK and ER_LOCK_WAIT_TIMEOUT. Two loaders of one table can deadlock: in the
/// sysbench bench on MariaDB 10.11, 2 of about 60 imports failed with 1213 before batches were
/// retried (probably where both start on the empty table, for which MariaDB's bulk insert
/// takes a table lock). Either way the statement, an autocommit transaction of its own, is
/// rolled back whole.
fn is_lock_conflict(code: u16) -> bool {
    code == 1213 || code == 1205
}

/// Whether LOAD DATA might take what a bulk execution refused with this error: not for lock
/// conflicts (after the retries), a killed query or connection (1317, 1927), a server
/// shutting down (1053), a full disk or table (1021, 1114), or a read-only server (1290,
/// 1836): those are the target's state, and emptying the table to load it again would not
/// help.
fn bulk_may_differ(code: u16) -> bool {
    !is_lock_conflict(code) && !matches!(code, 1021 | 1053 | 1114 | 1290 | 1317 | 1836 | 1927)
}

/// A loader's connection, with the bulk statement prepared on it when the table loads that way.
pub struct Loader {
    conn: RawConn,
    bulk: Option<Prepared>,
}

impl Loader {
    /// Connects, sets the bulk-load session and prepares the table's bulk INSERT.
    pub async fn connect(endpoint: &Endpoint, spec: &LoadSpec) -> Result<Loader, ImportError> {
        let mut conn = endpoint.connect_raw().await?;
        prepare_session(&mut conn, endpoint).await?;
        let bulk = match spec.method {
            LoadMethod::BulkInsert => {
                let sql = crate::bulk::insert_statement(spec);
                let prepared = conn.prepare(&sql).await.map_err(|e| {
                    endpoint.error(format!("prepare the INSERT into {}", spec.table.plain()), e)
                })?;
                Some(prepared)
            }
            _ => None,
        };
        Ok(Loader { conn, bulk })
    }

    pub async fn quit(self) {
        self.conn.quit().await;
    }
}

/// Loads one batch of `rows` encoded rows, sent from `data` over the loader's own connection
/// without a copy on the way (`RawConn::bulk_execute` or `RawConn::load_local`).
pub async fn load_batch(
    loader: &mut Loader,
    endpoint: &Endpoint,
    spec: &LoadSpec,
    data: Vec<u8>,
    rows: u64,
) -> Result<Loaded, ImportError> {
    let (what, sql) = match loader.bulk {
        Some(_) => ("bulk INSERT", String::new()),
        None => ("LOAD DATA", spec.statement_in(spec.batch_charset(&data))),
    };
    let conn = &mut loader.conn;
    let mut tries = 0;
    let done = loop {
        tries += 1;
        let sent = match &loader.bulk {
            Some(stmt) => conn.bulk_execute(stmt, &data).await,
            None => conn.load_local(&sql, &data).await,
        };
        match sent {
            Ok(done) => break done,
            Err(mysql_async::Error::Server(e))
                if is_lock_conflict(e.code) && tries < LOCK_TRIES =>
            {
                // The batch's statement was rolled back whole: sending it again is exact.
                tracing::info!(table = %spec.table.plain(), code = e.code, tries, "{what} lost a lock conflict; sending the batch again");
                tokio::time::sleep(std::time::Duration::from_millis(100 * tries)).await;
            }
            Err(mysql_async::Error::Server(e))
                if loader.bulk.is_some() && bulk_may_differ(e.code) =>
            {
                return Err(ImportError::BulkRefused {
                    table: spec.table.plain(),
                    code: e.code,
                    message: e.message,
                });
            }
            Err(e) => {
                return Err(endpoint
                    .error(format!("{what} into {}", spec.table.plain()), e)
                    .into());
            }
        }
    };
    let taken = done.affected_rows;
    let mut warnings = Vec::new();
    if taken < rows && !spec.replace {
        let shown = conn
            .query_rows("SHOW WARNINGS LIMIT 3")
            .await
            .map_err(|e| endpoint.error("SHOW WARNINGS", e))?;
        let text = |c: Option<&Option<Vec<u8>>>| {
            String::from_utf8_lossy(c.and_then(Option::as_deref).unwrap_or_default()).into_owned()
        };
        warnings = shown
            .iter()
            .map(|r| format!("{} {}: {}", text(r.first()), text(r.get(1)), text(r.get(2))))
            .collect();
    }
    Ok(Loaded {
        taken,
        warned: done.warnings > 0,
        why: warnings,
        buffer: data,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A column of `kind` with no charset, for encoding tests.
    pub(crate) fn col(name: &str, kind: ColumnKind) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            kind,
            data_type: String::new(),
            unsigned: false,
            precision: 0,
            scale: 0,
            charset: None,
            nullable: true,
        }
    }

    #[test]
    fn statement_and_rows_keep_bytes_exact() {
        let spec = LoadSpec {
            table: TableName::new("db", "t"),
            columns: vec![
                col("a", ColumnKind::Integer),
                col("b", ColumnKind::Binary),
                col("c", ColumnKind::Text),
                col("d", ColumnKind::Bit),
            ],
            charset: "utf8mb4".into(),
            replace: false,
            method: LoadMethod::LoadData,
            batch_bytes: BATCH_BYTES,
            max_row_bytes: usize::MAX,
        };
        let sql = spec.statement_in(spec.batch_charset(b"\xC3\xA9"));
        assert!(sql.contains("CHARACTER SET utf8mb4"), "{sql}");
        assert!(
            sql.contains("(`a`, @v1, `c`, @v3) SET `b` = UNHEX(@v1), `d` = CAST(@v3 AS UNSIGNED)"),
            "{sql}"
        );
        let mut out = Vec::new();
        spec.encode_row(
            &mut out,
            &[Some(b"1"), Some(&[0, 0xFF]), Some(b"a\tb\\c\n\0"), None],
        );
        assert_eq!(out, b"1\t00FF\ta\\tb\\\\c\\n\\0\t\\N\n");
    }

    #[test]
    fn an_ascii_batch_goes_as_binary_only_where_ascii_is_itself() {
        let text = |charset: &str, data_type: &str| ColumnInfo {
            charset: Some(charset.into()),
            data_type: data_type.into(),
            ..col("t", ColumnKind::Text)
        };
        let spec = |columns: Vec<ColumnInfo>| LoadSpec {
            table: TableName::new("db", "t"),
            columns,
            charset: "utf8mb4".into(),
            replace: false,
            method: LoadMethod::LoadData,
            batch_bytes: BATCH_BYTES,
            max_row_bytes: usize::MAX,
        };
        let plain = spec(vec![
            col("i", ColumnKind::Integer),
            text("latin1", "varchar"),
            text("utf8mb4", "longtext"),
            col("b", ColumnKind::Binary),
        ]);
        assert_eq!(plain.batch_charset(b"1\tabc\t\\N\t00FF\n"), "binary");
        assert_eq!(plain.batch_charset("1\tcaf\u{e9}\n".as_bytes()), "utf8mb4");
        let wide = spec(vec![text("utf16", "varchar")]);
        assert_eq!(wide.batch_charset(b"abc\n"), "utf8mb4");
        let mysql_json = spec(vec![ColumnInfo {
            data_type: "json".into(),
            ..col("j", ColumnKind::Text)
        }]);
        assert_eq!(mysql_json.batch_charset(b"{}\n"), "utf8mb4");
        let typed = |data_type: &str| ColumnInfo {
            data_type: data_type.into(),
            ..col("x", ColumnKind::Text)
        };
        let temporal = spec(vec![typed("datetime"), typed("date")]);
        assert_eq!(temporal.batch_charset(b"2026-12-03\n"), "binary");
        // MariaDB's INET4, INET6 and UUID read a binary string as their packed value.
        for t in ["inet6", "inet4", "uuid"] {
            assert_eq!(
                spec(vec![typed(t)]).batch_charset(b"::1\n"),
                "utf8mb4",
                "{t}"
            );
        }
        let raw = LoadSpec {
            charset: "binary".into(),
            ..spec(vec![text("latin1", "varchar")])
        };
        assert_eq!(raw.batch_charset(b"abc\n"), "binary");
    }
}
