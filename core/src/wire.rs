//! A lean MySQL text-protocol connection for the dump's row path and the import's loaders.
//!
//! Why it exists: `mysql_async` turns every row into a `Row` of owned `Value`s, takes and
//! returns a pooled buffer and reads the clock per packet. Measured with `perf` on the sysbench
//! dump (session 9), that was about 60 % of the dumper's user CPU, and on two cores shared with
//! the source server the client's CPU per row decides the dump's speed. [`RawConn`] reads result
//! rows straight out of one large receive buffer and hands each row's cells to the caller as
//! borrowed slices: no allocation per row or cell, and one `await` per buffer, not per row.
//!
//! It speaks only what a dump worker and an import loader need: TCP; the protocol-41 handshake
//! with `mysql_native_password` or `caching_sha2_password` (fast path, or the full path with
//! the server's RSA key); the session setup every Sluice connection runs ([`SESSION_SETUP`]);
//! COM_QUERY answered by OK, ERR or a text result set; `LOAD DATA LOCAL INFILE` streamed
//! from a buffer (`wire/infile.rs`); and MariaDB's bulk execution of one prepared INSERT over
//! many rows (`wire/bulk.rs`). No TLS, no compression, no other prepared statements: the
//! coordinator and every other stage keep using `mysql_async`.
//!
//! Frames. A packet is a 3-byte little-endian length, a sequence byte and the payload; a payload
//! of 16 MiB − 1 or more continues in the next frame. Rows arrive without
//! `CLIENT_DEPRECATE_EOF`, so the column definitions end with an EOF packet and so do the rows.
//! An EOF packet starts with `0xFE` and is shorter than 9 bytes, which a row can never be (a
//! row starting with `0xFE` holds a cell of 16 MiB or more).
//!
//! Errors are `mysql_async::Error` (server errors with their code and state, I/O errors), so
//! that callers wrap them exactly as they wrap the driver's.

use std::io;

use mysql_async::{DriverError, Error, IoError, ServerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::endpoint::SESSION_SETUP;
use crate::{CoreError, Endpoint};

pub mod bulk;
mod infile;
pub use bulk::Prepared;
pub use infile::LocalLoad;

/// The receive buffer: rows are parsed in place from it, many per read.
const RECV_BUFFER: usize = 256 << 10;
/// A frame of this payload length continues in the next one.
const MAX_FRAME: usize = 0xFF_FFFF;

const LONG_PASSWORD: u32 = 0x1;
const LONG_FLAG: u32 = 0x4;
const CONNECT_WITH_DB: u32 = 0x8;
/// The server may ask for a LOCAL INFILE's data (only [`RawConn::load_local`] sends it).
const LOCAL_FILES: u32 = 0x80;
const PROTOCOL_41: u32 = 0x200;
const TRANSACTIONS: u32 = 0x2000;
const SECURE_CONNECTION: u32 = 0x8000;
const MULTI_RESULTS: u32 = 0x2_0000;
const PLUGIN_AUTH: u32 = 0x8_0000;
/// MariaDB's extended capability for COM_STMT_BULK_EXECUTE.
const STMT_BULK_OPERATIONS: u32 = 0x4;
/// OK/EOF status flag: another result set follows.
const MORE_RESULTS_EXIST: u16 = 0x0008;
/// utf8mb4_general_ci; `SET NAMES utf8mb4` follows anyway.
const UTF8MB4: u8 = 45;

const NATIVE: &str = "mysql_native_password";
const CACHING_SHA2: &str = "caching_sha2_password";

/// One connection, used by one task.
pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The sequence id of the next packet written.
    seq: u8,
    id: u32,
    /// Set by the last OK or EOF packet: another result set follows.
    more_results: bool,
    /// The server is MariaDB and took `MARIADB_CLIENT_STMT_BULK_OPERATIONS` (see `wire/bulk.rs`).
    bulk: bool,
}

/// An error from [`TextRows::next_batch`]: the connection's, or the one the row handler returned.
#[derive(Debug)]
pub enum BatchError<E> {
    Wire(Error),
    Row(E),
}

