//! One chunk: its rows read in key order inside the worker's snapshot and encoded into its
//! file, or into several files when `--file-size` bounds them.
//!
//! Splitting. A file is closed at a row boundary once the encoded bytes written to it (before
//! compression) reach the size; each file is complete on its own (SQL files repeat the session
//! header, CSV files the header line, Parquet files their footer). The files of a chunk are
//! numbered `chunk × 10,000 + part` ([`file_number`]), so names stay Dumpling's
//! `{db}.{table}.{n}.{ext}` and sort in key order.
//!
//! A closed part is committed (synced and renamed into place) right after the batch of rows
//! that closed it, so that a chunk of any size holds one open file and one buffer, never one
//! per part. A part is whole once visible, but the chunk is only recorded done (dump-progress,
//! then metadata.json) after its last file: a dump killed mid-chunk may leave committed parts,
//! which the chunk's redo overwrites and the resume deletes where the redo has fewer parts
//! (see `run.rs`), and a failed chunk deletes them itself.

use std::borrow::Cow;

use sluice_core::layout::{self, Compression, DataFormat, RowFingerprint};
use sluice_core::{BatchError, Chunk, RawConn, Storage, TableInfo, quote_ident};

use crate::DumpError;
use crate::charset::{ResultCharset, latin1_to_utf8};
use crate::config::DumpConfig;
use crate::encode::{CsvEncoder, SqlEncoder};
use crate::parquet::{ParquetEncoder, ROW_GROUP_BYTES};
use crate::resume::{ChunkDone, PartDone};
use crate::sink::{ChunkSink, FLUSH_BYTES};

/// Files one chunk may be split into; past this the last file takes the rest.
pub const MAX_PARTS: u32 = 10_000;

/// The number in a data file's name: the chunk index, or with `--file-size`
/// `chunk × 10,000 + part`.
pub fn file_number(chunk: u32, part: u32, split: bool) -> u64 {
    if split {
        u64::from(chunk) * u64::from(MAX_PARTS) + u64::from(part)
    } else {
        u64::from(chunk)
    }
}

/// The name of a table's data file number `n` in this dump's format.
pub fn data_file_name(config: &DumpConfig, table: &TableInfo, n: u64) -> String {
    layout::chunk_file(
        &table.name.database,
        &table.name.table,
        n,
        config.format,
        file_compression(config),
    )
}

/// Parquet compresses its pages itself; its files carry no compression suffix.
fn file_compression(config: &DumpConfig) -> Compression {
    if config.format == DataFormat::Parquet {
        Compression::None
    } else {
        config.compression
    }
}

enum RowEncoder {
    Sql(SqlEncoder),
    Csv(CsvEncoder),
    Parquet(Box<ParquetEncoder>),
}

/// A chunk's file being written: where its bytes go and what it holds so far.
struct OpenFile {
    name: String,
    sink: Option<ChunkSink>,
    /// Encoded bytes handed to the sink (before compression).
    written: u64,
    fingerprint: RowFingerprint,
}

/// A chunk's file fully encoded, waiting to be committed with the rest of its bytes.
pub struct PendingFile {
    pub sink: ChunkSink,
    pub rest: Vec<u8>,
    /// Which of the chunk's files it is: 0 the chunk's own, `i` its `parts[i - 1]`.
    pub part: usize,
}

struct ChunkWriter<'a> {
    storage: &'a Storage,
    config: &'a DumpConfig,
    table: &'a TableInfo,
    chunk: &'a Chunk,
    compression: Compression,
    encoder: RowEncoder,
    buf: Vec<u8>,
    file: OpenFile,
    part: u32,
    /// Parts closed by the current batch of rows, committed after it.
    closing: Vec<(PartDone, PendingFile)>,
    /// Parts committed, in order.
    committed: Vec<PartDone>,
}

