//! MariaDB's bulk execution (`COM_STMT_BULK_EXECUTE`): one prepared `INSERT … VALUES (?, …)`
//! run over a whole batch of rows sent in one packet, their values in binary form.
//!
//! Why: the server's `LOAD DATA` reads its stream one byte at a time (`READ_INFO::read_field`
//! and a `String::append` per byte were a quarter of the target's CPU on the sysbench import,
//! perf, session 12). A bulk execution hands each value over as one length-prefixed piece:
//! the same 2 M rows took about 10 s of the target's CPU instead of 13.
//!
//! Protocol (MariaDB ≥ 10.2, asked for at the handshake with the extended capability
//! `MARIADB_CLIENT_STMT_BULK_OPERATIONS`):
//! * `COM_STMT_PREPARE` (`0x16`) answers OK with the statement id, then one definition packet
//!   per parameter and an EOF.
//! * `COM_STMT_BULK_EXECUTE` (`0xFA`): statement id (4), flags (2; `0x80` = the parameter types
//!   follow), one type and flag byte per parameter, then per row and per parameter an
//!   indicator (`0` a value follows, `1` NULL) and the value. The server answers one OK (rows
//!   affected, warnings) for the whole batch, or ERR. The batch is one statement: in autocommit
//!   it is one transaction, all of it or nothing.
//! * The whole command is one packet, so it must fit the server's `max_allowed_packet`.

use mysql_async::Error;

use super::{MAX_FRAME, RawConn, infile::ok_counts, malformed, server_error};
use crate::wire::LocalLoad;

/// A parameter typed `MYSQL_TYPE_BLOB`: its bytes are binary, stored without a charset
/// conversion (a text column still checks they are well formed in its own charset).
pub const PARAM_BLOB: u8 = 0xFC;
/// A parameter typed `MYSQL_TYPE_VAR_STRING`: text in the connection's charset (utf8mb4),
/// converted to the column's.
pub const PARAM_TEXT: u8 = 0xFD;
/// The flags word: the parameter types are sent with the rows.
const SEND_TYPES_TO_SERVER: u16 = 0x80;

/// A statement prepared on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    id: u32,
    params: u16,
}

impl Prepared {
    /// How many `?` the statement has.
    pub fn params(&self) -> usize {
        usize::from(self.params)
    }
}

/// Appends one parameter of a bulk row: NULL, or a value of the type its header names.
pub fn push_param(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(1),
        Some(v) => {
            out.push(0);
            push_lenenc(out, v.len() as u64);
            out.extend_from_slice(v);
        }
    }
}

fn push_lenenc(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => out.push(n as u8),
        251..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

impl RawConn {
    /// The server runs `COM_STMT_BULK_EXECUTE` for this connection (MariaDB ≥ 10.2).
    pub fn bulk_insert_supported(&self) -> bool {
        self.bulk
    }

    /// Prepares `sql` on this connection; it lives until the connection ends.
    pub async fn prepare(&mut self, sql: &str) -> Result<Prepared, Error> {
        self.seq = 0;
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(0x16);
        payload.extend_from_slice(sql.as_bytes());
        self.write_packet(&payload).await?;
        let answer = self.read_packet().await?;
        match answer.first() {
            Some(0x00) => {}
            Some(0xFF) => return Err(server_error(&answer)),
            _ => return Err(malformed("answer to COM_STMT_PREPARE")),
        }
        let field = |at: usize, n: usize| {
            answer
                .get(at..at + n)
                .ok_or_else(|| malformed("COM_STMT_PREPARE OK packet"))
        };
        let id = u32::from_le_bytes(field(1, 4)?.try_into().unwrap_or_default());
        let columns = u16::from_le_bytes(field(5, 2)?.try_into().unwrap_or_default());
        let params = u16::from_le_bytes(field(7, 2)?.try_into().unwrap_or_default());
        // Parameter definitions, then column definitions, each list ended by an EOF.
        for count in [params, columns] {
            if count == 0 {
                continue;
            }
            for _ in 0..count {
                self.read_packet().await?;
            }
            let eof = self.read_packet().await?;
            if eof.first() != Some(&0xFE) {
                return Err(malformed("end of COM_STMT_PREPARE definitions"));
            }
        }
        Ok(Prepared { id, params })
    }

    /// Runs `stmt` once per row of `rows`: the parameter types (a type and a flag byte per
    /// parameter, see [`PARAM_BLOB`]) followed by the rows ([`push_param`] per parameter).
    /// Written straight from `rows`, without a copy.
    pub async fn bulk_execute(&mut self, stmt: &Prepared, rows: &[u8]) -> Result<LocalLoad, Error> {
        self.seq = 0;
        let mut head = [0u8; 7];
        head[0] = 0xFA;
        head[1..5].copy_from_slice(&stmt.id.to_le_bytes());
        head[5..7].copy_from_slice(&SEND_TYPES_TO_SERVER.to_le_bytes());
        // Frames of at most MAX_FRAME bytes; one that is exactly full is followed by another
        // (maybe empty) frame.
        let total = head.len() + rows.len();
        let mut sent = 0;
        loop {
            let len = (total - sent).min(MAX_FRAME);
            let from_head = head.get(sent..).map_or(&[][..], |h| &h[..h.len().min(len)]);
            let data_from = sent.saturating_sub(head.len());
            let data = &rows[data_from..data_from + len - from_head.len()];
            self.write_frame_parts(from_head, data).await?;
            sent += len;
            if len < MAX_FRAME {
                break;
            }
        }
        let answer = self.read_packet().await?;
        match answer.first() {
            Some(0x00) => ok_counts(&answer).ok_or_else(|| malformed("OK packet")),
            Some(0xFF) => Err(server_error(&answer)),
            _ => Err(malformed("answer to COM_STMT_BULK_EXECUTE")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_values_are_indicator_and_length_prefixed_bytes() {
        let mut out = Vec::new();
        push_param(&mut out, Some(b"ab"));
        push_param(&mut out, None);
        push_param(&mut out, Some(b""));
        assert_eq!(out, [0, 2, b'a', b'b', 1, 0, 0]);
        let long = vec![7u8; 300];
        let mut out = Vec::new();
        push_param(&mut out, Some(&long));
        assert_eq!(out[..4], [0, 0xFC, 0x2C, 0x01]);
        assert_eq!(out.len(), 4 + 300);
        let mut out = Vec::new();
        push_lenenc(&mut out, 70_000);
        assert_eq!(out, [0xFD, 0x70, 0x11, 0x01]);
    }
}
