//! The control API of a running stream: the HTTP server a `sluice stream --control ADDR`
//! serves, and the client that `sluice status|pause|resume|stop` and the online checksum use.

pub mod client;
pub mod meter;
pub mod server;

pub use client::ControlClient;
