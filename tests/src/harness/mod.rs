//! Throwaway servers for tests: see the crate docs.

pub mod mariadb;
pub mod moto;
pub(crate) use sluice_servers::process;

use std::sync::atomic::{AtomicU32, Ordering};

/// A name no other test in any running test process uses: `prefix_<pid>_<n>`. Use it for
/// databases and storage prefixes so that tests can share servers and run in parallel.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}", std::process::id())
}
