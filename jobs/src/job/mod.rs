//! Jobs: the job file ([`file`]), the pre-checks ([`check`]) and the runner that drives dump → import → stream (→ final
//! checksum) and resumes after a crash ([`runner`]).

pub mod check;
pub mod cron;
pub mod file;
pub mod runner;
