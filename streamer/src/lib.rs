//! sluice-streamer: binlog replication into a MySQL-protocol target, exactly once.
//!
//! It owns the binlog client and decoder ([`reader`]: 64-bit positions, CRC32 checks,
//! reconnects; MariaDB's own events in [`mariadb`]), the schema view that decodes rows
//! ([`schema_view`], [`cell`]), the transaction model ([`transaction`]), the causality
//! dispatcher ([`dispatch`]), the appliers that group upstream transactions into target
//! transactions ([`apply`], [`sql`]) and the checkpoints written in the same target transaction
//! as the changes ([`checkpoint`], [`progress`]). [`Streamer`] wires them (`build` → `run`).
//! It depends on `sluice-core` only.
//!
//! Data flow: reader → items channel → dispatcher (in `run`) → one queue per applier → target.
//! DDL takes the slow path: the dispatcher drains every applier, runs the DDL alone, and the
//! reader waits for it before decoding further rows (the schema view reads the target).

pub mod apply;
mod binlog_conn;
pub mod cell;
pub mod checkpoint;
pub mod compact;
mod compressed;
pub mod control;
mod coordinator;
mod cursor;
pub mod dispatch;
mod error;
mod event;
pub mod json;
pub mod mariadb;
pub mod progress;
pub mod reader;
pub mod relay;
pub mod requests;
pub mod schema_view;
pub mod sql;
mod stream;
pub mod transaction;
pub mod xa;

pub use control::{Control, HoldRefused, Status};
pub use error::StreamError;
pub use event::{ChecksumAlg, Event, EventHeader, EventReader, event_type};
pub use reader::Until;
pub use stream::{StartPoint, StreamConfig, Streamer, Summary, run_relay};
