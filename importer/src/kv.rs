//! Rows as key/value pairs whose key bytes sort like the primary key.
//!
//! Key encoding (memcomparable), column by column:
//! * NULL: `0x00`; any value starts with `0x01` (so NULL sorts first, as in InnoDB).
//! * integers: the value as 8 big-endian bytes, with the sign bit flipped for signed columns,
//!   so that byte order is numeric order (unsigned BIGINT uses all 64 bits).
//! * decimals: a sign byte (`0x00` negative, `0x01` zero, `0x02` positive), then for a
//!   positive number its decimal exponent as a biased big-endian `u16`, then its significant
//!   digits one per byte (`0x01`–`0x0A`), then `0x00`; negative numbers store exactly the
//!   complement of those bytes, so that a larger magnitude sorts first.
//! * everything else (strings, binary, temporal text): the bytes, escaped in groups of 8 as
//!   TiDB and MyRocks do: each group is 8 bytes (zero-padded) followed by a marker byte
//!   `0xFF - padding`, so that prefixes sort before longer strings and the encoding is
//!   self-delimiting. Temporal text (`YYYY-MM-DD hh:mm:ss.ffffff`) is fixed-width, so its byte
//!   order is time order.
//!
//! String order is byte order, not the column's collation: loading in this order is what makes
//! InnoDB append, and exact duplicates meet; keys equal only under a case-insensitive collation
//! are caught by the target's own unique check instead.
//!
//! Value encoding: the cells in column order, each a tag byte (`0` NULL, `1` value), and for a
//! value a little-endian `u32` length and the bytes; then the origin (file index `u32`, line
//! `u64`) so that a duplicate can be reported with where it came from.

use sluice_core::ColumnKind;

/// Appends the memcomparable form of one key cell.
pub fn encode_key_cell(out: &mut Vec<u8>, kind: ColumnKind, unsigned: bool, value: Option<&[u8]>) {
    let Some(v) = value else {
        out.push(0x00);
        return;
    };
    out.push(0x01);
    match kind {
        ColumnKind::Integer | ColumnKind::Bit => match parse_integer(v, unsigned) {
            Some(bits) => out.extend_from_slice(&bits.to_be_bytes()),
            None => encode_bytes(out, v),
        },
        ColumnKind::Decimal => encode_decimal(out, v),
        _ => encode_bytes(out, v),
    }
}

fn parse_integer(v: &[u8], unsigned: bool) -> Option<u64> {
    let text = std::str::from_utf8(v).ok()?.trim();
    if unsigned {
        text.parse::<u64>().ok()
    } else {
        text.parse::<i64>().ok().map(|i| (i as u64) ^ (1 << 63))
    }
}

fn encode_bytes(out: &mut Vec<u8>, v: &[u8]) {
    for group in v.chunks(8) {
        out.extend_from_slice(group);
        out.extend(std::iter::repeat_n(0, 8 - group.len()));
        out.push(0xFF - (8 - group.len()) as u8);
    }
    if v.len().is_multiple_of(8) {
        out.extend_from_slice(&[0; 8]);
        out.push(0xFF - 8);
    }
}

/// Decimal text (`-12.340`, `0.5`, `7`) in order-preserving form; non-numbers fall back to bytes.
fn encode_decimal(out: &mut Vec<u8>, v: &[u8]) {
    let Ok(text) = std::str::from_utf8(v) else {
        return encode_bytes(out, v);
    };
    let text = text.trim();
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return encode_bytes(out, v);
    }
    let whole = whole.trim_start_matches('0');
    let digits: Vec<u8> = whole
        .bytes()
        .chain(fraction.bytes())
        .map(|b| b - b'0')
        .collect();
    let leading_zeros = if whole.is_empty() {
        digits.iter().take_while(|&&d| d == 0).count()
    } else {
        0
    };
    let significant: Vec<u8> = {
        let mut d = digits[leading_zeros..].to_vec();
        while d.last() == Some(&0) {
            d.pop();
        }
        d
    };
    if significant.is_empty() {
        out.push(0x01);
        return;
    }
    // The exponent: how many places the first significant digit sits left of the point.
    let exponent: i32 = if whole.is_empty() {
        -(leading_zeros as i32)
    } else {
        whole.len() as i32
    };
    let mut body = Vec::with_capacity(significant.len() + 3);
    body.extend_from_slice(&((exponent + 0x8000) as u16).to_be_bytes());
    body.extend(significant.iter().map(|d| d + 1));
    body.push(0x00);
    if negative {
        out.push(0x00);
        out.extend(body.iter().map(|b| !b));
    } else {
        out.push(0x02);
        out.extend_from_slice(&body);
    }
}

/// Appends a row's cells (`None` = NULL) and its origin.
pub fn encode_value<'a>(
    out: &mut Vec<u8>,
    cells: impl IntoIterator<Item = Option<&'a [u8]>>,
    file: u32,
    line: u64,
) {
    for cell in cells {
        match cell {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
        }
    }
    out.extend_from_slice(&file.to_le_bytes());
    out.extend_from_slice(&line.to_le_bytes());
}

