//! The shared SOURCE and TARGET servers of a test process (see `sluice-servers` for how they
//! are started and stopped).

use std::sync::OnceLock;

pub use sluice_servers::{MariaDb, Role};

/// The shared SOURCE server of this test process, started on first use.
pub fn source() -> &'static MariaDb {
    static SOURCE: OnceLock<MariaDb> = OnceLock::new();
    SOURCE.get_or_init(|| MariaDb::start(Role::Source))
}

/// The shared TARGET server of this test process, started on first use.
pub fn target() -> &'static MariaDb {
    static TARGET: OnceLock<MariaDb> = OnceLock::new();
    TARGET.get_or_init(|| MariaDb::start(Role::Target))
}
