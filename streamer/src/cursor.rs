//! Where the reader and the relay puller are in a binlog file: a 64-bit offset counted from
//! event sizes, because the header's 32-bit `log_pos` wraps in a file past 4 GiB (see
//! `reader.rs` on positions).

use mysql_async::binlog::events::Event;

/// The position of the event being read.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    pub(crate) file: String,
    pub(crate) offset: u64,
    /// After a GTID start: the next real event's `log_pos` says where we are.
    pub(crate) resync: bool,
    /// After a GTID start: an offset in `file` the stream is known to be past (the mark it
    /// was asked from), which gives a re-based offset its bits above 32. Zero when unknown.
    pub(crate) floor: u64,
    /// After a start from the file's beginning (past 4 GiB without a GTID position): events
    /// that start before this offset of `file` were applied already and are only read over.
    pub(crate) skip_to: u64,
}

impl Cursor {
    /// A cursor at a known position.
    pub(crate) fn at(file: &str, offset: u64) -> Cursor {
        Cursor {
            file: file.to_owned(),
            offset,
            ..Cursor::default()
        }
    }

    /// Moves to the file a ROTATE names. After a GTID start the floor holds only in the file
    /// it was taken in; a skip only in the file being re-read.
    pub(crate) fn rotate(&mut self, file: String, offset: u64) {
        if file != self.file {
            self.floor = 0;
            self.skip_to = 0;
        }
        self.file = file;
        self.offset = offset;
    }

    /// Whether an event starting at `start` is before the resume point of a re-read file
    /// (and so already applied); the skip ends at the first event that is not.
    pub(crate) fn skips(&mut self, start: u64) -> bool {
        if self.skip_to == 0 {
            return false;
        }
        if start < self.skip_to {
            return true;
        }
        self.skip_to = 0;
        false
    }
}

/// Moves the cursor past a real event of `size` bytes whose header says it ends at `log_pos`.
///
/// The end is the first offset at or after `offset + size` whose low 32 bits are `log_pos`:
/// the server leaves out events a replica does not ask for (MariaDB sends no ANNOTATE_ROWS
/// unless asked), so the file may hold more bytes than the stream carried, never fewer; the
/// modular step keeps the count exact past 4 GiB.
///
/// After a GTID start the end is the first offset past the floor (or the ROTATE's offset)
/// whose low 32 bits are `log_pos`.
pub(crate) fn advance(cursor: &mut Cursor, size: u32, log_pos: u32) {
    if cursor.resync {
        let low = cursor.offset.max(cursor.floor);
        let mut end = (low & !0xFFFF_FFFF) | u64::from(log_pos);
        if end <= low {
            end += 1 << 32;
        }
        cursor.offset = end;
        cursor.resync = false;
        return;
    }
    let end = cursor.offset + u64::from(size);
    let skipped = log_pos.wrapping_sub(end as u32);
    cursor.offset = end + u64::from(skipped);
}

/// The position and file of a ROTATE. The first event of a stream (an artificial ROTATE sent
/// before the FORMAT_DESCRIPTION) carries a CRC32 that the decoder does not know to strip: its
/// last four bytes are dropped when they are the CRC32 of the rest (see notes).
pub(crate) fn rotate_body(ev: &Event, first_event: bool) -> (u64, String) {
    let data = ev.data();
    let position = data
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(4);
    let mut name = data.get(8..).unwrap_or_default();
    if first_event && ev.checksum().is_none() && name.len() > 4 {
        let h = ev.header();
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(&h.timestamp().to_le_bytes());
        head.push(h.event_type_raw());
        head.extend_from_slice(&h.server_id().to_le_bytes());
        head.extend_from_slice(&h.event_size().to_le_bytes());
        head.extend_from_slice(&h.log_pos().to_le_bytes());
        head.extend_from_slice(&h.flags_raw().to_le_bytes());
        let body = &data[..data.len() - 4];
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head);
        hasher.update(body);
        if hasher.finalize().to_le_bytes() == data[data.len() - 4..] {
            name = &name[..name.len() - 4];
        }
    }
    (position, String::from_utf8_lossy(name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_sizes_and_rebase_after_a_gtid_start() {
        let mut c = Cursor::at("f", 4);
        advance(&mut c, 100, 104);
        assert_eq!(c.offset, 104);
        // Past 4 GiB log_pos holds the low 32 bits only.
        c.offset = (5u64 << 30) - 10;
        let end = c.offset + 30;
        advance(&mut c, 30, (end & 0xFFFF_FFFF) as u32);
        assert_eq!(c.offset, end);
        let mut g = Cursor {
            resync: true,
            ..Cursor::at("f", 4)
        };
        advance(&mut g, 50, 9_000);
        assert_eq!(g.offset, 9_000);
        // A GTID start past 4 GiB: the mark asked from gives the high bits, whatever offset
        // the server's ROTATE named.
        let mark = (4u64 << 30) + 700;
        let mut h = Cursor {
            resync: true,
            floor: mark,
            ..Cursor::at("f", mark)
        };
        h.rotate("f".into(), 4);
        let end = mark + 90;
        advance(&mut h, 90, end as u32);
        assert_eq!(h.offset, end);
        // …and its low 32 bits may be smaller than the mark's.
        let mark = (1u64 << 32) - 20;
        let mut w = Cursor {
            resync: true,
            floor: mark,
            ..Cursor::at("f", mark)
        };
        w.rotate("f".into(), 4);
        advance(&mut w, 60, (mark + 60) as u32);
        assert_eq!(w.offset, mark + 60);
        // A GTID start that lands in a later file is near its start.
        let mut n = Cursor {
            resync: true,
            floor: mark,
            ..Cursor::at("f", mark)
        };
        n.rotate("g".into(), 4);
        advance(&mut n, 60, 400);
        assert_eq!(n.offset, 400);
        // Events the server left out (ANNOTATE_ROWS) still count, also across 4 GiB.
        let mut s = Cursor::at("f", 1_000);
        advance(&mut s, 42, 1_140);
        assert_eq!(s.offset, 1_140);
        s.offset = u64::from(u32::MAX) - 50;
        let end = s.offset + 42 + 98;
        advance(&mut s, 42, end as u32);
        assert_eq!(s.offset, end);
        assert!(end > u64::from(u32::MAX));
    }

    #[test]
    fn a_file_read_again_is_skipped_up_to_the_resume_point() {
        let mut c = Cursor {
            skip_to: 5_000_000_000,
            ..Cursor::at("f", 4)
        };
        assert!(c.skips(4));
        assert!(c.skips(4_999_999_999));
        assert!(!c.skips(5_000_000_000));
        assert!(!c.skips(4), "the skip ends at the resume point");
        let mut r = Cursor {
            skip_to: 5_000_000_000,
            ..Cursor::at("f", 4)
        };
        r.rotate("g".into(), 4);
        assert!(!r.skips(10), "a skip holds only in the file read again");
    }
}
