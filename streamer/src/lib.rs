//! sluice-streamer: binlog replication into a MySQL-protocol target, exactly once.
//!
//! It owns the binlog client, the relay log, the event decoder (including MariaDB's own
//! events), the transaction assembler, the causality dispatcher, the appliers and the
//! checkpoints written in the same target transaction as the changes. It depends on
//! `sluice-core` only.
//!
//! Built so far (issue #5 is open): the event framing with 64-bit positions and CRC32
//! verification ([`EventReader`]), and the decoders of MariaDB's own events ([`mariadb`]),
//! tested against real binlog files. The client, decoder of rows events, dispatcher and
//! appliers come next.

mod error;
mod event;
pub mod mariadb;

pub use error::StreamError;
pub use event::{ChecksumAlg, Event, EventHeader, EventReader, event_type};