impl BatchError<Error> {
    /// One error, when the row handler's errors are the connection's kind.
    pub fn flatten(self) -> Error {
        match self {
            BatchError::Wire(e) | BatchError::Row(e) => e,
        }
    }
}

impl<E> From<Error> for BatchError<E> {
    fn from(e: Error) -> Self {
        BatchError::Wire(e)
    }
}

impl Endpoint {
    /// A [`RawConn`] to this server, with the same bounded wait and session settings as
    /// [`Endpoint::connect`].
    pub async fn connect_raw(&self) -> Result<RawConn, CoreError> {
        let attempt =
            tokio::time::timeout(std::time::Duration::from_secs(30), RawConn::connect(self));
        match attempt.await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(source)) => Err(self.error("connect", source)),
            Err(_) => Err(self.error(
                "connect",
                io_error(io::ErrorKind::TimedOut, "no answer within 30 s"),
            )),
        }
    }
}

impl RawConn {
    async fn connect(endpoint: &Endpoint) -> Result<RawConn, Error> {
        let stream = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| Error::Io(IoError::Io(e)))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::Io(IoError::Io(e)))?;
        let mut conn = RawConn {
            stream,
            buf: vec![0; RECV_BUFFER],
            start: 0,
            end: 0,
            seq: 0,
            id: 0,
            more_results: false,
            bulk: false,
        };
        conn.authenticate(endpoint).await?;
        for sql in SESSION_SETUP {
            conn.query_drop(sql).await?;
        }
        Ok(conn)
    }

    /// The server's id for this connection (for `KILL`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Runs a statement and discards whatever it returns.
    pub async fn query_drop(&mut self, sql: &str) -> Result<(), Error> {
        self.send_query(sql).await?;
        loop {
            self.next_result().await?.drain().await?;
            if !self.more_results {
                return Ok(());
            }
        }
    }

    /// Runs a statement and returns its rows, each cell as the server's text (`None` for NULL).
    /// For small results: every cell is copied. Of several result sets, only the first's rows
    /// are kept.
    pub async fn query_rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<Vec<u8>>>>, Error> {
        let mut out = Vec::new();
        let mut rows = self.query_stream(sql).await?;
        let mut copy = |cells: &[Option<&[u8]>]| {
            out.push(cells.iter().map(|c| c.map(<[u8]>::to_vec)).collect());
            Ok::<(), Error>(())
        };
        while rows
            .next_batch(&mut copy)
            .await
            .map_err(BatchError::flatten)?
        {}
        while self.more_results {
            self.next_result().await?.drain().await?;
        }
        Ok(out)
    }

    /// Sends a statement; its rows are then read with [`TextRows::next_batch`].
    pub async fn query_stream(&mut self, sql: &str) -> Result<TextRows<'_>, Error> {
        self.send_query(sql).await?;
        self.next_result().await
    }

    async fn send_query(&mut self, sql: &str) -> Result<(), Error> {
        let mut packet = Vec::with_capacity(sql.len() + 1);
        packet.push(0x03); // COM_QUERY
        packet.extend_from_slice(sql.as_bytes());
        self.seq = 0;
        self.write_packet(&packet).await
    }

    /// Ends the session politely, so that the server does not log an aborted connection.
    pub async fn quit(mut self) {
        self.seq = 0;
        let _ = self.write_packet(&[0x01]).await; // COM_QUIT
    }

    /// Reads a result's first packet: OK (no rows), ERR, or a result set's header and columns.
    async fn next_result(&mut self) -> Result<TextRows<'_>, Error> {
        self.more_results = false;
        let first = self.read_packet().await?;
        match first.first() {
            Some(0x00) => {
                self.more_results = ok_status(&first) & MORE_RESULTS_EXIST != 0;
                return Ok(TextRows {
                    conn: self,
                    columns: 0,
                    done: true,
                });
            }
            Some(0xFF) => return Err(server_error(&first)),
            Some(0xFB) => {
                return Err(io_error(
                    io::ErrorKind::Unsupported,
                    "the server asked for a LOCAL INFILE's data outside of LOAD DATA LOCAL",
                ));
            }
            _ => {}
        }
        let (columns, _) = lenenc(&first, 0).ok_or_else(|| malformed("result set header"))?;
        for _ in 0..columns {
            self.read_packet().await?;
        }
        let eof = self.read_packet().await?;
        if eof.first() == Some(&0xFF) {
            return Err(server_error(&eof));
        }
        if !is_eof(&eof) {
            return Err(malformed("end of column definitions"));
        }
        Ok(TextRows {
            conn: self,
            columns: columns as usize,
            done: false,
        })
    }

    async fn authenticate(&mut self, endpoint: &Endpoint) -> Result<(), Error> {
        let hello = self.read_packet().await?;
        if hello.first() == Some(&0xFF) {
            return Err(server_error(&hello));
        }
        let hs = Handshake::parse(&hello).ok_or_else(|| malformed("server greeting"))?;
        if hs.capabilities & (PROTOCOL_41 | SECURE_CONNECTION) != PROTOCOL_41 | SECURE_CONNECTION {
            return Err(io_error(
                io::ErrorKind::Unsupported,
                "the server does not speak protocol 4.1 with secure authentication",
            ));
        }
        self.id = hs.id;
        let password = endpoint
            .password
            .as_ref()
            .map(|p| p.expose().as_bytes().to_vec())
            .unwrap_or_default();
        let mut plugin = if hs.plugin.is_empty() {
            NATIVE.to_owned()
        } else {
            hs.plugin
        };
        let mut nonce = hs.nonce;

        let mut caps = LONG_PASSWORD
            | LONG_FLAG
            | PROTOCOL_41
            | TRANSACTIONS
            | SECURE_CONNECTION
            | MULTI_RESULTS
            | PLUGIN_AUTH
            | LOCAL_FILES;
        if endpoint.database.is_some() {
            caps |= CONNECT_WITH_DB;
        }
        caps &= hs.capabilities | CONNECT_WITH_DB;
        let mut response = Vec::with_capacity(128);
        response.extend_from_slice(&caps.to_le_bytes());
        response.extend_from_slice(&(1u32 << 30).to_le_bytes()); // max packet: 1 GiB
        response.push(UTF8MB4);
        // 19 filler bytes, then MariaDB's extended capabilities: a MariaDB server says it has
        // them by leaving out CLIENT_MYSQL (= LONG_PASSWORD) and reads them back from here.
        response.extend_from_slice(&[0; 19]);
        self.bulk = hs.capabilities & LONG_PASSWORD == 0
            && hs.mariadb_capabilities & STMT_BULK_OPERATIONS != 0;
        let extended = if self.bulk { STMT_BULK_OPERATIONS } else { 0 };
        response.extend_from_slice(&extended.to_le_bytes());
        response.extend_from_slice(endpoint.user.as_bytes());
        response.push(0);
        let auth = auth_response(&plugin, &nonce, &password)?;
        response.push(auth.len() as u8);
        response.extend_from_slice(&auth);
        if let Some(db) = &endpoint.database {
            response.extend_from_slice(db.as_bytes());
            response.push(0);
        }
        if caps & PLUGIN_AUTH != 0 {
            response.extend_from_slice(plugin.as_bytes());
            response.push(0);
        }
        self.write_packet(&response).await?;

        loop {
            let answer = self.read_packet().await?;
            match answer.first() {
                Some(0x00) => return Ok(()),
                Some(0xFF) => return Err(server_error(&answer)),
                Some(0xFE) => {
                    // Auth switch: a plugin name and a new nonce.
                    let body = &answer[1..];
                    let name_end = body
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or_else(|| malformed("authentication switch"))?;
                    plugin = String::from_utf8_lossy(&body[..name_end]).into_owned();
                    nonce = trim_nul(&body[name_end + 1..]).to_vec();
                    let auth = auth_response(&plugin, &nonce, &password)?;
                    self.write_packet(&auth).await?;
                }
                Some(0x01) if plugin == CACHING_SHA2 => match answer.get(1) {
                    Some(0x03) => {} // fast authentication succeeded; OK follows
                    Some(0x04) => {
                        // Full authentication without TLS: the password, XOR the nonce,
                        // encrypted with the server's public key.
                        self.write_packet(&[0x02]).await?;
                        let key = self.read_packet().await?;
                        let key = key.get(1..).ok_or_else(|| malformed("public key"))?;
                        let mut secret = password.clone();
                        secret.push(0);
                        for (i, b) in secret.iter_mut().enumerate() {
                            *b ^= nonce[i % nonce.len().max(1)];
                        }
                        let sealed = mysql_common::crypto::encrypt(&secret, key);
                        self.write_packet(&sealed).await?;
                    }
                    _ => return Err(malformed("caching_sha2_password exchange")),
                },
                _ => return Err(malformed("authentication answer")),
            }
        }
    }

    /// Makes sure `n` unread bytes are buffered, reading as needed.
    async fn fill(&mut self, n: usize) -> Result<(), Error> {
        if self.end - self.start >= n {
            return Ok(());
        }
        if self.start == self.end && n <= RECV_BUFFER && self.buf.len() > RECV_BUFFER {
            // A huge packet grew the buffer; give the memory back.
            self.start = 0;
            self.end = 0;
            self.buf.truncate(RECV_BUFFER);
            self.buf.shrink_to_fit();
        }
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if n > self.buf.len() {
                self.buf.resize(n, 0);
            }
        }
        while self.end - self.start < n {
            let got = self
                .stream
                .read(&mut self.buf[self.end..])
                .await
                .map_err(|e| Error::Io(IoError::Io(e)))?;
            if got == 0 {
                return Err(Error::Driver(DriverError::ConnectionClosed));
            }
            self.end += got;
        }
        Ok(())
    }

    /// The next packet's payload, joined across frames.
    async fn read_packet(&mut self) -> Result<Vec<u8>, Error> {
        let mut payload = Vec::new();
        loop {
            self.fill(4).await?;
            let head = &self.buf[self.start..self.start + 4];
            let len = frame_len(head);
            self.seq = head[3].wrapping_add(1);
            self.start += 4;
            self.fill(len).await?;
            payload.extend_from_slice(&self.buf[self.start..self.start + len]);
            self.start += len;
            if len < MAX_FRAME {
                return Ok(payload);
            }
        }
    }

    async fn write_packet(&mut self, payload: &[u8]) -> Result<(), Error> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        let mut frames = payload.chunks(MAX_FRAME).peekable();
        if payload.is_empty() {
            out.extend_from_slice(&[0, 0, 0, self.seq]);
            self.seq = self.seq.wrapping_add(1);
        }
        while let Some(frame) = frames.next() {
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes()[..3]);
            out.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            out.extend_from_slice(frame);
            if frames.peek().is_none() && frame.len() == MAX_FRAME {
                out.extend_from_slice(&[0, 0, 0, self.seq]);
                self.seq = self.seq.wrapping_add(1);
            }
        }
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| Error::Io(IoError::Io(e)))
    }
}

