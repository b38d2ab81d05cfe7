//! An order-independent fingerprint of a set of rows, stored per chunk in metadata.json so that
//! an import can be verified against the dump without the source.
//!
//! Each row is hashed over its canonical encoding: for every column, a NULL mixes in the
//! marker `u64::MAX`; a value mixes in its length, then its bytes (the text as the server prints
//! it; binary columns: the raw bytes) in 8-byte little-endian words, the last one zero-padded.
//! Mixing is `h = (h ^ word).wrapping_mul(K)` followed by `h ^= h >> 29`; a final avalanche
//! (MurmurHash3's fmix64) spreads the row hash. The chunk's fingerprint is the wrapping sum of
//! the row hashes, so row order does not matter while a missing, extra or changed row does (a
//! duplicated row changes the sum too, unlike XOR). Not cryptographic: it detects accidents,
//! not adversaries.
//!
//! Two versions, chosen by the dump's metadata version ([`FingerprintVersion::of_metadata`]):
//! * V1 (metadata version 1) mixes every word into one chain. Each mix waits for the previous
//!   one (a multiply's latency), which made it the dumper's largest CPU cost per row.
//! * V2 (metadata version 2 on) keeps four independent chains: a NULL marker and a length go
//!   into chain 0, then a value's words go round-robin into chains 0–3 starting at 0 for every
//!   value; the row hash mixes the four chain values, in order, into one. The CPU runs the
//!   chains side by side.

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;
const K: u64 = 0xFF51_AFD7_ED55_8CCD;
/// Seeds of V2's chains 1–3 (chain 0 starts at `SEED`).
const LANE_SEEDS: [u64; 3] = [
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x27D4_EB2F_1656_67C5,
];

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

/// Up to 8 bytes as a little-endian word, zero-padded. A short word is assembled from two
/// overlapping loads (their shared bytes land in the same places) rather than copied into a
/// zeroed array: that copy was a `memcpy` call and a stalled load, the hottest instructions of
/// the fingerprint (perf).
#[inline]
fn word(b: &[u8]) -> u64 {
    let n = b.len();
    let u16_at = |i: usize| u64::from(u16::from_le_bytes([b[i], b[i + 1]]));
    let u32_at = |i: usize| u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
    match n {
        8.. => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        4..=7 => u32_at(0) | u32_at(n - 4) << (8 * (n - 4)),
        2..=3 => u16_at(0) | u16_at(n - 2) << (8 * (n - 2)),
        1 => u64::from(b[0]),
        _ => 0,
    }
}

/// Which fingerprint a dump's chunks carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FingerprintVersion {
    V1,
    /// What this Sluice writes.
    #[default]
    V2,
}

