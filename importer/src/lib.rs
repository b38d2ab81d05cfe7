//! sluice-importer: the Lightning-style bulk import.
//!
//! It owns the dump readers and parsers (Sluice, Dumpling, mydumper and mysqldump layouts; SQL,
//! CSV, Parquet), the key/value encoder (memcomparable primary keys), the parallel sorter with
//! spill runs, the loaders that write in primary-key order, and the import checkpoints.
//! It depends on `sluice-core` only.
