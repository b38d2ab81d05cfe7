//! One source's relay folder: its index, segment paths, the puller's lock and the task marks.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sluice_core::{BinlogPosition, Endpoint};

use crate::StreamError;

/// One segment as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub seq: u64,
    /// The upstream binlog file the segment's events come from.
    pub file: String,
    /// The upstream offset of its first record.
    pub first_offset: u64,
    /// The upstream offset after its last record (as of the last index write).
    pub end_offset: u64,
    pub bytes: u64,
    /// Unix seconds when it was opened.
    pub created: u64,
    /// No record will be added: a newer segment follows.
    pub closed: bool,
}

impl SegmentInfo {
    fn end(&self) -> BinlogPosition {
        BinlogPosition::new(self.file.clone(), self.end_offset)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Index {
    /// The source address the relay was pulled from (a relay folder serves one source).
    pub source: String,
    pub segments: Vec<SegmentInfo>,
}

impl Index {
    /// The segment holding `position`: the last one of that upstream file starting at or
    /// before it. `None` when the relay does not reach back that far.
    pub fn find(&self, position: &BinlogPosition) -> Option<&SegmentInfo> {
        self.segments
            .iter()
            .rev()
            .find(|s| s.file == position.file && s.first_offset <= position.offset)
    }

    /// Where the relay's oldest record stands.
    pub fn start(&self) -> Option<BinlogPosition> {
        self.segments
            .first()
            .map(|s| BinlogPosition::new(s.file.clone(), s.first_offset))
    }

    /// Whether the relay has every event from `position` on (or will, as the puller goes on):
    /// a segment holds it, or it lies after the relay's end in the same or a later file.
    pub fn covers(&self, position: &BinlogPosition) -> bool {
        if self.find(position).is_some() {
            return true;
        }
        match self.segments.last() {
            Some(last) => *position >= last.end(),
            None => false,
        }
    }
}

/// What a task's checkpoint still needs, written by the task, read by the puller's purge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskMark {
    pub task: String,
    pub file: String,
    pub offset: u64,
    pub updated: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The relay folder of one source.
#[derive(Debug, Clone)]
pub struct RelayDir {
    root: PathBuf,
    source: String,
}

fn io_error(path: &Path, action: &str, e: std::io::Error) -> StreamError {
    StreamError::Config(format!("relay log {}: {action}: {e}", path.display()))
}

impl RelayDir {
    /// The error for a position the relay does not reach back to.
    pub fn lacks(&self, index: &Index, position: &BinlogPosition) -> StreamError {
        StreamError::Config(format!(
            "the relay log at {} does not hold {position} (it starts at {}); stream without \
             --relay-dir while the source still has that binlog, or start the relay there",
            self.root.display(),
            index
                .start()
                .map_or_else(|| "nothing yet".to_owned(), |s| s.to_string())
        ))
    }

    /// `dir/<host>_<port>`, created if missing.
    pub fn for_source(dir: &Path, source: &Endpoint) -> Result<RelayDir, StreamError> {
        let name: String = source
            .address()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let root = dir.join(name);
        std::fs::create_dir_all(root.join("tasks"))
            .map_err(|e| io_error(&root, "create the folder", e))?;
        Ok(RelayDir {
            root,
            source: source.address(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn segment_path(&self, seq: u64) -> PathBuf {
        self.root.join(format!("segment.{seq:06}"))
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// The index; empty when the relay has never been written.
    pub fn load_index(&self) -> Result<Index, StreamError> {
        let path = self.index_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                StreamError::Config(format!("relay log {}: unreadable: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index {
                source: self.source.clone(),
                segments: Vec::new(),
            }),
            Err(e) => Err(io_error(&path, "read", e)),
        }
    }

    /// Replaces the index atomically: a crash leaves the old or the new one, never half.
    pub fn save_index(&self, index: &Index) -> Result<(), StreamError> {
        let path = self.index_path();
        let tmp = self.root.join("index.json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(index).unwrap_or_default())?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)?;
            File::open(&self.root)?.sync_all()
        };
        write().map_err(|e| io_error(&path, "write", e))
    }

    /// The puller's lock: `Some` for the one process that may pull; held until dropped.
    pub fn try_lock_puller(&self) -> Result<Option<File>, StreamError> {
        let path = self.root.join("puller.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_error(&path, "open", e))?;
        match f.try_lock() {
            Ok(()) => Ok(Some(f)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io_error(&path, "lock", e)),
        }
    }

    /// Records the position `task` still needs; written at most once a second.
    pub fn mark_task(
        &self,
        task: &str,
        position: &BinlogPosition,
        last: &mut Option<Instant>,
    ) -> Result<(), StreamError> {
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let name: String = task
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.root.join("tasks").join(format!("{name}.json"));
        let tmp = self.root.join("tasks").join(format!(".{name}.json.tmp"));
        let mark = TaskMark {
            task: task.to_owned(),
            file: position.file.clone(),
            offset: position.offset,
            updated: now_secs(),
        };
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, serde_json::to_vec(&mark).unwrap_or_default())?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| io_error(&path, "write", e))
    }

    /// The oldest position any task still needs.
    pub fn needed(&self) -> Option<BinlogPosition> {
        let entries = std::fs::read_dir(self.root.join("tasks")).ok()?;
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<TaskMark>(&b).ok())
            .map(|m| BinlogPosition::new(m.file, m.offset))
            .min()
    }

    pub(crate) fn now() -> u64 {
        now_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u64, file: &str, first: u64, end: u64) -> SegmentInfo {
        SegmentInfo {
            seq,
            file: file.into(),
            first_offset: first,
            end_offset: end,
            bytes: 0,
            created: 0,
            closed: false,
        }
    }

    #[test]
    fn finds_the_segment_of_a_position() {
        let index = Index {
            source: "h:1".into(),
            segments: vec![
                seg(1, "b.000001", 4, 500),
                seg(2, "b.000001", 500, 900),
                seg(3, "b.000002", 4, 100),
            ],
        };
        let at = |f: &str, o: u64| BinlogPosition::new(f, o);
        assert_eq!(index.find(&at("b.000001", 4)).map(|s| s.seq), Some(1));
        assert_eq!(index.find(&at("b.000001", 700)).map(|s| s.seq), Some(2));
        assert_eq!(index.find(&at("b.000002", 50)).map(|s| s.seq), Some(3));
        assert_eq!(index.find(&at("b.000000", 50)), None);
        assert!(index.covers(&at("b.000002", 100)));
        assert!(index.covers(&at("b.000003", 4)));
        assert!(!index.covers(&at("a.000009", 4)));
    }
}