/// The rows of one result set, read in batches.
pub struct TextRows<'c> {
    conn: &'c mut RawConn,
    columns: usize,
    done: bool,
}

impl TextRows<'_> {
    /// Hands every row already received to `each` (waiting for one when none is), as its cells
    /// (`None` for NULL) borrowed from the receive buffer. Returns false once the rows have
    /// ended. After an error from `each` the connection is mid-result: drop it.
    pub async fn next_batch<E>(
        &mut self,
        mut each: impl FnMut(&[Option<&[u8]>]) -> Result<(), E>,
    ) -> Result<bool, BatchError<E>> {
        if self.done {
            return Ok(false);
        }
        let conn = &mut *self.conn;
        conn.fill(4).await?;
        let len = frame_len(&conn.buf[conn.start..]);
        if len >= MAX_FRAME {
            // A row of 16 MiB or more: joined from its frames, then handled alone.
            let packet = conn.read_packet().await?;
            return self.one_packet(&packet, &mut each);
        }
        conn.fill(4 + len).await?;
        let mut cells: Vec<Option<&[u8]>> = Vec::with_capacity(self.columns);
        let buf = &conn.buf[..conn.end];
        let mut pos = conn.start;
        let mut ended = None;
        while buf.len() - pos >= 4 {
            let len = frame_len(&buf[pos..]);
            if len >= MAX_FRAME || buf.len() - pos - 4 < len {
                break;
            }
            let payload = &buf[pos + 4..pos + 4 + len];
            conn.seq = buf[pos + 3].wrapping_add(1);
            pos += 4 + len;
            match payload.first() {
                Some(0xFF) => {
                    ended = Some(Err(server_error(payload)));
                    break;
                }
                Some(0xFE) if len < 9 => {
                    ended = Some(Ok(eof_status(payload) & MORE_RESULTS_EXIST != 0));
                    break;
                }
                _ => {}
            }
            cells.clear();
            if !split_cells(payload, self.columns, &mut cells) {
                conn.start = pos;
                return Err(BatchError::Wire(malformed("result row")));
            }
            if let Err(e) = each(&cells) {
                conn.start = pos;
                return Err(BatchError::Row(e));
            }
        }
        conn.start = pos;
        match ended {
            None => Ok(true),
            Some(Ok(more)) => {
                self.done = true;
                conn.more_results = more;
                Ok(true)
            }
            Some(Err(e)) => {
                self.done = true;
                Err(BatchError::Wire(e))
            }
        }
    }

    /// Reads the remaining rows and throws them away.
    async fn drain(mut self) -> Result<(), Error> {
        while self
            .next_batch(|_| Ok::<(), Error>(()))
            .await
            .map_err(BatchError::flatten)?
        {}
        Ok(())
    }

    fn one_packet<E>(
        &mut self,
        payload: &[u8],
        each: &mut impl FnMut(&[Option<&[u8]>]) -> Result<(), E>,
    ) -> Result<bool, BatchError<E>> {
        let mut cells = Vec::with_capacity(self.columns);
        if !split_cells(payload, self.columns, &mut cells) {
            return Err(BatchError::Wire(malformed("result row")));
        }
        each(&cells).map_err(BatchError::Row)?;
        Ok(true)
    }
}

