//! `LOAD DATA LOCAL INFILE` over a [`RawConn`]: the importer's loaders stream each batch
//! straight from its buffer to the socket.
//!
//! Why: `mysql_async` copies every piece of a LOCAL INFILE stream twice before the kernel
//! copies it once more: into a pooled buffer, then into its codec's frame buffer. Measured with
//! `perf` on the sysbench import (session 11), those copies and the page faults of the buffers
//! they grow were about a tenth of the client's CPU.
//!
//! Protocol: the server answers the statement with `0xFB` and the file name it was given; the
//! client sends the data in packets and an empty packet to end it; the server then answers OK
//! (affected rows and warnings) or ERR. The connection asks for `CLIENT_LOCAL_FILES` at the
//! handshake; a query other than [`RawConn::load_local`] that draws an `0xFB` fails.

use std::io::{self, IoSlice};

use mysql_async::{Error, IoError};
use tokio::io::AsyncWriteExt;

use super::{MAX_FRAME, RawConn, io_error, lenenc, malformed, server_error};

/// The data goes to the server in packets of this size: well under any `max_allowed_packet`
/// (the server refuses a bigger packet), and big enough that the per-packet cost is nothing.
const PIECE: usize = 1 << 20;

/// What the server did with a LOCAL INFILE stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalLoad {
    /// Rows inserted (or, under REPLACE, inserted plus deleted).
    pub affected_rows: u64,
    /// Warnings raised: a value truncated, converted or a row skipped under IGNORE.
    pub warnings: u16,
}

impl RawConn {
    /// Runs `sql` (a `LOAD DATA LOCAL INFILE` statement) and streams `data` as its file.
    pub async fn load_local(&mut self, sql: &str, data: &[u8]) -> Result<LocalLoad, Error> {
        self.send_query(sql).await?;
        let asked = self.read_packet().await?;
        match asked.first() {
            Some(0xFB) => {}
            Some(0xFF) => return Err(server_error(&asked)),
            _ => {
                return Err(malformed(
                    "answer to LOAD DATA LOCAL INFILE (no request for the data)",
                ));
            }
        }
        for piece in data.chunks(PIECE) {
            self.write_frame(piece).await?;
        }
        self.write_frame(&[]).await?;
        let answer = self.read_packet().await?;
        match answer.first() {
            Some(0x00) => ok_counts(&answer).ok_or_else(|| malformed("OK packet")),
            Some(0xFF) => Err(server_error(&answer)),
            _ => Err(malformed("answer to a LOCAL INFILE stream")),
        }
    }

    /// One frame: its header and `payload` in vectored writes, without copying the payload.
    async fn write_frame(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.write_frame_parts(&[], payload).await
    }

    /// One frame whose payload is `first` then `second`, written without copying either.
    pub(super) async fn write_frame_parts(
        &mut self,
        first: &[u8],
        second: &[u8],
    ) -> Result<(), Error> {
        let len = first.len() + second.len();
        debug_assert!(len <= MAX_FRAME);
        let mut head = [0u8; 4];
        head[..3].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
        head[3] = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let mut parts = [
            IoSlice::new(&head),
            IoSlice::new(first),
            IoSlice::new(second),
        ];
        let mut left: &mut [IoSlice<'_>] = &mut parts;
        let mut unsent = 4 + len;
        while unsent > 0 {
            let n = self
                .stream
                .write_vectored(left)
                .await
                .map_err(|e| Error::Io(IoError::Io(e)))?;
            if n == 0 {
                return Err(io_error(
                    io::ErrorKind::WriteZero,
                    "the server stopped reading",
                ));
            }
            unsent -= n;
            IoSlice::advance_slices(&mut left, n);
        }
        Ok(())
    }
}

/// Affected rows and warnings of an OK packet: `00`, affected rows, last insert id, status (2),
/// warnings (2).
pub(super) fn ok_counts(p: &[u8]) -> Option<LocalLoad> {
    let (affected_rows, a) = lenenc(p, 1)?;
    let (_, b) = lenenc(p, 1 + a)?;
    let w = p.get(3 + a + b..5 + a + b)?;
    Some(LocalLoad {
        affected_rows,
        warnings: u16::from_le_bytes([w[0], w[1]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_packets_give_affected_rows_and_warnings() {
        assert_eq!(
            ok_counts(&[0, 5, 0, 2, 0, 3, 0]),
            Some(LocalLoad {
                affected_rows: 5,
                warnings: 3
            })
        );
        // 250,000 rows: a 3-byte length-encoded integer.
        assert_eq!(
            ok_counts(&[0, 0xFD, 0x90, 0xD0, 0x03, 0, 2, 0, 0, 0]),
            Some(LocalLoad {
                affected_rows: 250_000,
                warnings: 0
            })
        );
        assert_eq!(ok_counts(&[0, 5, 0, 2]), None);
    }
}
