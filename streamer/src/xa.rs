//! XA transactions: the first phase's changes wait in the target's meta schema until the
//! source's XA COMMIT.
//!
//! What the binlog holds (MariaDB 10.5+, MySQL 5.7.7+). `XA PREPARE` writes an event group of
//! its own: (GTID with flag PREPARED_XA on MariaDB) `XA START xid`, the row events,
//! `XA END xid`, and an XA_PREPARE_LOG_EVENT (type 38) where a normal transaction has its XID.
//! The second phase comes later, any number of other transactions after it, as a second group
//! holding one QUERY: `XA COMMIT xid` or `XA ROLLBACK xid`. `XA COMMIT xid ONE PHASE` writes an
//! ordinary transaction (MariaDB: BEGIN … XID; MySQL: XA START … XA END, then an
//! XA_PREPARE_LOG_EVENT whose one_phase byte is 1, read as a commit).
//!
//! Why the changes are applied at the XA COMMIT and not at the prepare: until then the source
//! may still roll them back. Why applying them there keeps every key's order: a prepared
//! transaction holds its row locks until its second phase, so no transaction committed in
//! between touched its rows.
//!
//! Exactly once across crashes. The prepare group's changes are rendered as SQL statements and
//! stored in `<meta>.stream_xa_pending` in the same target transaction as the checkpoint that
//! moves past the group. The XA COMMIT runs those statements, deletes them and moves the
//! checkpoint in one target transaction; XA ROLLBACK deletes them with its checkpoint. Both run
//! alone, with every applier drained, like a DDL. A replayed prepare replaces its rows (delete,
//! then insert), so a crash anywhere leaves either the state before a step or after it.
//!
//! Event body of XA_PREPARE_LOG_EVENT (after the header, without the CRC32), little-endian:
//! `one_phase u8 | format_id u32 | gtrid_length u32 | bqual_length u32 | gtrid | bqual`.

use std::fmt;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{CoreError, Endpoint, quote_ident, quote_string};

use crate::StreamError;
use crate::checkpoint::Checkpoints;
use crate::sql::append_changes;
use crate::transaction::{XaAction, XaStep};

/// An XA transaction id: global transaction id, branch qualifier and format id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Xid {
    pub gtrid: Vec<u8>,
    pub bqual: Vec<u8>,
    pub format_id: u64,
}

impl fmt::Display for Xid {
    /// The form the server itself writes in the binlog: `X'6131',X'',1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "X'{}',X'{}',{}",
            hex(&self.gtrid),
            hex(&self.bqual),
            self.format_id
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Xid {
    /// The xid of an XA_PREPARE_LOG_EVENT body; `None` when the body is too short.
    pub fn from_prepare_event(body: &[u8]) -> Option<Xid> {
        let u32_at = |i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(body.get(i..i + 4)?.try_into().ok()?))
        };
        let format_id = u32_at(1)?;
        let gtrid_len = usize::try_from(u32_at(5)?).ok()?;
        let bqual_len = usize::try_from(u32_at(9)?).ok()?;
        let gtrid = body.get(13..13 + gtrid_len)?.to_vec();
        let bqual = body
            .get(13 + gtrid_len..13 + gtrid_len + bqual_len)?
            .to_vec();
        Some(Xid {
            gtrid,
            bqual,
            format_id: u64::from(format_id),
        })
    }
}

/// What an `XA …` statement in the binlog means to the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XaStatement {
    /// The second phase of a prepared transaction.
    Commit(Xid),
    Rollback(Xid),
    /// `XA COMMIT … ONE PHASE`: ends the group it is in, like COMMIT.
    OnePhaseCommit,
    /// `XA START`, `XA END`, `XA PREPARE` (the event group's own framing).
    Framing,
}

