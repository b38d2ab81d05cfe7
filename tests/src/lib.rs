//! The end-to-end test crate and the harness every integration test uses.
//!
//! The harness starts real servers and never mocks them: a SOURCE MariaDB (binlog on, ROW,
//! GTID strict), a TARGET MariaDB and an S3 endpoint (`moto_server`). Each is started on first
//! use, shared by all tests of one test binary, and tied to the life of that process by a
//! watchdog, so no server outlives the tests, even after `kill -9`. Tests isolate themselves by
//! database name ([`unique_name`]).
//!
//! A machine without `mariadbd` or `moto_server` makes these tests fail with a message naming
//! `ci/setup.sh`; they never pass by skipping.

pub mod dumps;
pub mod fixture_cases;
pub mod harness;
pub mod stream;
pub mod tools;
pub mod types_table;

pub use harness::mariadb::{MariaDb, Role, source, target};
pub use harness::moto::{S3Endpoint, s3};
pub use harness::unique_name;

/// Runs the CLI binary `bin` (a test's `env!("CARGO_BIN_EXE_sluice-under-test")`) with `args`,
/// logging at warn, and returns what it printed and how it ended.
pub fn run_cli(bin: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin)
        .args(args)
        .env("SLUICE_LOG", "warn")
        .output()
        .expect("run the sluice binary")
}
