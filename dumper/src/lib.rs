//! sluice-dumper: the parallel, consistent, chunked dump of a MySQL or MariaDB server.
//!
//! It owns the snapshot coordinator (N connections on one consistent point and the binlog
//! position of that point), the chunk planner (primary-key ranges), the row readers and the
//! file writers (SQL, CSV, Parquet) that put the dump layout into a `sluice_core::Storage`.
//! It depends on `sluice-core` only; the importer reads what it writes through the layout
//! described in ARCHITECTURE.md, never through this crate.