/// A decoded value: the cells (`None` = NULL), the file index and the line.
pub type DecodedValue<'a> = (Vec<Option<&'a [u8]>>, u32, u64);

/// Splits a value back into its cells and origin.
pub fn decode_value(value: &[u8], columns: usize) -> Option<DecodedValue<'_>> {
    let mut cells = Vec::with_capacity(columns);
    let mut pos = 0;
    for _ in 0..columns {
        match *value.get(pos)? {
            0 => {
                cells.push(None);
                pos += 1;
            }
            _ => {
                let len =
                    u32::from_le_bytes(value.get(pos + 1..pos + 5)?.try_into().ok()?) as usize;
                cells.push(Some(value.get(pos + 5..pos + 5 + len)?));
                pos += 5 + len;
            }
        }
    }
    let file = u32::from_le_bytes(value.get(pos..pos + 4)?.try_into().ok()?);
    let line = u64::from_le_bytes(value.get(pos + 4..pos + 12)?.try_into().ok()?);
    Some((cells, file, line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(kind: ColumnKind, unsigned: bool, v: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key_cell(&mut out, kind, unsigned, Some(v.as_bytes()));
        out
    }

    proptest! {
        #[test]
        fn signed_integers_sort_numerically(a: i64, b: i64) {
            let (ka, kb) = (key(ColumnKind::Integer, false, &a.to_string()), key(ColumnKind::Integer, false, &b.to_string()));
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
        }

        #[test]
        fn unsigned_integers_sort_numerically(a: u64, b: u64) {
            let (ka, kb) = (key(ColumnKind::Integer, true, &a.to_string()), key(ColumnKind::Integer, true, &b.to_string()));
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
        }

        #[test]
        fn decimals_sort_numerically(a in -1_000_000_000i64..1_000_000_000, b in -1_000_000_000i64..1_000_000_000, sa in 0u32..6, sb in 0u32..6) {
            // a / 10^sa as decimal text, compared exactly via cross-multiplication.
            let text = |v: i64, s: u32| {
                let sign = if v < 0 { "-" } else { "" };
                let abs = v.unsigned_abs().to_string();
                if s == 0 { return format!("{sign}{abs}"); }
                let padded = format!("{abs:0>width$}", width = s as usize + 1);
                let (w, f) = padded.split_at(padded.len() - s as usize);
                format!("{sign}{w}.{f}")
            };
            let lhs = i128::from(a) * 10i128.pow(sb);
            let rhs = i128::from(b) * 10i128.pow(sa);
            let (ka, kb) = (key(ColumnKind::Decimal, false, &text(a, sa)), key(ColumnKind::Decimal, false, &text(b, sb)));
            prop_assert_eq!(lhs.cmp(&rhs), ka.cmp(&kb), "{} vs {}", text(a, sa), text(b, sb));
        }

        #[test]
        fn byte_strings_sort_bytewise(a: Vec<u8>, b: Vec<u8>) {
            let enc = |v: &[u8]| { let mut o = Vec::new(); encode_key_cell(&mut o, ColumnKind::Binary, false, Some(v)); o };
            prop_assert_eq!(a.cmp(&b), enc(&a).cmp(&enc(&b)));
        }

        #[test]
        fn composite_keys_sort_lexicographically(a1: i32, a2: Vec<u8>, b1: i32, b2: Vec<u8>) {
            let enc = |x: i32, y: &[u8]| {
                let mut o = Vec::new();
                encode_key_cell(&mut o, ColumnKind::Integer, false, Some(x.to_string().as_bytes()));
                encode_key_cell(&mut o, ColumnKind::Text, false, Some(y));
                o
            };
            prop_assert_eq!((a1, &a2).cmp(&(b1, &b2)), enc(a1, &a2).cmp(&enc(b1, &b2)));
        }

        #[test]
        fn values_round_trip(cells: Vec<Option<Vec<u8>>>, file: u32, line: u64) {
            let mut out = Vec::new();
            encode_value(&mut out, cells.iter().map(|c| c.as_deref()), file, line);
            let (back, f, l) = decode_value(&out, cells.len()).unwrap();
            let back: Vec<Option<Vec<u8>>> = back.into_iter().map(|c| c.map(<[u8]>::to_vec)).collect();
            prop_assert_eq!(back, cells);
            prop_assert_eq!((f, l), (file, line));
        }
    }

    #[test]
    fn decimal_equal_values_encode_equal() {
        assert_eq!(
            key(ColumnKind::Decimal, false, "1.50"),
            key(ColumnKind::Decimal, false, "01.5")
        );
        assert_eq!(
            key(ColumnKind::Decimal, false, "0.000"),
            key(ColumnKind::Decimal, false, "-0")
        );
        assert!(key(ColumnKind::Decimal, false, "-0.01") < key(ColumnKind::Decimal, false, "0"));
        let mut null = Vec::new();
        encode_key_cell(&mut null, ColumnKind::Integer, false, None);
        assert!(null < key(ColumnKind::Integer, false, "-9223372036854775808"));
    }
}
