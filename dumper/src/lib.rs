//! sluice-dumper: the parallel, consistent, chunked dump of a MySQL or MariaDB server.
//!
//! It owns the snapshot coordinator (N connections on one consistent point and the binlog
//! position of that point), the chunk planner (primary-key ranges), the row encoders (SQL, CSV)
//! and the compressed chunk sinks that put the dump layout into a `sluice_core::Storage`.
//! It depends on `sluice-core` only; the importer reads what it writes through the layout in
//! `sluice_core::layout`, never through this crate.
//!
//! Flow: [`Dumper::build`] connects, lists the tables the filter selects, checks privileges and
//! the output folder; [`Dumper::run`] takes the snapshot, writes schemas, plans chunks, lets N
//! workers stream chunks to storage, and writes `metadata.json` last. `resume.rs` keeps the
//! progress file that lets a killed dump continue with the chunks it lacks.

mod charset;
mod chunk;
mod config;
mod encode;
mod error;
mod objects;
mod observer;
mod parquet;
mod privileges;
mod resume;
mod run;
mod sink;
mod snapshot;
pub mod xa;

pub use config::{Consistency, DumpConfig};
pub use error::DumpError;
pub use observer::{DumpObserver, LogObserver};
pub use run::{DumpSummary, Dumper};