impl<'a> ChunkWriter<'a> {
    fn new(
        storage: &'a Storage,
        config: &'a DumpConfig,
        table: &'a TableInfo,
        chunk: &'a Chunk,
    ) -> Result<ChunkWriter<'a>, DumpError> {
        let compression = file_compression(config);
        let mut w = ChunkWriter {
            storage,
            config,
            table,
            chunk,
            compression,
            encoder: new_encoder(config, table)?,
            buf: Vec::with_capacity(FLUSH_BYTES + (64 << 10)),
            file: OpenFile {
                name: String::new(),
                sink: None,
                written: 0,
                fingerprint: RowFingerprint::default(),
            },
            part: 0,
            closing: Vec::new(),
            committed: Vec::new(),
        };
        w.file.name = w.file_name(0);
        w.header();
        Ok(w)
    }

    fn file_name(&self, part: u32) -> String {
        let n = file_number(self.chunk.index, part, self.config.file_size.is_some());
        data_file_name(self.config, self.table, n)
    }

    /// What every file starts with, so that each loads on its own.
    fn header(&mut self) {
        match &self.encoder {
            RowEncoder::Sql(e) => e.file_header(&mut self.buf),
            RowEncoder::Csv(e) => e.file_header(&mut self.buf, &self.table.column_names()),
            RowEncoder::Parquet(_) => {}
        }
    }

    /// Encodes one row (its cells as the server's text, `None` for NULL). Synchronous, so
    /// that a whole receive buffer of rows is encoded without an `await`;
    /// [`ChunkWriter::flush_if_full`] then hands the bytes on.
    fn row(&mut self, cells: &[Option<&[u8]>]) -> Result<(), DumpError> {
        self.file.fingerprint.add_row(cells.iter().copied());
        match &mut self.encoder {
            RowEncoder::Sql(e) => e.row(&mut self.buf, cells),
            RowEncoder::Csv(e) => e.row(&mut self.buf, cells),
            RowEncoder::Parquet(e) => {
                e.row(cells)?;
                e.drain_into(&mut self.buf);
            }
        }
        if let Some(max) = self.config.file_size
            && self.file.written + self.buf.len() as u64 >= max
            && self.part + 1 < MAX_PARTS
        {
            self.close_part()?;
        }
        Ok(())
    }

    /// After a batch of rows: hands a full buffer on and commits the parts the batch closed.
    async fn flush_if_full(&mut self) -> Result<(), DumpError> {
        if self.buf.len() >= FLUSH_BYTES {
            self.flush().await?;
        }
        let mut closing = std::mem::take(&mut self.closing).into_iter();
        while let Some((mut done, pending)) = closing.next() {
            match pending.sink.finish(pending.rest).await {
                Ok(bytes) => {
                    done.bytes = bytes;
                    self.committed.push(done);
                }
                Err(e) => {
                    // `abort` then deletes the committed ones; these never become visible.
                    for (_, rest) in closing {
                        rest.sink.abort().await;
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), DumpError> {
        let sink = match &mut self.file.sink {
            Some(s) => s,
            None => self.file.sink.insert(ChunkSink::new(
                self.storage,
                &self.file.name,
                self.compression,
            )?),
        };
        self.file.written += self.buf.len() as u64;
        sink.write(&mut self.buf).await?;
        Ok(())
    }

    /// Ends the encoder's output for the current file into the buffer, ready for the next.
    fn end_encoding(&mut self) -> Result<(), DumpError> {
        match &mut self.encoder {
            RowEncoder::Sql(e) => e.end_statement(&mut self.buf),
            RowEncoder::Parquet(e) => {
                let e = std::mem::replace(
                    e,
                    Box::new(ParquetEncoder::new(
                        self.table,
                        self.config.compression,
                        row_group_bytes(self.config),
                    )?),
                );
                e.finish_into(&mut self.buf)?;
            }
            RowEncoder::Csv(_) => {}
        }
        Ok(())
    }

    /// Closes the current file (kept uncommitted) and opens the next part.
    fn close_part(&mut self) -> Result<(), DumpError> {
        self.end_encoding()?;
        self.part += 1;
        let next = OpenFile {
            name: self.file_name(self.part),
            sink: None,
            written: 0,
            fingerprint: RowFingerprint::default(),
        };
        let file = std::mem::replace(&mut self.file, next);
        let rest = std::mem::replace(&mut self.buf, Vec::with_capacity(FLUSH_BYTES + (64 << 10)));
        let sink = match file.sink {
            Some(s) => s,
            None => ChunkSink::new(self.storage, &file.name, self.compression)?,
        };
        let done = PartDone {
            file: file.name,
            rows: file.fingerprint.rows(),
            bytes: 0,
            fingerprint: file.fingerprint.hex(),
        };
        let part = self.committed.len() + self.closing.len();
        self.closing.push((done, PendingFile { sink, rest, part }));
        self.header();
        Ok(())
    }

    /// Gives up on the chunk: nothing of it stays visible.
    async fn abort(mut self) {
        if let Some(s) = self.file.sink.take() {
            s.abort().await;
        }
        for (_, pending) in self.closing {
            pending.sink.abort().await;
        }
        for part in &self.committed {
            if let Err(e) = self.storage.delete(&part.file).await {
                tracing::warn!(file = %part.file, error = %e, "cannot delete a part of a failed chunk; a resumed dump deletes it");
            }
        }
    }

    /// The chunk's outcome and its files to commit, in order (none for an empty chunk).
    async fn finish(mut self) -> Result<(ChunkDone, Vec<PendingFile>), DumpError> {
        let range = self
            .chunk
            .predicate
            .clone()
            .unwrap_or_else(|| "all rows".to_owned());
        let mut done = ChunkDone {
            table: self.chunk.table,
            index: self.chunk.index,
            file: None,
            range,
            rows: 0,
            bytes: 0,
            fingerprint: RowFingerprint::default().hex(),
            snapshot: 0,
            parts: Vec::new(),
        };
        let last_is_empty = self.file.fingerprint.rows() == 0;
        if last_is_empty && self.closing.is_empty() && self.committed.is_empty() {
            if let Some(s) = self.file.sink.take() {
                s.abort().await;
            }
            return Ok((done, Vec::new()));
        }
        let mut files = Vec::new();
        let mut parts = std::mem::take(&mut self.committed);
        for (part, pending) in std::mem::take(&mut self.closing) {
            parts.push(part);
            files.push(pending);
        }
        if !last_is_empty {
            match self.encoder {
                RowEncoder::Sql(ref mut e) => e.end_statement(&mut self.buf),
                RowEncoder::Parquet(e) => e.finish_into(&mut self.buf)?,
                RowEncoder::Csv(_) => {}
            }
            let sink = match self.file.sink.take() {
                Some(s) => s,
                None => ChunkSink::new(self.storage, &self.file.name, self.compression)?,
            };
            parts.push(PartDone {
                file: std::mem::take(&mut self.file.name),
                rows: self.file.fingerprint.rows(),
                bytes: 0,
                fingerprint: self.file.fingerprint.hex(),
            });
            files.push(PendingFile {
                sink,
                rest: std::mem::take(&mut self.buf),
                part: parts.len() - 1,
            });
        } else if let Some(s) = self.file.sink.take() {
            // Never opened without rows; nothing of it may become visible.
            s.abort().await;
        }
        let first = parts.remove(0);
        done.file = Some(first.file);
        done.rows = first.rows;
        done.bytes = first.bytes;
        done.fingerprint = first.fingerprint;
        done.parts = parts;
        Ok((done, files))
    }
}

/// Row groups of half the file size, so that a split Parquet file ends near it.
fn row_group_bytes(config: &DumpConfig) -> usize {
    config.file_size.map_or(ROW_GROUP_BYTES, |size| {
        usize::try_from(size / 2).unwrap_or(ROW_GROUP_BYTES)
    })
}

fn new_encoder(config: &DumpConfig, table: &TableInfo) -> Result<RowEncoder, DumpError> {
    let kinds = table.columns.iter().map(|c| c.kind).collect::<Vec<_>>();
    Ok(match config.format {
        DataFormat::Csv => RowEncoder::Csv(CsvEncoder::new(config.csv.clone(), kinds)),
        DataFormat::Parquet => RowEncoder::Parquet(Box::new(ParquetEncoder::new(
            table,
            config.compression,
            row_group_bytes(config),
        )?)),
        DataFormat::Sql => RowEncoder::Sql(SqlEncoder::new(
            &table.name.table,
            &table.column_names(),
            kinds,
            config.statement_bytes,
        )),
    })
}

/// Reads `chunk` and encodes it. Returns its outcome (`bytes` still 0) and its files, which
/// the caller commits in order (`ChunkSink::finish` with the rest of the bytes).
pub async fn dump_chunk(
    conn: &mut RawConn,
    results: &mut &'static str,
    storage: &Storage,
    config: &DumpConfig,
    table: &TableInfo,
    chunk: &Chunk,
) -> Result<(ChunkDone, Vec<PendingFile>), DumpError> {
    let endpoint = &config.source;
    let mut sql = format!("SELECT {} FROM {}", table.select_list(), table.name);
    if let Some(p) = &chunk.predicate {
        sql.push_str(&format!(" WHERE {p}"));
    }
    if !table.primary_key.is_empty() {
        let keys: Vec<String> = table
            .key_columns()
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
    }
    let read_err = |e| {
        DumpError::from(endpoint.error(
            format!("read {} chunk {}", table.name.plain(), chunk.index),
            e,
        ))
    };
    // The session's `character_set_results` (`results`) is set only when the table needs
    // another one.
    let charset = ResultCharset::of(table);
    if *results != charset.name() {
        conn.query_drop(&format!("SET character_set_results = {}", charset.name()))
            .await
            .map_err(read_err)?;
        *results = charset.name();
    }
    let latin1 = charset.latin1_columns();
    let mut writer = ChunkWriter::new(storage, config, table, chunk)?;
    let outcome: Result<(), DumpError> = async {
        let mut rows = conn.query_stream(&sql).await.map_err(read_err)?;
        loop {
            let more = rows
                .next_batch(|cells| {
                    if latin1
                        .iter()
                        .all(|&i| cells[i].is_none_or(<[u8]>::is_ascii))
                    {
                        return writer.row(cells);
                    }
                    let converted: Vec<Option<Cow<'_, [u8]>>> = cells
                        .iter()
                        .enumerate()
                        .map(|(i, c)| match c {
                            Some(v) if latin1.contains(&i) => Some(latin1_to_utf8(v)),
                            Some(v) => Some(Cow::Borrowed(*v)),
                            None => None,
                        })
                        .collect();
                    let cells: Vec<Option<&[u8]>> =
                        converted.iter().map(|c| c.as_deref()).collect();
                    writer.row(&cells)
                })
                .await
                .map_err(|e| match e {
                    BatchError::Wire(e) => read_err(e),
                    BatchError::Row(e) => e,
                })?;
            writer.flush_if_full().await?;
            if !more {
                return Ok(());
            }
        }
    }
    .await;
    if let Err(e) = outcome {
        writer.abort().await;
        return Err(e);
    }
    writer.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_number_files_in_key_order() {
        assert_eq!(file_number(7, 0, false), 7);
        assert_eq!(file_number(7, 0, true), 70_000);
        assert_eq!(file_number(7, 3, true), 70_003);
        assert!(file_number(7, MAX_PARTS - 1, true) < file_number(8, 0, true));
    }
}
