//! `metadata.json`: what a dump holds and the exact moment it shows.
//!
//! Written last, after every data file is committed: its presence is the dump's mark of
//! completeness. `snapshot` is the binlog position and GTID set of the consistent snapshot all
//! tables were read in; a streamer started there applies exactly the changes the dump lacks.
//!
//! A dump that was killed and resumed (`sluice dump --resume`) holds chunks read in more than
//! one snapshot: `snapshot` is the first, `resumed_snapshots` the later ones, and every chunk
//! and table names the snapshot it was read in (0 = `snapshot`). A streamer started at
//! `snapshot` then replays up to the last snapshot in safe mode (idempotent REPLACE/DELETE by
//! key, so changes a later chunk already holds land twice without harm), and skips a table's
//! changes before the first snapshot any of its chunks was read in (which keeps a table without
//! a primary key exact: it is one chunk, so one snapshot).

use serde::{Deserialize, Serialize};

use super::{Compression, CsvDialect, DataFormat};

/// The version of this document's shape; readers refuse newer versions. Version 2: chunk
/// fingerprints are [`super::FingerprintVersion::V2`].
pub const METADATA_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpMetadata {
    pub version: u32,
    /// `sluice <version>`.
    pub tool: String,
    pub source: SourceMeta,
    /// `auto`, `flush`, `lock`, `snapshot` or `none`, and which lock was actually taken.
    pub consistency: String,
    /// `None` when the source has no binlog or consistency was `none`.
    pub snapshot: Option<SnapshotMeta>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub format: DataFormat,
    pub compression: Compression,
    /// Present when `format` is `csv`.
    pub csv: Option<CsvDialect>,
    /// The session time zone the values were read in (TIMESTAMP columns depend on it).
    pub time_zone: String,
    pub tables: Vec<TableMeta>,
    /// The snapshots a resumed dump read its remaining chunks in, in order (snapshot 1, 2, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_snapshots: Vec<SnapshotMeta>,
}

impl DumpMetadata {
    pub const VERSION: u32 = METADATA_VERSION;

    /// Snapshot `n` (0 = `snapshot`, then `resumed_snapshots`).
    pub fn snapshot_at(&self, n: u32) -> Option<&SnapshotMeta> {
        match n {
            0 => self.snapshot.as_ref(),
            n => self.resumed_snapshots.get(n as usize - 1),
        }
    }

    /// The last snapshot any chunk was read in, when that is not the first: a stream from
    /// `snapshot` must be idempotent (safe mode) up to there.
    pub fn safe_until(&self) -> Option<&SnapshotMeta> {
        self.resumed_snapshots.last()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMeta {
    /// `mysql://user@host:port`, never with the password.
    pub endpoint: String,
    pub flavor: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub binlog_file: String,
    /// 64-bit: binlog files can pass 4 GiB.
    pub binlog_offset: u64,
    /// MariaDB `domain-server-seq` list or MySQL `uuid:intervals`; empty when no GTIDs yet.
    pub gtid_set: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMeta {
    pub database: String,
    pub table: String,
    pub schema_file: String,
    /// Dumped columns in file order (generated columns are left out).
    pub columns: Vec<String>,
    /// Empty for a table without a primary key.
    pub primary_key: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    pub chunks: Vec<ChunkMeta>,
    /// The first snapshot any chunk of the table (empty ones too) was read in; a stream from
    /// the dump skips the table's changes before it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub snapshot: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMeta {
    pub file: String,
    /// The chunk's key range as SQL predicate text, for people and for re-dumping one chunk.
    pub range: String,
    pub rows: u64,
    /// Bytes in storage (after compression).
    pub bytes: u64,
    /// Order-independent row fingerprint ([`super::RowFingerprint`]), 16 hex digits.
    pub fingerprint: String,
    /// The snapshot the chunk was read in (see [`DumpMetadata::snapshot_at`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub snapshot: u32,
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`2026-11-24T06:48:21Z`).
pub fn utc_timestamp(unix_secs: u64) -> String {
    let (year, month, day) = civil_from_days((unix_secs / 86_400) as i64);
    let secs = unix_secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01
/// (Howard Hinnant's civil_from_days; negative days are before 1970).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_795_502_901), "2026-11-24T06:48:21Z");
        assert_eq!(civil_from_days(-354_285), (1000, 1, 1));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }
}
