//! sluice-jobs: the job runner and the `sluice` command line.
//!
//! It owns the CLI, the job file, pre-checks, job state and the control API, and it is the only
//! crate that wires the stages (`sluice-dumper`, `sluice-importer`, `sluice-streamer`,
//! `sluice-checksum`) together. No stage depends on it.

pub mod cli;
mod commands;
mod control;
mod exit;
mod job;
mod password;
mod progress;

pub use cli::main;
pub use exit::ExitCode;
