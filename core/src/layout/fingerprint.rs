//! An order-independent fingerprint of a set of rows, stored per chunk in metadata.json so that
//! an import can be verified against the dump without the source.
//!
//! Each row is hashed over its canonical encoding: for every column, a NULL mixes in the
//! marker `u64::MAX`; a value mixes in its length, then its bytes (the text as the server prints
//! it; binary columns: the raw bytes) in 8-byte little-endian words, the last one zero-padded.
//! Mixing is `h = (h ^ word).wrapping_mul(K)` followed by `h ^= h >> 29`, word by word, which
//! costs a fraction of a byte-wise hash on the dump's hot path; a final avalanche spreads the
//! row hash. The chunk's fingerprint is the wrapping sum of the row hashes, so row order does
//! not matter while a missing, extra or changed row does (a duplicated row changes the sum too,
//! unlike XOR). Not cryptographic: it detects accidents, not adversaries.

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;
const K: u64 = 0xFF51_AFD7_ED55_8CCD;

#[inline]
fn mix(h: u64, word: u64) -> u64 {
    let h = (h ^ word).wrapping_mul(K);
    h ^ (h >> 29)
}

/// The final avalanche of MurmurHash3's fmix64.
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowFingerprint {
    sum: u64,
    rows: u64,
}

impl RowFingerprint {
    /// Adds one row, given as its cells (`None` for NULL).
    pub fn add_row<'a>(&mut self, cells: impl IntoIterator<Item = Option<&'a [u8]>>) {
        let mut h = SEED;
        for cell in cells {
            match cell {
                None => h = mix(h, u64::MAX),
                Some(v) => {
                    h = mix(h, v.len() as u64);
                    let mut words = v.chunks_exact(8);
                    for w in &mut words {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(w);
                        h = mix(h, u64::from_le_bytes(b));
                    }
                    let rest = words.remainder();
                    if !rest.is_empty() {
                        let mut b = [0u8; 8];
                        b[..rest.len()].copy_from_slice(rest);
                        h = mix(h, u64::from_le_bytes(b));
                    }
                }
            }
        }
        self.sum = self.sum.wrapping_add(finish(h));
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