/// Reads an `XA` statement; `None` when `sql` is not one, or its xid does not parse.
pub fn parse_statement(sql: &str) -> Option<XaStatement> {
    let mut p = Parser {
        s: sql.trim().as_bytes(),
        at: 0,
    };
    if !p.keyword("XA") {
        return None;
    }
    let commit = if p.keyword("COMMIT") {
        true
    } else if p.keyword("ROLLBACK") {
        false
    } else {
        return Some(XaStatement::Framing);
    };
    let xid = p.xid()?;
    if commit && p.keyword("ONE") {
        return Some(XaStatement::OnePhaseCommit);
    }
    Some(if commit {
        XaStatement::Commit(xid)
    } else {
        XaStatement::Rollback(xid)
    })
}

/// A small reader of `gtrid [, bqual [, format_id]]` as the server writes it (hex literals)
/// and as a user may type it (quoted strings, 0x… hex).
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        let end = self.at + word.len();
        let matches = self
            .s
            .get(self.at..end)
            .is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
            && self.s.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
        if matches {
            self.at = end;
        }
        matches
    }

    fn punct(&mut self, c: u8) -> bool {
        self.skip_space();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn xid(&mut self) -> Option<Xid> {
        let gtrid = self.string()?;
        let mut xid = Xid {
            gtrid,
            bqual: Vec::new(),
            format_id: 1,
        };
        if self.punct(b',') {
            xid.bqual = self.string()?;
            if self.punct(b',') {
                xid.format_id = self.number()?;
            }
        }
        Some(xid)
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        self.skip_space();
        let rest = &self.s[self.at..];
        if rest.len() >= 2 && rest[0].eq_ignore_ascii_case(&b'x') && rest[1] == b'\'' {
            let close = rest[2..].iter().position(|&c| c == b'\'')? + 2;
            self.at += close + 1;
            return unhex(&rest[2..close]);
        }
        if rest.len() >= 2 && rest[0] == b'0' && rest[1].eq_ignore_ascii_case(&b'x') {
            let len = rest[2..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            self.at += 2 + len;
            return unhex(&rest[2..2 + len]);
        }
        let quote = *rest.first()?;
        if quote != b'\'' && quote != b'"' {
            return None;
        }
        let mut out = Vec::new();
        let mut i = 1;
        loop {
            let c = *rest.get(i)?;
            i += 1;
            if c == b'\\' {
                out.push(*rest.get(i)?);
                i += 1;
            } else if c == quote {
                if rest.get(i) == Some(&quote) {
                    out.push(quote);
                    i += 1;
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        self.at += i;
        Some(out)
    }

    fn number(&mut self) -> Option<u64> {
        self.skip_space();
        let len = self.s[self.at..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let n = std::str::from_utf8(&self.s[self.at..self.at + len])
            .ok()?
            .parse()
            .ok()?;
        self.at += len;
        Some(n)
    }
}

fn unhex(digits: &[u8]) -> Option<Vec<u8>> {
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// The table of prepared transactions' statements of one task.
#[derive(Debug, Clone)]
pub struct PendingXa {
    table: String,
    task: String,
}

impl PendingXa {
    pub fn new(meta_schema: &str, task: &str) -> PendingXa {
        PendingXa {
            table: format!("{}.`stream_xa_pending`", quote_ident(meta_schema)),
            task: task.to_owned(),
        }
    }

    /// Creates the table when missing (the meta schema exists: the checkpoints made it).
    pub async fn ensure(&self, conn: &mut Conn, target: &Endpoint) -> Result<(), CoreError> {
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {} (\
               task VARCHAR(128) NOT NULL, xid VARCHAR(300) CHARACTER SET ascii NOT NULL, \
               seq INT NOT NULL, statement LONGBLOB NOT NULL, \
               PRIMARY KEY (task, xid, seq)) ENGINE=InnoDB",
            self.table
        ))
        .await
        .map_err(|e| target.error("create the XA table", e))
    }

    /// Forgets every prepared transaction of this task (`--restart`).
    pub async fn clear(&self, conn: &mut Conn, target: &Endpoint) -> Result<(), CoreError> {
        conn.query_drop(format!(
            "DELETE FROM {} WHERE task = {}",
            self.table,
            quote_string(&self.task)
        ))
        .await
        .map_err(|e| target.error("clear the prepared XA transactions", e))
    }

    fn key(&self, xid: &Xid) -> String {
        format!(
            "task = {} AND xid = {}",
            quote_string(&self.task),
            quote_string(&xid.to_string())
        )
    }

    /// Forgets `xid`'s statements (inside the caller's transaction).
    pub fn delete(&self, xid: &Xid) -> String {
        format!("DELETE FROM {} WHERE {}", self.table, self.key(xid))
    }

    /// Stores `xid`'s statements: row 0 says the prepare was seen (a transaction may change
    /// no replicated table) and holds the number of rows; rows 1.. are its statements in
    /// order. One request per row, so a large statement needs no more than its own size in
    /// one packet.
    pub fn store(&self, xid: &Xid, statements: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut requests = vec![self.delete(xid).into_bytes()];
        let head = format!(
            "INSERT INTO {} (task, xid, seq, statement) VALUES ({}, {}, ",
            self.table,
            quote_string(&self.task),
            quote_string(&xid.to_string())
        );
        let count = statements.len().to_string().into_bytes();
        for (seq, statement) in std::iter::once(&count).chain(statements).enumerate() {
            let mut sql = head.clone().into_bytes();
            sql.extend_from_slice(format!("{seq}, ").as_bytes());
            // The statements are UTF-8 (binary cells are hex): quoted, they keep their size.
            sql.extend_from_slice(b"_binary");
            sluice_core::sql_literal(&mut sql, sluice_core::ColumnKind::Text, Some(statement));
            sql.push(b')');
            requests.push(sql);
        }
        requests
    }

    /// `xid`'s row count and statements in order, `None` when its prepare was never stored.
    pub async fn statements(
        &self,
        conn: &mut Conn,
        target: &Endpoint,
        xid: &Xid,
    ) -> Result<Option<(u64, Vec<Vec<u8>>)>, CoreError> {
        let rows: Vec<(i64, Vec<u8>)> = conn
            .query(format!(
                "SELECT seq, statement FROM {} WHERE {} ORDER BY seq FOR UPDATE",
                self.table,
                self.key(xid)
            ))
            .await
            .map_err(|e| target.error("read a prepared XA transaction", e))?;
        let mut rows = rows.into_iter();
        let Some((0, head)) = rows.next() else {
            return Ok(None);
        };
        let count = String::from_utf8_lossy(&head).parse().unwrap_or(0);
        Ok(Some((count, rows.map(|(_, s)| s).collect())))
    }
}

/// Applies one XA step on `conn` (every applier drained) and moves the checkpoint rows
/// (`checkpoint`, the upserts of all appliers) to its end in the same target transaction.
/// Returns the rows an XA COMMIT applied.
///
/// Safe to run again after a lost connection: a prepare replaces its rows, a rollback deletes
/// nothing the second time, and a commit whose rows are gone while the checkpoint names its
/// end had committed.
pub async fn apply_step(
    conn: &mut Conn,
    target: &Endpoint,
    pending: &PendingXa,
    checkpoints: &Checkpoints,
    checkpoint: &str,
    step: &XaStep,
) -> Result<u64, StreamError> {
    let mut requests: Vec<Vec<u8>> = vec![b"START TRANSACTION".to_vec()];
    let mut rows = 0;
    match &step.action {
        XaAction::Prepare(changes) => {
            // One statement per change: ordered exactly as upstream, and none of them large.
            let statements: Vec<Vec<u8>> = changes
                .iter()
                .map(|c| {
                    let mut out = Vec::new();
                    append_changes(&mut out, std::slice::from_ref(c), false);
                    out
                })
                .collect();
            requests.extend(pending.store(&step.xid, &statements));
        }
        XaAction::Commit => {
            // The rows are read locked, inside the transaction: a retry after a lost connection
            // waits for the first attempt's transaction to end, then sees whether it committed.
            requests.clear();
            for sql in ["SET SESSION foreign_key_checks = 0", "START TRANSACTION"] {
                conn.query_drop(sql)
                    .await
                    .map_err(|cause| StreamError::Apply {
                        target: target.to_string(),
                        position: step.end.position.clone(),
                        cause,
                    })?;
            }
            let found = pending.statements(conn, target, &step.xid).await;
            let Some((count, statements)) = found? else {
                let applied = checkpoints.applied(conn, target, 0).await;
                let _ = conn
                    .query_drop("ROLLBACK; SET SESSION foreign_key_checks = 1")
                    .await;
                if applied? == Some(step.end.position.clone()) {
                    return Ok(0);
                }
                return Err(StreamError::Schema {
                    table: "XA transaction".into(),
                    position: step.end.position.clone(),
                    reason: format!(
                        "XA COMMIT {}: this stream never saw its XA PREPARE (prepared before the \
                         stream's start point), so its changes are unknown; stream from a \
                         position before the prepare, or take the dump again once no XA \
                         transaction is prepared (XA RECOVER lists them)",
                        step.xid
                    ),
                });
            };
            rows = count;
            requests.extend(statements);
            requests.push(pending.delete(&step.xid).into_bytes());
        }
        XaAction::Rollback => requests.push(pending.delete(&step.xid).into_bytes()),
    }
    requests.push(checkpoint.as_bytes().to_vec());
    requests.push(b"COMMIT".to_vec());
    requests.push(b"SET SESSION foreign_key_checks = 1".to_vec());
    for request in &requests {
        if let Err(cause) = conn.query_drop(request).await {
            let _ = conn.query_drop("ROLLBACK").await;
            return Err(StreamError::Apply {
                target: target.to_string(),
                position: step.end.position.clone(),
                cause,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xid(g: &[u8], b: &[u8], f: u64) -> Xid {
        Xid {
            gtrid: g.to_vec(),
            bqual: b.to_vec(),
            format_id: f,
        }
    }

    #[test]
    fn statements_as_the_server_writes_them() {
        assert_eq!(
            parse_statement("XA COMMIT X'7831',X'',1"),
            Some(XaStatement::Commit(xid(b"x1", b"", 1)))
        );
        assert_eq!(
            parse_statement("XA ROLLBACK X'7832',X'62',7"),
            Some(XaStatement::Rollback(xid(b"x2", b"b", 7)))
        );
        assert_eq!(
            parse_statement("XA START X'7831',X'',1"),
            Some(XaStatement::Framing)
        );
        assert_eq!(
            parse_statement("XA END X'7831',X'',1"),
            Some(XaStatement::Framing)
        );
        assert_eq!(
            parse_statement("XA COMMIT X'7833',X'',1 ONE PHASE"),
            Some(XaStatement::OnePhaseCommit)
        );
        assert_eq!(parse_statement("XACT"), None);
        assert_eq!(parse_statement("COMMIT"), None);
    }

    #[test]
    fn statements_as_a_user_types_them() {
        assert_eq!(
            parse_statement("xa commit 'it''s', \"b\\\"q\", 42"),
            Some(XaStatement::Commit(xid(b"it's", b"b\"q", 42)))
        );
        assert_eq!(
            parse_statement("XA ROLLBACK 0x6162"),
            Some(XaStatement::Rollback(xid(b"ab", b"", 1)))
        );
        assert_eq!(parse_statement("XA COMMIT X'7'"), None);
    }

    #[test]
    fn the_prepare_event_names_the_same_xid_as_the_commit() {
        // one_phase 0, format 7, gtrid "x2", bqual "b" (from a MariaDB 10.11 binlog).
        let body = [0, 7, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, b'x', b'2', b'b'];
        let prepared = Xid::from_prepare_event(&body).unwrap_or_else(|| xid(b"", b"", 0));
        assert_eq!(prepared, xid(b"x2", b"b", 7));
        assert_eq!(prepared.to_string(), "X'7832',X'62',7");
        assert_eq!(
            parse_statement(&format!("XA COMMIT {prepared}")),
            Some(XaStatement::Commit(prepared))
        );
        assert_eq!(Xid::from_prepare_event(&body[..14]), None);
    }
}
