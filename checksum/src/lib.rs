//! sluice-checksum: chunked verification that source and target hold the same rows.
//!
//! It owns the chunk fingerprints computed server-side, the recheck that filters out
//! differences caused by in-flight replication, row-level diffs of mismatching chunks and the
//! fix SQL that repairs the target. It only ever reads the source: no checksum table, no
//! session that writes. It depends on `sluice-core` only; in online mode ([`sync`]) it
//! compares each chunk at a sync point of a running stream, which the job runner provides.
//!
//! Flow: [`Checker::build`] connects to both servers and selects the tables; [`Checker::run`]
//! plans chunks on the source (the dumper's planner), compares `COUNT(*)` and a 64-bit
//! fingerprint per chunk on both sides in parallel, rechecks mismatches after a delay, narrows
//! the chunks that still differ by bisection, diffs the small ranges left row by row, and
//! returns a [`Report`].

mod bisect;
mod config;
mod diff;
mod error;
mod fix;
mod report;
mod row_hash;
mod run;
pub mod sync;

pub use config::ChecksumConfig;
pub use error::ChecksumError;
pub use report::{Difference, DifferenceKind, Report, TableReport};
pub use run::Checker;
pub use sync::{Hold, SyncHandle, SyncPoints};
