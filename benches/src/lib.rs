//! sluice-benches: side-by-side measurements of Sluice against the tools its users would run
//! instead (mydumper/myloader, mariadb-dump, native replication, pt-table-checksum), on the same
//! throwaway servers in one run, with release builds. Figures go into the issue notes, never
//! into timed test assertions.
