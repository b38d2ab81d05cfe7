//! Jobs: the job file ([`file`]) and the runner that drives dump → import → stream (→ final
//! checksum) and resumes after a crash ([`runner`]).

pub mod file;
pub mod runner;