/// Splits a text-protocol row into its cells; false if it does not hold exactly `columns`.
fn split_cells<'p>(payload: &'p [u8], columns: usize, cells: &mut Vec<Option<&'p [u8]>>) -> bool {
    let mut p = 0;
    for _ in 0..columns {
        match payload.get(p) {
            None => return false,
            Some(0xFB) => {
                cells.push(None);
                p += 1;
            }
            Some(_) => {
                let Some((n, width)) = lenenc(payload, p) else {
                    return false;
                };
                let from = p + width;
                let Some(to) = usize::try_from(n).ok().and_then(|n| from.checked_add(n)) else {
                    return false;
                };
                let Some(cell) = payload.get(from..to) else {
                    return false;
                };
                cells.push(Some(cell));
                p = to;
            }
        }
    }
    p == payload.len()
}

/// A length-encoded integer at `at`: its value and how many bytes it took.
fn lenenc(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let first = *b.get(at)?;
    let int = |n: usize| -> Option<u64> {
        let bytes = b.get(at + 1..at + 1 + n)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(bytes);
        Some(u64::from_le_bytes(v))
    };
    match first {
        0..=0xFA => Some((u64::from(first), 1)),
        0xFC => Some((int(2)?, 3)),
        0xFD => Some((int(3)?, 4)),
        0xFE => Some((int(8)?, 9)),
        _ => None,
    }
}

