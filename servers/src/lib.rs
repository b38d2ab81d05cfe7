//! sluice-servers: throwaway local MariaDB servers, started the same way for the tests, the
//! benches and `sluice quickstart`: `mariadb-install-db` + `mariadbd` in a temporary folder, on
//! a free loopback port (never 3306), tied by a watchdog to the life of the process that
//! started them, so that none outlives it, however it ends.
//!
//! A machine without `mariadbd` gets a panic naming `ci/setup.sh`: a test that needs a server
//! fails, it never skips.

pub mod mariadb;
pub mod process;

pub use mariadb::{MariaDb, Role};