impl FingerprintVersion {
    /// The fingerprint of a dump whose metadata.json has `version`.
    pub fn of_metadata(version: u32) -> FingerprintVersion {
        if version <= 1 {
            FingerprintVersion::V1
        } else {
            FingerprintVersion::V2
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowFingerprint {
    sum: u64,
    rows: u64,
    version: FingerprintVersion,
}

impl RowFingerprint {
    /// An empty fingerprint of `version` ([`Default`] is the current one).
    pub fn new(version: FingerprintVersion) -> RowFingerprint {
        RowFingerprint {
            sum: 0,
            rows: 0,
            version,
        }
    }

    /// Adds one row, given as its cells (`None` for NULL).
    pub fn add_row<'a>(&mut self, cells: impl IntoIterator<Item = Option<&'a [u8]>>) {
        let h = match self.version {
            FingerprintVersion::V1 => row_hash_v1(cells),
            FingerprintVersion::V2 => row_hash_v2(cells),
        };
        self.sum = self.sum.wrapping_add(h);
        self.rows += 1;
    }

    /// Combines two disjoint sets of rows (of the same version).
    pub fn merge(&mut self, other: RowFingerprint) {
        debug_assert_eq!(self.version, other.version);
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

fn row_hash_v1<'a>(cells: impl IntoIterator<Item = Option<&'a [u8]>>) -> u64 {
    let mut h = SEED;
    for cell in cells {
        match cell {
            None => h = mix(h, u64::MAX),
            Some(v) => {
                h = mix(h, v.len() as u64);
                let mut words = v.chunks_exact(8);
                for w in &mut words {
                    h = mix(h, word(w));
                }
                let rest = words.remainder();
                if !rest.is_empty() {
                    h = mix(h, word(rest));
                }
            }
        }
    }
    finish(h)
}

fn row_hash_v2<'a>(cells: impl IntoIterator<Item = Option<&'a [u8]>>) -> u64 {
    let [mut a, mut b, mut c] = LANE_SEEDS;
    let mut h = SEED;
    for cell in cells {
        match cell {
            None => h = mix(h, u64::MAX),
            Some(v) => {
                h = mix(h, v.len() as u64);
                let mut blocks = v.chunks_exact(32);
                for blk in &mut blocks {
                    h = mix(h, word(&blk[..8]));
                    a = mix(a, word(&blk[8..16]));
                    b = mix(b, word(&blk[16..24]));
                    c = mix(c, word(&blk[24..]));
                }
                let mut words = blocks.remainder().chunks(8);
                if let Some(w) = words.next() {
                    h = mix(h, word(w));
                }
                if let Some(w) = words.next() {
                    a = mix(a, word(w));
                }
                if let Some(w) = words.next() {
                    b = mix(b, word(w));
                }
                if let Some(w) = words.next() {
                    c = mix(c, word(w));
                }
            }
        }
    }
    finish(mix(mix(mix(h, a), b), c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(f: impl Fn(FingerprintVersion)) {
        f(FingerprintVersion::V1);
        f(FingerprintVersion::V2);
    }

    #[test]
    fn order_independent_but_null_and_empty_differ() {
        both(|v| {
            let mut a = RowFingerprint::new(v);
            a.add_row([Some(&b"1"[..]), None]);
            a.add_row([Some(&b"2"[..]), Some(&b""[..])]);
            let mut b = RowFingerprint::new(v);
            b.add_row([Some(&b"2"[..]), Some(&b""[..])]);
            b.add_row([Some(&b"1"[..]), None]);
            assert_eq!(a, b);
            let mut c = RowFingerprint::new(v);
            c.add_row([Some(&b"1"[..]), Some(&b""[..])]);
            c.add_row([Some(&b"2"[..]), None]);
            assert_ne!(a.hex(), c.hex());
            let mut d = RowFingerprint::new(v);
            d.add_row([Some(&b"ab"[..]), Some(&b"c"[..])]);
            let mut e = RowFingerprint::new(v);
            e.add_row([Some(&b"a"[..]), Some(&b"bc"[..])]);
            assert_ne!(d.hex(), e.hex());
        });
    }

    #[test]
    fn every_word_of_a_long_value_counts_in_its_place() {
        both(|v| {
            let base: Vec<u8> = (0..77u8).collect();
            let of = |bytes: &[u8]| {
                let mut f = RowFingerprint::new(v);
                f.add_row([Some(bytes), Some(&b"x"[..])]);
                f.hex()
            };
            let reference = of(&base);
            for i in 0..base.len() {
                let mut changed = base.clone();
                changed[i] ^= 1;
                assert_ne!(of(&changed), reference, "{v:?}: byte {i}");
            }
            // Two words swapped between chains, and a value moved into the next cell.
            let mut swapped = base.clone();
            swapped.swap(0, 8);
            assert_ne!(of(&swapped), reference, "{v:?}");
        });
    }

    #[test]
    fn a_short_word_is_the_zero_padded_bytes() {
        let bytes: Vec<u8> = (1..=8).map(|i| i * 31).collect();
        for n in 0..=8 {
            let mut padded = [0u8; 8];
            padded[..n].copy_from_slice(&bytes[..n]);
            assert_eq!(word(&bytes[..n]), u64::from_le_bytes(padded), "{n} bytes");
        }
    }

    /// Dumps already written carry V1 values: they must never change.
    #[test]
    fn v1_values_are_stable() {
        let mut f = RowFingerprint::new(FingerprintVersion::V1);
        f.add_row([
            Some(&b"1"[..]),
            None,
            Some(&b"hello, world: a long value"[..]),
        ]);
        assert_eq!(f.hex(), V1_REFERENCE);
        assert_ne!(
            {
                let mut g = RowFingerprint::default();
                g.add_row([
                    Some(&b"1"[..]),
                    None,
                    Some(&b"hello, world: a long value"[..]),
                ]);
                g.hex()
            },
            V1_REFERENCE
        );
        assert_eq!(FingerprintVersion::of_metadata(1), FingerprintVersion::V1);
        assert_eq!(FingerprintVersion::of_metadata(2), FingerprintVersion::V2);
    }

    const V1_REFERENCE: &str = "7fa43756b9383ca7";
}
