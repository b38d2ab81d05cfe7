//! sluice-streamer: binlog replication into a MySQL-protocol target, exactly once.
//!
//! It owns the binlog client, the relay log, the event decoder (including MariaDB's own
//! events), the transaction assembler, the causality dispatcher, the appliers and the
//! checkpoints written in the same target transaction as the changes. It depends on
//! `sluice-core` only.
