//! The relay log: the source's binlog events kept on local disk, so that a stream can go on
//! after the source purged them (managed servers purge quickly while a long import runs) and
//! several tasks on one source pull its binlog once.
//!
//! Layout of `--relay-dir DIR` (one folder per source, named by its address):
//!
//! ```text
//! DIR/<host>_<port>/
//!   index.json          segments in order: seq, upstream file, first offset, end offset, bytes
//!   segment.000001      records of one upstream binlog file (or part of one)
//!   puller.lock         held (flock) by the one process that pulls from the source
//!   tasks/<task>.json   the position each task's checkpoint still needs (purge never passes it)
//! ```
//!
//! A segment starts with a header (`SLRELAY1`, the upstream file name, its first offset) and
//! holds records `[u32 length][u32 CRC32 of the rest][u64 offset before][u64 offset after]
//! [u8 flags][event bytes]`, little-endian. The event bytes are exactly what the source sent
//! (their own CRC32 is verified before they are written, and again by the reader); offsets
//! are the 64-bit upstream positions, so a task resumes anywhere without the source.
//!
//! Durability: records are written through a buffer, flushed and `fdatasync`ed once a second
//! and when a segment closes; `index.json` is replaced atomically (temporary file, fsync,
//! rename). A crash can therefore lose the last second of pulled events (never an event a task
//! has applied from disk after a sync) and can leave a torn record at the end of the last
//! segment; the puller truncates such a tail on start ([`segment::repair`]) and pulls again
//! from the last whole record. Readers never repair; they wait at an incomplete tail.
//!
//! Purge: closed segments older than the retention age, or beyond the size budget (oldest
//! first), are deleted, but never one that ends after the position any task file names.
//! Delete `tasks/<task>.json` to release a task that will not run again.

mod dir;
mod follow;
mod puller;
mod segment;

pub use dir::{Index, RelayDir, SegmentInfo, TaskMark};
pub use follow::Follower;
pub use puller::{Puller, PullerConfig};
pub use segment::{FLAG_COPIED_FDE, Record, SegmentReader};
