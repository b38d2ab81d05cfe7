//! The in-order load: rows that already arrive in primary-key order skip the sort.
//!
//! Sluice, Dumpling and mydumper write each table's chunks in key order (one `ORDER BY` or
//! clustered-index scan per chunk, chunks numbered by key range), so the sort of the Lightning
//! pipeline would only confirm an order the files already have. Here the files are read in
//! their order and each row's memcomparable key is compared with the one before:
//! * a greater key: the row before it is final and goes to the loaders;
//! * an equal key: a duplicate, resolved by `--on-duplicate` exactly as after the sort (equal
//!   keys meet in file and line order either way, so "first" and "last" mean the same);
//! * a lower key: the input is not in order. The producer stops and says where; the caller
//!   empties the table and imports it through the sort instead.
//!
//! A keyless table's sort key is its generated row id (file, then row within the file), which
//! file order always satisfies. Memory stays at a few batches however big the table is.

use std::cmp::Ordering;

use bytes::Bytes;
use sluice_core::layout::{CsvDialect, RowFingerprint};
use tokio::sync::mpsc;

use crate::ImportError;
use crate::config::OnDuplicate;
use crate::load::BatchSink;
use crate::load::LoadSpec;
use crate::plan::{Canon, MappingCache, RowPlan};
use crate::read::read_file;
use crate::sent::SentFingerprint;
use crate::source::DataFile;
use crate::table_load::Produced;

/// What the in-order producer reads and how: a table's files, in their order.
pub(crate) struct InOrder<'a> {
    pub(crate) files: &'a [DataFile],
    pub(crate) dialect: &'a CsvDialect,
    pub(crate) plan: &'a RowPlan,
    pub(crate) policy: OnDuplicate,
    /// The table's name, for messages.
    pub(crate) table: &'a str,
    /// Where the files' buffers go back once read.
    pub(crate) storage: &'a sluice_core::Storage,
}

/// The rows of `what.files`, in file order, as LOAD DATA batches; `data` delivers each file's
/// bytes in that same order.
pub(crate) fn produce_in_order(
    what: InOrder<'_>,
    mut data: mpsc::Receiver<Result<Bytes, ImportError>>,
    spec: &LoadSpec,
    sink: BatchSink,
) -> Result<Produced, ImportError> {
    let InOrder {
        files: table_files,
        dialect,
        plan,
        policy,
        table,
        storage,
    } = what;
    let mut batch = Batch {
        buf: sink.buffer(),
        pending_at: None,
        rows: 0,
        sink,
        sent: SentFingerprint::new(plan),
    };
    let mut out = Produced::default();
    let mut key = Vec::with_capacity(64);
    let mut pending_key = Vec::with_capacity(64);
    let mut pending_origin = (0usize, 0u64);
    let mut examples = Vec::new();
    let mut canon = Canon::default();
    for (index, file) in table_files.iter().enumerate() {
        let Some(bytes) = data.blocking_recv() else {
            return Err(ImportError::Worker("the file reader stopped".into()));
        };
        let bytes = bytes?;
        let buffer = bytes.clone();
        let mut mapping = MappingCache::default();
        let mut ordinal = 0u64;
        let result = read_file(bytes, file, dialect, |columns, row, line| {
            if out.out_of_order.is_some() || examples.len() >= 5 {
                return Ok(());
            }
            let at = || format!("{}:{line}", file.name);
            let map = mapping.get(plan, columns, &at)?;
            ordinal += 1;
            plan.canonical_into(row, map, &at, &mut canon)?;
            canon.with_cells(|canon| {
                key.clear();
                plan.key_into(&mut key, canon, index as u32, ordinal);
                let order = match batch.pending_at {
                    None => Ordering::Greater,
                    Some(_) => key.as_slice().cmp(&pending_key),
                };
                match order {
                    Ordering::Less => {
                        out.out_of_order = Some(at());
                        return Ok(());
                    }
                    Ordering::Equal => {
                        out.dropped += 1;
                        match policy {
                            OnDuplicate::Error => examples.push(format!(
                                "{} at {}:{} and {}",
                                plan.key_text(canon),
                                table_files[pending_origin.0].name,
                                pending_origin.1,
                                at()
                            )),
                            OnDuplicate::Replace => {
                                batch.replace_pending(spec, canon)?;
                                pending_origin = (index, line);
                            }
                            OnDuplicate::Ignore => {}
                        }
                        return Ok(());
                    }
                    Ordering::Greater => {}
                }
                if batch.pending_at.is_some() {
                    out.rows += 1;
                }
                batch.push_pending(spec, canon)?;
                std::mem::swap(&mut key, &mut pending_key);
                pending_origin = (index, line);
                Ok(())
            })
        });
        result?;
        storage.recycle(buffer);
        if out.out_of_order.is_some() {
            return Ok(out);
        }
        if examples.len() >= 5 {
            break;
        }
    }
    if !examples.is_empty() {
        return Err(ImportError::Duplicates {
            table: table.to_owned(),
            examples,
        });
    }
    if batch.pending_at.is_some() {
        out.rows += 1;
    }
    out.sent = batch.finish()?;
    Ok(out)
}

/// The LOAD DATA stream being filled. The last row added stays pending at its tail until the
/// next key shows it is not a duplicate; everything before it is final.
struct Batch {
    buf: Vec<u8>,
    /// Where the pending row starts in `buf`.
    pending_at: Option<usize>,
    /// Final rows in `buf`.
    rows: u64,
    sink: BatchSink,
    /// The fingerprint of the rows encoded (see `sent.rs`).
    sent: Option<SentFingerprint>,
}

impl Batch {
    fn encode(&mut self, spec: &LoadSpec, cells: &[Option<&[u8]>]) -> Result<(), ImportError> {
        let start = self.buf.len();
        spec.encode_row(&mut self.buf, cells);
        spec.check_row_size(self.buf.len() - start)?;
        if let Some(s) = &mut self.sent {
            s.add(cells);
        }
        Ok(())
    }

    /// Makes the pending row final and adds `canon` as the new pending row; sends the final
    /// rows once they fill a batch.
    fn push_pending(
        &mut self,
        spec: &LoadSpec,
        canon: &[Option<&[u8]>],
    ) -> Result<(), ImportError> {
        if self.pending_at.is_some() {
            self.rows += 1;
            if self.buf.len() >= spec.batch_bytes {
                let fresh = self.sink.buffer();
                let full = std::mem::replace(&mut self.buf, fresh);
                self.send(full)?;
            }
        }
        self.pending_at = Some(self.buf.len());
        self.encode(spec, canon)
    }

    /// A later duplicate takes the pending row's place (`--on-duplicate replace`).
    fn replace_pending(
        &mut self,
        spec: &LoadSpec,
        canon: &[Option<&[u8]>],
    ) -> Result<(), ImportError> {
        if let Some(at) = self.pending_at {
            self.buf.truncate(at);
            self.encode(spec, canon)?;
        }
        Ok(())
    }

    fn send(&mut self, data: Vec<u8>) -> Result<(), ImportError> {
        let rows = std::mem::take(&mut self.rows);
        self.sink.send(data, rows)
    }

    /// Sends the rest, the pending row included; returns the fingerprint of all rows encoded.
    fn finish(mut self) -> Result<Option<RowFingerprint>, ImportError> {
        if self.pending_at.is_some() {
            self.rows += 1;
        }
        if self.rows > 0 {
            let data = std::mem::take(&mut self.buf);
            self.send(data)?;
        }
        Ok(self.sent.map(SentFingerprint::finish))
    }
}
