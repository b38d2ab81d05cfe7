//! sluice-checksum: online, chunked verification that source and target hold the same rows.
//!
//! It owns the chunk fingerprints computed server-side, the sync-point protocol that reads both
//! sides at one logical moment, bisection down to rows, and fix SQL. It never writes to the
//! source. It depends on `sluice-core` only; the job runner hands it the streamer's sync points.
