//! MariaDB's own events, which `mysql_common` leaves undecoded (see ../shared/notes).
//!
//! Byte layouts of the event bodies (after the 19-byte header, without the CRC32), all
//! integers little-endian:
//!
//! ```text
//! GTID (162):              seq_no u64 | domain_id u32 | flags2 u8 | [commit_id u64 if flags2 & 0x02] | …
//!                          the GTID is domain-<header.server_id>-seq_no
//!                          flags2: 01 STANDALONE 02 GROUP_COMMIT_ID 04 TRANSACTIONAL 08 ALLOW_PARALLEL
//!                                  10 WAITED 20 DDL 40 PREPARED_XA 80 COMPLETED_XA
//! GTID_LIST (163):         v u32 (count = v & 0x0FFFFFFF) | count × (domain u32, server_id u32, seq_no u64)
//! BINLOG_CHECKPOINT (161): name_len u32 | name
//! ANNOTATE_ROWS (160):     the whole body is the SQL text of the statement
//! ```

use sluice_core::MariaGtid;

/// A MariaDB GTID event: which transaction begins, and how it may be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtidEvent {
    pub gtid: MariaGtid,
    pub flags: u8,
    pub commit_id: Option<u64>,
}

impl GtidEvent {
    pub const STANDALONE: u8 = 0x01;
    pub const TRANSACTIONAL: u8 = 0x04;
    pub const DDL: u8 = 0x20;

    /// A standalone event group (DDL, or a non-transactional statement) has no XID to end it.
    pub fn is_standalone(&self) -> bool {
        self.flags & Self::STANDALONE != 0
    }
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
}

/// Decodes a GTID event body; `server_id` comes from the event header.
pub fn gtid(body: &[u8], server_id: u32) -> Option<GtidEvent> {
    let sequence = u64_at(body, 0)?;
    let domain = u32_at(body, 8)?;
    let flags = *body.get(12)?;
    let commit_id = if flags & 0x02 != 0 {
        Some(u64_at(body, 13)?)
    } else {
        None
    };
    Some(GtidEvent {
        gtid: MariaGtid {
            domain,
            server: server_id,
            sequence,
        },
        flags,
        commit_id,
    })
}

/// Decodes a GTID_LIST event body: the binlog state at the start of a file.
pub fn gtid_list(body: &[u8]) -> Option<Vec<MariaGtid>> {
    let count = (u32_at(body, 0)? & 0x0FFF_FFFF) as usize;
    (0..count)
        .map(|i| {
            let at = 4 + i * 16;
            Some(MariaGtid {
                domain: u32_at(body, at)?,
                server: u32_at(body, at + 4)?,
                sequence: u64_at(body, at + 8)?,
            })
        })
        .collect()
}

/// Decodes a BINLOG_CHECKPOINT event body: the oldest binlog file still needed for recovery.
pub fn binlog_checkpoint(body: &[u8]) -> Option<String> {
    let len = u32_at(body, 0)? as usize;
    Some(String::from_utf8_lossy(body.get(4..4 + len)?).into_owned())
}

/// Decodes an ANNOTATE_ROWS event body: the statement that produced the following rows.
pub fn annotate_rows(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_bodies_seen_on_mariadb_10_11() {
        // From ../shared/notes/crates-on-mariadb.md ("Byte layouts decoded by hand").
        let g = gtid(
            &[6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0, 0, 0, 0, 0, 0],
            1,
        )
        .unwrap();
        assert_eq!(g.gtid.to_string(), "0-1-6");
        assert!(!g.is_standalone());
        let list =
            gtid_list(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            list.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["0-1-5"]
        );
        assert_eq!(gtid_list(&[0, 0, 0, 0, 0, 0]).unwrap(), []);
        let mut cp = 18u32.to_le_bytes().to_vec();
        cp.extend_from_slice(b"mariadb-bin.000001");
        assert_eq!(
            binlog_checkpoint(&cp).as_deref(),
            Some("mariadb-bin.000001")
        );
        assert!(gtid(&[1, 2, 3], 1).is_none());
    }
}
