//! An order-independent fingerprint of a set of rows, stored per chunk in metadata.json so that
//! an import can be verified against the dump without the source.
//!
//! Each row is hashed with 64-bit FNV-1a over its canonical encoding: for every column, a NULL
//! is the single byte `0xFF`; a value is `0x00`, its length as 4 little-endian bytes, then its
//! text bytes as the server prints them (binary columns: the raw bytes). The chunk's fingerprint
//! is the wrapping sum of the row hashes, so row order does not matter while a missing, extra or
//! changed row does (a duplicated row changes the sum too, unlike XOR).

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowFingerprint {
    sum: u64,
    rows: u64,
}

impl RowFingerprint {
    /// Adds one row, given as its cells (`None` for NULL).
    pub fn add_row<'a>(&mut self, cells: impl IntoIterator<Item = Option<&'a [u8]>>) {
        let mut h = FNV_OFFSET;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(FNV_PRIME);
            }
        };
        for cell in cells {
            match cell {
                None => feed(&[0xFF]),
                Some(v) => {
                    feed(&[0x00]);
                    feed(&(v.len() as u32).to_le_bytes());
                    feed(v);
                }
            }
        }
        self.sum = self.sum.wrapping_add(h);
        self.rows += 1;
    }

    /// Combines two disjoint sets of rows.
    pub fn merge(&mut self, other: RowFingerprint) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.rows += other.rows;
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The fingerprint as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_independent_but_null_and_empty_differ() {
        let mut a = RowFingerprint::default();
        a.add_row([Some(&b"1"[..]), None]);
        a.add_row([Some(&b"2"[..]), Some(&b""[..])]);
        let mut b = RowFingerprint::default();
        b.add_row([Some(&b"2"[..]), Some(&b""[..])]);
        b.add_row([Some(&b"1"[..]), None]);
        assert_eq!(a, b);
        let mut c = RowFingerprint::default();
        c.add_row([Some(&b"1"[..]), Some(&b""[..])]);
        c.add_row([Some(&b"2"[..]), None]);
        assert_ne!(a.hex(), c.hex());
        let mut d = RowFingerprint::default();
        d.add_row([Some(&b"ab"[..]), Some(&b"c"[..])]);
        let mut e = RowFingerprint::default();
        e.add_row([Some(&b"a"[..]), Some(&b"bc"[..])]);
        assert_ne!(d.hex(), e.hex());
    }
}
