//! MariaDB's compressed events (`log_bin_compress=ON`): inflated into the plain events they
//! stand for, so that the rest of the reader decodes them as any other.
//!
//! Layout (MariaDB 10.2+; checked against a MariaDB 10.11 binlog). The event keeps the plain
//! event's header and post-header; only one part of its body is compressed:
//!
//! ```text
//! QUERY_COMPRESSED (165):          post-header (13) | status vars | db name | NUL | C(query text)
//! WRITE/UPDATE/DELETE_ROWS_
//!   COMPRESSED_V1 (166/167/168):   table id (6) | flags (2)
//!   COMPRESSED (169/170/171, v2):  table id (6) | flags (2) | extra length (2, itself included) | extra
//!   then:                          column count (lenenc) | columns bitmap | [UPDATE: after-image bitmap]
//!                                  | C(row images)
//! C(x):  header u8 (0x80 | algorithm << 4 | n; algorithm 0 = zlib) | length of x (n bytes,
//!        big-endian) | zlib stream of x
//! ```
//!
//! The plain event is rebuilt with the same header (type and size changed) and, when the binlog
//! carries checksums, a CRC32 of its own; the compressed event's CRC32 was checked before.

use std::io::Read;

use mysql_async::binlog::events::Event;

use crate::event::event_type as et;

/// The plain event type a compressed one stands for.
pub fn plain_type(kind: u8) -> Option<u8> {
    Some(match kind {
        165 => et::QUERY,
        166 => et::WRITE_ROWS_V1,
        167 => et::UPDATE_ROWS_V1,
        168 => et::DELETE_ROWS_V1,
        169 => et::WRITE_ROWS_V2,
        170 => et::UPDATE_ROWS_V2,
        171 => et::DELETE_ROWS_V2,
        _ => return None,
    })
}

/// No compressed part inflates to more than a packet can hold (`max_allowed_packet` ≤ 1 GiB).
const MAX_INFLATED: usize = 1 << 30;

/// The plain event `ev` (a compressed one) stands for; an error says what does not decode.
pub fn inflate(ev: &Event) -> Result<Event, String> {
    let h = ev.header();
    let kind = h.event_type_raw();
    let plain = plain_type(kind).ok_or_else(|| format!("event type {kind} is not compressed"))?;
    let body = ev.data();
    let short = || format!("a compressed event (type {kind}) too short to decode");
    let at = if plain == et::QUERY {
        let db_len = usize::from(*body.get(8).ok_or_else(short)?);
        let vars = usize::from(u16::from_le_bytes(
            body.get(11..13)
                .ok_or_else(short)?
                .try_into()
                .map_err(|_| short())?,
        ));
        13 + vars + db_len + 1
    } else {
        let mut at = 8;
        if plain >= et::WRITE_ROWS_V2 {
            let extra = u16::from_le_bytes(
                body.get(8..10)
                    .ok_or_else(short)?
                    .try_into()
                    .map_err(|_| short())?,
            );
            at += usize::from(extra.max(2));
        }
        let (columns, len) = lenenc(body.get(at..).ok_or_else(short)?).ok_or_else(short)?;
        let bitmap = usize::try_from(columns.div_ceil(8)).map_err(|_| short())?;
        let bitmaps = if plain == et::UPDATE_ROWS_V1 || plain == et::UPDATE_ROWS_V2 {
            2
        } else {
            1
        };
        at + len + bitmap * bitmaps
    };
    let inflated = inflate_part(body.get(at..).ok_or_else(short)?)
        .map_err(|e| format!("a compressed event (type {kind}): {e}"))?;
    let checksum = ev.checksum().is_some();
    let size = 19 + at + inflated.len() + if checksum { 4 } else { 0 };
    let size = u32::try_from(size).map_err(|_| "an inflated event over 4 GiB".to_owned())?;
    let mut bytes = Vec::with_capacity(size as usize);
    bytes.extend_from_slice(&h.timestamp().to_le_bytes());
    bytes.push(plain);
    bytes.extend_from_slice(&h.server_id().to_le_bytes());
    bytes.extend_from_slice(&size.to_le_bytes());
    bytes.extend_from_slice(&h.log_pos().to_le_bytes());
    bytes.extend_from_slice(&h.flags_raw().to_le_bytes());
    bytes.extend_from_slice(&body[..at]);
    bytes.extend_from_slice(&inflated);
    if checksum {
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
    }
    Event::read(ev.fde(), &bytes[..]).map_err(|e| format!("an inflated event (type {kind}): {e}"))
}

/// A length-encoded integer and how many bytes it took.
fn lenenc(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let n = match first {
        0..=250 => return Some((u64::from(first), 1)),
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        _ => return None,
    };
    let mut value = [0u8; 8];
    value[..n].copy_from_slice(b.get(1..1 + n)?);
    Some((u64::from_le_bytes(value), 1 + n))
}

fn inflate_part(part: &[u8]) -> Result<Vec<u8>, String> {
    let header = *part.first().ok_or("nothing after the header")?;
    let algorithm = (header >> 4) & 0x07;
    if header & 0x80 == 0 || algorithm != 0 {
        return Err(format!("unknown compression (header byte {header:#04x})"));
    }
    let n = usize::from(header & 0x07);
    if n == 0 || n > 4 {
        return Err(format!("a length of {n} bytes"));
    }
    let len = part
        .get(1..1 + n)
        .ok_or("cut in the length")?
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    if len > MAX_INFLATED {
        return Err(format!("{len} bytes inflated"));
    }
    let mut out = Vec::with_capacity(len);
    flate2::read::ZlibDecoder::new(&part[1 + n..])
        .take(len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("zlib: {e}"))?;
    if out.len() != len {
        return Err(format!(
            "{} bytes inflated where {len} were announced",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_inflate_to_their_announced_length() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"CREATE TABLE d.c (id INT)").unwrap_or(());
        let data = z.finish().unwrap_or_default();
        let mut part = vec![0x81, 25];
        part.extend_from_slice(&data);
        assert_eq!(
            inflate_part(&part).as_deref(),
            Ok(&b"CREATE TABLE d.c (id INT)"[..])
        );
        part[1] = 24;
        assert!(inflate_part(&part).unwrap_err().contains("announced"));
        assert!(
            inflate_part(&[0x91, 1, 0])
                .unwrap_err()
                .contains("unknown compression")
        );
        assert_eq!(lenenc(&[0xFC, 0x2C, 0x01]), Some((300, 3)));
    }
}