fn frame_len(head: &[u8]) -> usize {
    usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16
}

fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xFE) && p.len() < 9
}

/// Status flags of an EOF packet: `FE`, warnings (2), status (2).
fn eof_status(p: &[u8]) -> u16 {
    match p.get(3..5) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

/// Status flags of an OK packet: `00`, affected rows, last insert id, status (2).
fn ok_status(p: &[u8]) -> u16 {
    let Some((_, a)) = lenenc(p, 1) else { return 0 };
    let Some((_, b)) = lenenc(p, 1 + a) else {
        return 0;
    };
    match p.get(1 + a + b..3 + a + b) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

/// An ERR packet: `FF`, code (2), `#` and a 5-byte state, the message.
fn server_error(p: &[u8]) -> Error {
    let code = p.get(1..3).map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
    let rest = p.get(3..).unwrap_or_default();
    let (state, message) = match rest.split_first() {
        Some((b'#', r)) if r.len() >= 5 => (&r[..5], &r[5..]),
        _ => (&b"HY000"[..], rest),
    };
    Error::Server(ServerError {
        code,
        message: String::from_utf8_lossy(message).into_owned(),
        state: String::from_utf8_lossy(state).into_owned(),
    })
}

fn io_error(kind: io::ErrorKind, what: &str) -> Error {
    Error::Io(IoError::Io(io::Error::new(kind, what.to_owned())))
}

fn malformed(what: &str) -> Error {
    io_error(
        io::ErrorKind::InvalidData,
        &format!("malformed {what} from the server"),
    )
}

fn trim_nul(b: &[u8]) -> &[u8] {
    b.strip_suffix(&[0]).unwrap_or(b)
}

fn auth_response(plugin: &str, nonce: &[u8], password: &[u8]) -> Result<Vec<u8>, Error> {
    let scrambled = match plugin {
        NATIVE => mysql_common::scramble::scramble_native(nonce, password).map(|s| s.to_vec()),
        CACHING_SHA2 => {
            mysql_common::scramble::scramble_sha256(nonce, password).map(|s| s.to_vec())
        }
        other => {
            return Err(io_error(
                io::ErrorKind::Unsupported,
                &format!(
                    "authentication plugin {other} is not supported for dump connections \
                     (use an account with mysql_native_password or caching_sha2_password)"
                ),
            ));
        }
    };
    Ok(scrambled.unwrap_or_default())
}

/// What the server's greeting says.
struct Handshake {
    id: u32,
    capabilities: u32,
    /// MariaDB's extended capabilities (the last 4 of the 10 reserved bytes); 0 from MySQL.
    mariadb_capabilities: u32,
    nonce: Vec<u8>,
    plugin: String,
}

impl Handshake {
    /// Protocol 10: version, server version (NUL), connection id (4), nonce part 1 (8), filler,
    /// capabilities low (2), charset, status (2), capabilities high (2), nonce length, 10
    /// reserved bytes, nonce part 2 (at least 13, NUL-ended), plugin name (NUL).
    fn parse(p: &[u8]) -> Option<Handshake> {
        if *p.first()? != 10 {
            return None;
        }
        let version_end = 1 + p.get(1..)?.iter().position(|&b| b == 0)?;
        let mut at = version_end + 1;
        let id = u32::from_le_bytes(p.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        let mut nonce = p.get(at..at + 8)?.to_vec();
        at += 9;
        let low = u16::from_le_bytes(p.get(at..at + 2)?.try_into().ok()?);
        at += 2;
        let mut capabilities = u32::from(low);
        let mut plugin = String::new();
        let mut mariadb_capabilities = 0;
        if p.len() > at {
            at += 3; // charset, status
            let high = u16::from_le_bytes(p.get(at..at + 2)?.try_into().ok()?);
            capabilities |= u32::from(high) << 16;
            at += 2;
            let nonce_len = usize::from(*p.get(at)?);
            if capabilities & LONG_PASSWORD == 0 {
                let ext = p.get(at + 7..at + 11)?;
                mariadb_capabilities = u32::from_le_bytes(ext.try_into().ok()?);
            }
            at += 11;
            if capabilities & SECURE_CONNECTION != 0 {
                let part2 = nonce_len.saturating_sub(8).max(13);
                let bytes = p.get(at..(at + part2).min(p.len()))?;
                nonce.extend_from_slice(trim_nul(bytes));
                at += part2;
            }
            if capabilities & PLUGIN_AUTH != 0 && at < p.len() {
                let rest = &p[at..];
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                plugin = String::from_utf8_lossy(&rest[..end]).into_owned();
            }
        }
        Some(Handshake {
            id,
            capabilities,
            mariadb_capabilities,
            nonce,
            plugin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_split_with_nulls_and_long_lengths() {
        let mut row = vec![0xFB, 3, b'a', b'b', b'c', 0xFC, 0x2C, 0x01];
        row.extend(std::iter::repeat_n(b'x', 300));
        row.push(0);
        let mut cells = Vec::new();
        assert!(split_cells(&row, 4, &mut cells));
        assert_eq!(cells[0], None);
        assert_eq!(cells[1], Some(&b"abc"[..]));
        assert_eq!(cells[2].map(<[u8]>::len), Some(300));
        assert_eq!(cells[3], Some(&b""[..]));
        cells.clear();
        assert!(!split_cells(&row, 3, &mut cells), "a cell left over");
        cells.clear();
        assert!(!split_cells(&row[..20], 4, &mut cells), "a truncated cell");
        cells.clear();
        assert!(!split_cells(&[0xFF], 1, &mut cells), "0xFF is no length");
    }

    #[test]
    fn err_packets_keep_code_state_and_message() {
        let mut p = vec![0xFF, 0x7A, 0x04, b'#'];
        p.extend_from_slice(b"42S02Table 'x' doesn't exist");
        match server_error(&p) {
            Error::Server(e) => {
                assert_eq!(e.code, 1146);
                assert_eq!(e.state, "42S02");
                assert_eq!(e.message, "Table 'x' doesn't exist");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_flags_of_ok_and_eof() {
        assert_eq!(ok_status(&[0, 0, 0, 0x0A, 0, 0, 0]), 0x0A);
        assert_eq!(ok_status(&[0, 0xFC, 1, 1, 0, 0x08, 0]), 0x08);
        assert_eq!(eof_status(&[0xFE, 0, 0, 0x08, 0]), 0x08);
        assert!(is_eof(&[0xFE, 0, 0, 2, 0]));
        assert!(!is_eof(&[0xFE, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    }

    #[test]
    fn greeting_gives_id_nonce_and_plugin() {
        let mut p = vec![10];
        p.extend_from_slice(b"10.11.6-MariaDB\0");
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"12345678\0");
        p.extend_from_slice(&0xF7FEu16.to_le_bytes());
        p.extend_from_slice(&[45, 2, 0]);
        p.extend_from_slice(&0x81BFu16.to_le_bytes());
        p.push(21);
        // Reserved: 6 bytes, then MariaDB's extended capabilities (a 10.11 server's).
        p.extend_from_slice(&[0; 6]);
        p.extend_from_slice(&0x1Du32.to_le_bytes());
        p.extend_from_slice(b"abcdefghijkl\0");
        p.extend_from_slice(b"mysql_native_password\0");
        let hs = Handshake::parse(&p).unwrap();
        assert_eq!(hs.id, 7);
        assert_eq!(hs.nonce, b"12345678abcdefghijkl");
        assert_eq!(hs.plugin, NATIVE);
        assert_ne!(hs.capabilities & PLUGIN_AUTH, 0);
        assert_eq!(hs.mariadb_capabilities, 0x1D);
        assert!(Handshake::parse(&p[..10]).is_none());
        // MySQL sets CLIENT_MYSQL (bit 0): the reserved bytes mean nothing.
        p[1 + 16 + 4 + 9] |= 1;
        assert_eq!(Handshake::parse(&p).unwrap().mariadb_capabilities, 0);
    }
}
