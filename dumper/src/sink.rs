//! A chunk file on its way to storage: encoded bytes go through the compression layer into a
//! [`StorageWriter`], in pieces of bounded size, so memory does not grow with the chunk.
//! Nothing is visible in storage until [`ChunkSink::finish`].

use std::io::Write;

use sluice_core::layout::Compression;
use sluice_core::{CoreError, Storage, StorageWriter};
use tokio::io::AsyncWriteExt;

/// Encoded bytes buffered before they are compressed and handed to storage.
pub const FLUSH_BYTES: usize = 1 << 20;

enum Encoder {
    Plain(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

pub struct ChunkSink {
    encoder: Encoder,
    writer: StorageWriter,
    name: String,
    url: String,
}

impl ChunkSink {
    pub fn new(
        storage: &Storage,
        name: &str,
        compression: Compression,
    ) -> Result<ChunkSink, CoreError> {
        let io_err = |source| CoreError::Io {
            path: name.to_owned(),
            action: "start compression",
            source,
        };
        let encoder = match compression {
            Compression::None => Encoder::Plain(Vec::new()),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            )),
            Compression::Zstd => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(Vec::new(), 3).map_err(io_err)?)
            }
        };
        Ok(ChunkSink {
            encoder,
            writer: storage.writer(name),
            name: name.to_owned(),
            url: storage.url().to_owned(),
        })
    }

    fn io_error(&self, action: &'static str, source: std::io::Error) -> CoreError {
        CoreError::Io {
            path: format!("{}/{}", self.url.trim_end_matches('/'), self.name),
            action,
            source,
        }
    }

    /// Compresses `data` and sends whatever compressed output is ready to storage. `data` is
    /// cleared, keeping its capacity, so that the caller's buffer is reused for the next rows.
    pub async fn write(&mut self, data: &mut Vec<u8>) -> Result<(), CoreError> {
        let compress_err = |source| CoreError::Io {
            path: self.name.clone(),
            action: "compress",
            source,
        };
        let ready: &mut Vec<u8> = match &mut self.encoder {
            Encoder::Plain(_) => data,
            Encoder::Gzip(e) => {
                e.write_all(data).map_err(compress_err)?;
                data.clear();
                e.get_mut()
            }
            Encoder::Zstd(e) => {
                e.write_all(data).map_err(compress_err)?;
                data.clear();
                e.get_mut()
            }
        };
        if !ready.is_empty() {
            let result = self.writer.write_all(ready).await;
            ready.clear();
            if let Err(e) = result {
                return Err(CoreError::Io {
                    path: format!("{}/{}", self.url.trim_end_matches('/'), self.name),
                    action: "write",
                    source: e,
                });
            }
        }
        Ok(())
    }

    /// Writes the rest, ends compression and commits the object; returns its stored size.
    pub async fn finish(mut self, mut data: Vec<u8>) -> Result<u64, CoreError> {
        self.write(&mut data).await?;
        let tail = match std::mem::replace(&mut self.encoder, Encoder::Plain(Vec::new())) {
            Encoder::Plain(rest) => rest,
            Encoder::Gzip(e) => e
                .finish()
                .map_err(|s| self.io_error("finish compression", s))?,
            Encoder::Zstd(e) => e
                .finish()
                .map_err(|s| self.io_error("finish compression", s))?,
        };
        if !tail.is_empty() {
            let result = self.writer.write_all(&tail).await;
            result.map_err(|e| self.io_error("write", e))?;
        }
        self.writer.finish().await
    }

    /// Gives up on this file: nothing becomes visible.
    pub async fn abort(self) {
        self.writer.abort().await;
    }
}
