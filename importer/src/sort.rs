//! The external sort: key/value pairs collect in memory, are sorted with rayon
//! (`par_sort_unstable_by`) and spilled as sorted runs to the sort folder when over the memory
//! budget, then merged k-way into one stream in key order.
//!
//! Equal keys are ordered by their origin (file, then line), so that the duplicate policy's
//! "first" and "last" mean the same on every run. A run file is a sequence of records
//! `u32 key length, key, u32 value length, value` (little-endian), written once and read once.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rayon::slice::ParallelSliceMut;

use crate::ImportError;

pub type Kv = (Vec<u8>, Vec<u8>);

/// Bytes a pair costs in memory beyond its key and value (two vectors).
const PAIR_OVERHEAD: usize = 48;

/// The origin (file, line) stored at the end of a value (see `kv.rs`).
fn origin(value: &[u8]) -> (u32, u64) {
    let n = value.len();
    if n < 12 {
        return (0, 0);
    }
    let file = u32::from_le_bytes(value[n - 12..n - 8].try_into().unwrap_or([0; 4]));
    let line = u64::from_le_bytes(value[n - 8..].try_into().unwrap_or([0; 8]));
    (file, line)
}

fn order(a: &Kv, b: &Kv) -> Ordering {
    a.0.cmp(&b.0).then_with(|| origin(&a.1).cmp(&origin(&b.1)))
}

pub struct Sorter {
    dir: tempfile::TempDir,
    budget: usize,
    batch: Vec<Kv>,
    bytes: usize,
    runs: Vec<PathBuf>,
}

fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> ImportError + 'a {
    move |source| {
        ImportError::Core(sluice_core::CoreError::Io {
            path: path.display().to_string(),
            action,
            source,
        })
    }
}

impl Sorter {
    pub fn new(sort_dir: &Path, budget: usize) -> Result<Sorter, ImportError> {
        std::fs::create_dir_all(sort_dir).map_err(io(sort_dir, "create the sort folder"))?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-sort-")
            .tempdir_in(sort_dir)
            .map_err(io(sort_dir, "create a sort folder"))?;
        Ok(Sorter {
            dir,
            budget: budget.max(1 << 20),
            batch: Vec::new(),
            bytes: 0,
            runs: Vec::new(),
        })
    }

    /// Adds pairs; spills a sorted run when the batch passes the budget.
    pub fn add(&mut self, pairs: Vec<Kv>) -> Result<(), ImportError> {
        self.bytes += pairs
            .iter()
            .map(|(k, v)| k.len() + v.len() + PAIR_OVERHEAD)
            .sum::<usize>();
        self.batch.extend(pairs);
        if self.bytes > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorted runs written so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> Result<(), ImportError> {
        let mut batch = std::mem::take(&mut self.batch);
        self.bytes = 0;
        batch.par_sort_unstable_by(order);
        let path = self.dir.path().join(format!("run-{:06}", self.runs.len()));
        let file = File::create(&path).map_err(io(&path, "create a sort run"))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        for (k, v) in &batch {
            w.write_all(&(k.len() as u32).to_le_bytes())
                .and_then(|()| w.write_all(k))
                .and_then(|()| w.write_all(&(v.len() as u32).to_le_bytes()))
                .and_then(|()| w.write_all(v))
                .map_err(io(&path, "write a sort run"))?;
        }
        w.flush().map_err(io(&path, "write a sort run"))?;
        tracing::debug!(run = %path.display(), pairs = batch.len(), "sorted run spilled");
        self.runs.push(path);
        Ok(())
    }

    /// All pairs in key order.
    pub fn finish(mut self) -> Result<Merged, ImportError> {
        let mut memory = std::mem::take(&mut self.batch);
        memory.par_sort_unstable_by(order);
        let mut sources: Vec<Source> = vec![Source::Memory(memory.into_iter())];
        for path in &self.runs {
            let file = File::open(path).map_err(io(path, "open a sort run"))?;
            sources.push(Source::Run(
                BufReader::with_capacity(1 << 20, file),
                path.clone(),
            ));
        }
        let mut merged = Merged {
            sources,
            heap: BinaryHeap::new(),
            _dir: self.dir,
        };
        for i in 0..merged.sources.len() {
            merged.refill(i)?;
        }
        Ok(merged)
    }
}

enum Source {
    Memory(std::vec::IntoIter<Kv>),
    Run(BufReader<File>, PathBuf),
}

impl Source {
    fn next(&mut self) -> Result<Option<Kv>, ImportError> {
        match self {
            Source::Memory(it) => Ok(it.next()),
            Source::Run(r, path) => {
                let mut len = [0u8; 4];
                match r.read_exact(&mut len) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(io(path, "read a sort run")(e)),
                }
                let mut key = vec![0; u32::from_le_bytes(len) as usize];
                r.read_exact(&mut key)
                    .map_err(io(path, "read a sort run"))?;
                r.read_exact(&mut len)
                    .map_err(io(path, "read a sort run"))?;
                let mut value = vec![0; u32::from_le_bytes(len) as usize];
                r.read_exact(&mut value)
                    .map_err(io(path, "read a sort run"))?;
                Ok(Some((key, value)))
            }
        }
    }
}

/// An entry of the merge heap: the smallest pair of each source.
struct Head {
    kv: Kv,
    source: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        order(&self.kv, &other.kv) == Ordering::Equal && self.source == other.source
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        order(&self.kv, &other.kv).then_with(|| self.source.cmp(&other.source))
    }
}

/// The k-way merge of the in-memory batch and every spilled run. Holds the sort folder,
/// which is removed when the merge is dropped.
pub struct Merged {
    sources: Vec<Source>,
    heap: BinaryHeap<Reverse<Head>>,
    _dir: tempfile::TempDir,
}

impl Merged {
    fn refill(&mut self, source: usize) -> Result<(), ImportError> {
        if let Some(kv) = self.sources[source].next()? {
            self.heap.push(Reverse(Head { kv, source }));
        }
        Ok(())
    }
}

impl Iterator for Merged {
    type Item = Result<Kv, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Reverse(head) = self.heap.pop()?;
        if let Err(e) = self.refill(head.source) {
            return Some(Err(e));
        }
        Some(Ok(head.kv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(file: u32, line: u64) -> Vec<u8> {
        let mut v = b"payload".to_vec();
        v.extend_from_slice(&file.to_le_bytes());
        v.extend_from_slice(&line.to_le_bytes());
        v
    }

    #[test]
    fn spilled_runs_merge_into_key_order_with_origins_breaking_ties() {
        let dir = tempfile::tempdir().unwrap();
        let mut sorter = Sorter::new(dir.path(), 1 << 20).unwrap();
        let mut expected = Vec::new();
        for round in 0..5u32 {
            let pairs: Vec<Kv> = (0..20_000u32)
                .map(|i| {
                    let k = (i.wrapping_mul(2_654_435_761) % 50_000)
                        .to_be_bytes()
                        .to_vec();
                    (k, value(round, u64::from(i)))
                })
                .collect();
            expected.extend(pairs.iter().cloned());
            sorter.add(pairs).unwrap();
        }
        assert!(sorter.runs() >= 2, "the budget should force spills");
        let merged: Vec<Kv> = sorter.finish().unwrap().map(|r| r.unwrap()).collect();
        expected.sort_by(order);
        assert_eq!(merged.len(), expected.len());
        assert!(merged == expected, "merge order differs from a full sort");
    }
}
