//! Where a binlog reader stands.
//!
//! Offsets are `u64` everywhere. A binlog file can grow past 4 GiB (one huge transaction is
//! never split across files), and the event header's `log_pos` is only 32 bits, so it wraps;
//! Sluice computes offsets from event sizes since the last rotate and never trusts `log_pos`
//! alone.

use std::fmt;
use std::str::FromStr;

use crate::{CoreError, GtidSet};

/// A byte offset in a named binlog file, written `file:offset` (`mysql-bin.000003:1234`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BinlogPosition {
    pub file: String,
    pub offset: u64,
}

impl BinlogPosition {
    pub fn new(file: impl Into<String>, offset: u64) -> Self {
        BinlogPosition {
            file: file.into(),
            offset,
        }
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)
    }
}

impl FromStr for BinlogPosition {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (file, offset) = s
            .rsplit_once(':')
            .ok_or_else(|| CoreError::invalid("binlog position", s, "expected FILE:OFFSET"))?;
        if file.is_empty() {
            return Err(CoreError::invalid(
                "binlog position",
                s,
                "the file name is empty",
            ));
        }
        let offset = offset.parse::<u64>().map_err(|_| {
            CoreError::invalid(
                "binlog position",
                s,
                "the offset is not a non-negative integer",
            )
        })?;
        Ok(BinlogPosition::new(file, offset))
    }
}

/// A position together with the GTID set executed up to it: what a resumed reader needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: BinlogPosition,
    pub gtid: GtidSet,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_past_four_gib() {
        let p: BinlogPosition = "mysql-bin.000007:5000000000".parse().unwrap();
        assert_eq!(p.offset, 5_000_000_000);
        assert_eq!(p.to_string(), "mysql-bin.000007:5000000000");
    }

    #[test]
    fn file_names_with_colons_keep_them() {
        let p: BinlogPosition = "odd:name.000001:4".parse().unwrap();
        assert_eq!(p.file, "odd:name.000001");
        assert_eq!(p.offset, 4);
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "mysql-bin.000001",
            ":4",
            "f:-1",
            "f:x",
            "f:99999999999999999999999",
        ] {
            assert!(bad.parse::<BinlogPosition>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn orders_by_file_then_offset() {
        let a = BinlogPosition::new("b.000001", 900);
        let b = BinlogPosition::new("b.000002", 4);
        assert!(a < b);
    }
}
