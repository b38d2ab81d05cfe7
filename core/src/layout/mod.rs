//! The dump layout shared by the dumper (which writes it) and the importer (which reads it).
//!
//! ```text
//! metadata.json                      written last: a dump without it is incomplete
//! dump-progress.json                 while unfinished: the plan and the chunks done
//! {db}-schema-create.sql             CREATE DATABASE
//! {db}.{table}-schema.sql            CREATE TABLE (SHOW CREATE TABLE)
//! {db}.{view}-schema-view.sql        CREATE VIEW
//! {db}.{table}.{chunk:09}.sql|csv[.gz|.zst]
//! ```
//!
//! The names are Dumpling's, so tools that read Dumpling folders read ours. Values in data files
//! are exact text as the server prints them in a `time_zone = '+00:00'`, `utf8mb4` session; the
//! metadata says so, and a loader must use the same session settings.

mod csv_dialect;
mod fingerprint;
mod metadata;
mod names;

pub use csv_dialect::{CsvDialect, CsvFields, CsvRecord, CsvRecordReader};
pub use fingerprint::{FingerprintVersion, RowFingerprint};
pub use metadata::{
    ChunkMeta, DumpMetadata, SnapshotMeta, SourceMeta, TableMeta, civil_from_days, utc_timestamp,
};
pub use names::{
    Compression, DataFormat, METADATA_FILE, PROGRESS_FILE, chunk_file, database_schema_file,
    table_schema_file, view_schema_file,
};
