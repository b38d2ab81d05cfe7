//! sluice-importer: the Lightning-style bulk import.
//!
//! It owns the dump readers and parsers (Sluice, Dumpling and mydumper layouts; SQL, CSV,
//! Parquet; plain, gzip, zstd), the key/value encoding (memcomparable primary keys), the
//! parallel sorter with spill runs and k-way merge, the loaders that write in primary-key order
//! on several connections (MariaDB's bulk execution of a prepared INSERT, or `LOAD DATA LOCAL
//! INFILE`), and the checkpoints in the target's
//! meta schema. It depends on `sluice-core` only; it reads the dumper's output through
//! `sluice_core::layout`.
//!
//! Flow: [`Importer::build`] reads the layout and checks the target; [`Importer::run`] creates
//! schemas, then per table parses files in parallel into key/value pairs, sorts and merges them,
//! resolves duplicates per [`OnDuplicate`], loads, verifies against the dump's metadata and
//! checkpoints.

mod bulk;
mod cell;
mod checkpoint;
mod config;
mod defaults;
mod error;
mod import_mode;
mod insert;
mod kv;
mod load;
mod method;
mod objects;
mod observer;
mod ordered;
mod plan;
mod read;
mod run;
mod script;
mod sent;
mod sort;
mod source;
mod sql_reader;
mod table_load;
mod target;
mod views;

pub use config::{DeferIndexes, ImportConfig, LoadMethod, OnDuplicate, parse_size};
pub use error::ImportError;
pub use method::{LoadPlan, plan_on};
pub use observer::{ImportLog, ImportObserver};
pub use run::{ImportSummary, Importer, restore_target_settings};
