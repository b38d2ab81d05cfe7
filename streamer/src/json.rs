//! MySQL's binary JSON (the cells of JSON columns in row events) as JSON text for the target.
//!
//! Why not `serde_json::Value::try_from`: `mysql_common` refuses documents holding opaque
//! scalars, which MySQL stores whenever a JSON document is built from typed values
//! (`JSON_OBJECT('d', CURDATE())`, `CAST(… AS JSON)` of a DECIMAL), and a `serde_json` number
//! cannot keep a DECIMAL's scale (`9.00`). The text written here is what MySQL prints for the
//! same document: DECIMAL as an unquoted number with its scale, DATE / TIME / DATETIME as
//! quoted strings (`"2012-03-18 11:30:45.000000"`), any other opaque value as
//! `"base64:type<N>:<data>"`, strings escaped as JSON.

//!
//! Partial updates (MySQL `binlog_row_value_options=PARTIAL_JSON`, PARTIAL_UPDATE_ROWS events):
//! the after image of a JSON column that `JSON_SET`, `JSON_REPLACE` or `JSON_REMOVE` changed in
//! place holds only the changes, each an operation at a path (`$.a."b c"[2]`). They are applied,
//! in order, to the column's before image, which `binlog_row_image=FULL` always sends whole:
//! REPLACE sets the value at the path, INSERT adds an object member or puts an array element
//! at that index (the later ones move up), REMOVE takes it out.

use mysql_common::binlog::jsonb::{self, JsonContainer, JsonDom, JsonNumber, JsonScalar};
use mysql_common::binlog::jsondiff::{JsonDiff, JsonDiffOperation};

/// The JSON text of a binary JSON value; an error says why it does not decode.
pub fn json_text(value: jsonb::Value<'_>) -> Result<String, String> {
    let dom = value.parse().map_err(|e| format!("binary JSON: {e}"))?;
    Ok(text_of(&dom))
}

fn text_of(dom: &JsonDom) -> String {
    let mut out = String::new();
    write(&mut out, dom);
    out
}

/// The JSON text after `diffs` are applied to `before` (the column's before image).
pub fn apply_diffs(before: jsonb::Value<'_>, diffs: &[JsonDiff<'_>]) -> Result<String, String> {
    let mut dom = before.parse().map_err(|e| format!("binary JSON: {e}"))?;
    for diff in diffs {
        let path = diff.path_str();
        let legs = parse_path(&path).ok_or_else(|| format!("JSON path `{path}`"))?;
        let value = match diff.value() {
            Some(v) => Some(
                v.clone()
                    .parse()
                    .map_err(|e| format!("binary JSON at `{path}`: {e}"))?,
            ),
            None => None,
        };
        apply(&mut dom, &legs, diff.operation(), value)
            .map_err(|e| format!("partial JSON update at `{path}`: {e}"))?;
    }
    Ok(text_of(&dom))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Leg {
    Member(String),
    Index(usize),
    /// `[last-N]`.
    FromLast(usize),
}

impl Leg {
    /// An array leg as a position in an array of `len` elements (`last` of an empty array
    /// is 0, where an INSERT would put its element).
    fn resolve(&self, len: usize) -> Leg {
        match self {
            Leg::FromLast(n) => Leg::Index(len.saturating_sub(1).saturating_sub(*n)),
            other => other.clone(),
        }
    }
}

/// `$`, then `.name`, `."quoted name"` or `[n]` legs, as MySQL writes paths in its diffs.
fn parse_path(path: &str) -> Option<Vec<Leg>> {
    let rest = path.trim().strip_prefix('$')?;
    let b = rest.as_bytes();
    let mut legs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' if b.get(i + 1) == Some(&b'"') => {
                // A JSON string: find its closing quote, skipping escaped characters.
                let start = i + 1;
                let mut j = start + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                let key: String = serde_json::from_str(rest.get(start..=j)?).ok()?;
                legs.push(Leg::Member(key));
                i = j + 1;
            }
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    j += 1;
                }
                legs.push(Leg::Member(rest.get(start..j)?.to_owned()));
                i = j;
            }
            b'[' => {
                let close = i + rest[i..].find(']')?;
                let inside = rest[i + 1..close].trim();
                legs.push(match inside.strip_prefix("last") {
                    // `[last]`, `[last-N]`: counted from the array's end when applied.
                    Some(back) => {
                        let back = back.trim();
                        let n = match back.strip_prefix('-') {
                            Some(n) => n.trim().parse().ok()?,
                            None if back.is_empty() => 0,
                            None => return None,
                        };
                        Leg::FromLast(n)
                    }
                    None => Leg::Index(inside.parse().ok()?),
                });
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(legs)
}

fn apply(
    dom: &mut JsonDom,
    legs: &[Leg],
    op: JsonDiffOperation,
    value: Option<JsonDom>,
) -> Result<(), String> {
    let Some((last, parents)) = legs.split_last() else {
        // The whole document.
        return match (op, value) {
            (JsonDiffOperation::REPLACE, Some(v)) => {
                *dom = v;
                Ok(())
            }
            _ => Err("only a REPLACE may name the whole document".into()),
        };
    };
    let mut at = dom;
    for leg in parents {
        let leg = match &*at {
            JsonDom::Container(JsonContainer::Array(a)) => leg.resolve(a.len()),
            _ => leg.clone(),
        };
        at = match (at, &leg) {
            (JsonDom::Container(JsonContainer::Object(m)), Leg::Member(k)) => {
                m.get_mut(k).ok_or_else(|| format!("no member `{k}`"))?
            }
            (JsonDom::Container(JsonContainer::Array(a)), Leg::Index(n)) => {
                a.get_mut(*n).ok_or_else(|| format!("no element {n}"))?
            }
            _ => return Err("the path does not match the document".into()),
        };
    }
    let last = match &*at {
        JsonDom::Container(JsonContainer::Array(a)) => last.resolve(a.len()),
        _ => last.clone(),
    };
    match (at, &last, op, value) {
        (
            JsonDom::Container(JsonContainer::Object(m)),
            Leg::Member(k),
            JsonDiffOperation::REMOVE,
            _,
        ) => m
            .remove(k)
            .map(|_| ())
            .ok_or_else(|| format!("no member `{k}` to remove")),
        (JsonDom::Container(JsonContainer::Object(m)), Leg::Member(k), _, Some(v)) => {
            m.insert(k.clone(), v);
            Ok(())
        }
        (
            JsonDom::Container(JsonContainer::Array(a)),
            Leg::Index(n),
            JsonDiffOperation::REMOVE,
            _,
        ) => {
            if *n < a.len() {
                a.remove(*n);
                Ok(())
            } else {
                Err(format!("no element {n} to remove"))
            }
        }
        (
            JsonDom::Container(JsonContainer::Array(a)),
            Leg::Index(n),
            JsonDiffOperation::INSERT,
            Some(v),
        ) => {
            a.insert((*n).min(a.len()), v);
            Ok(())
        }
        (
            JsonDom::Container(JsonContainer::Array(a)),
            Leg::Index(n),
            JsonDiffOperation::REPLACE,
            Some(v),
        ) => {
            let slot = a
                .get_mut(*n)
                .ok_or_else(|| format!("no element {n} to replace"))?;
            *slot = v;
            Ok(())
        }
        _ => Err("the path does not match the document".into()),
    }
}

fn write(out: &mut String, dom: &JsonDom) {
    match dom {
        JsonDom::Container(JsonContainer::Array(items)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, item);
            }
            out.push(']');
        }
        JsonDom::Container(JsonContainer::Object(members)) => {
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                string(out, key);
                out.push_str(": ");
                write(out, value);
            }
            out.push('}');
        }
        JsonDom::Scalar(s) => scalar(out, s),
    }
}

fn scalar(out: &mut String, s: &JsonScalar) {
    match s {
        JsonScalar::Null => out.push_str("null"),
        JsonScalar::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        JsonScalar::Number(JsonNumber::Int(i)) => out.push_str(&i.to_string()),
        JsonScalar::Number(JsonNumber::Uint(u)) => out.push_str(&u.to_string()),
        JsonScalar::Number(JsonNumber::Decimal(d)) => out.push_str(&d.to_string()),
        // MySQL's JSON holds finite doubles only; the shortest text that reads back the same.
        JsonScalar::Number(JsonNumber::Double(d)) => match serde_json::Number::from_f64(*d) {
            Some(n) => out.push_str(&n.to_string()),
            None => out.push_str("null"),
        },
        JsonScalar::DateTime(t) => string(out, &format!("{t:.6}")),
        JsonScalar::Opaque(o) => string(out, &o.to_string()),
        JsonScalar::String(text) => string(out, text),
    }
}

fn string(out: &mut String, text: &str) {
    // Serialising a &str cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use mysql_common::binlog::jsonb::{JsonbString, OpaqueValue, Value};
    use mysql_common::constants::ColumnType;

    use super::*;

    fn text(v: Value<'_>) -> String {
        json_text(v).unwrap_or_else(|e| e)
    }

    #[test]
    fn scalars_print_as_mysql_prints_them() {
        assert_eq!(text(Value::I32(-5)), "-5");
        assert_eq!(text(Value::U64(u64::MAX)), "18446744073709551615");
        assert_eq!(text(Value::F64(0.1)), "0.1");
        assert_eq!(text(Value::Bool(false)), "false");
        assert_eq!(text(Value::Null), "null");
        assert_eq!(
            text(Value::String(JsonbString::new(&b"a\"b\n"[..]))),
            r#""a\"b\n""#
        );
    }

    fn diff(op: u8, path: &str, value: Option<&[u8]>) -> JsonDiff<'static> {
        use mysql_common::io::ParseBuf;
        use mysql_common::proto::MyDeserialize;
        // operation u8 | path (length-encoded) | [value: length-encoded binary JSON]
        let mut bytes = vec![op, path.len() as u8];
        bytes.extend_from_slice(path.as_bytes());
        if let Some(v) = value {
            bytes.push(v.len() as u8);
            bytes.extend_from_slice(v);
        }
        JsonDiff::deserialize((), &mut ParseBuf(&bytes))
            .map(JsonDiff::into_owned)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `{"a": [1, 2], "b c": "x"}` as MySQL's binary JSON writes it.
    fn document() -> Value<'static> {
        use mysql_common::io::ParseBuf;
        use mysql_common::proto::MyDeserialize;
        let bytes: Vec<u8> = vec![
            0x00, // small object
            2, 0, 34, 0, // 2 members, 34 bytes (offsets count from here)
            18, 0, 1, 0, // key "a" at 18
            19, 0, 3, 0, // key "b c" at 19
            0x02, 22, 0, // "a": small array at 22
            0x0c, 32, 0, // "b c": string at 32
            b'a', b'b', b' ', b'c', //
            2, 0, 10, 0, // array: 2 elements, 10 bytes
            0x05, 1, 0, // int16 1 (inlined)
            0x05, 2, 0, // int16 2 (inlined)
            1, b'x', // string "x"
        ];
        Value::deserialize((), &mut ParseBuf(&bytes))
            .map(Value::into_owned)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn partial_updates_apply_to_the_before_image() {
        assert_eq!(
            json_text(document()).unwrap_or_default(),
            r#"{"a": [1, 2], "b c": "x"}"#
        );
        let int7 = [0x05u8, 7, 0];
        let string_y = [0x0cu8, 1, b'y'];
        let cases: [(Vec<JsonDiff<'static>>, &str); 5] = [
            (
                vec![diff(0, "$.a[1]", Some(&int7))],
                r#"{"a": [1, 7], "b c": "x"}"#,
            ),
            (
                vec![diff(1, "$.a[0]", Some(&int7))],
                r#"{"a": [7, 1, 2], "b c": "x"}"#,
            ),
            (vec![diff(2, "$.\"b c\"", None)], r#"{"a": [1, 2]}"#),
            (
                vec![diff(1, "$.d", Some(&string_y)), diff(2, "$.a[0]", None)],
                r#"{"a": [2], "b c": "x", "d": "y"}"#,
            ),
            (vec![diff(0, "$", Some(&string_y))], r#""y""#),
        ];
        for (diffs, want) in cases {
            assert_eq!(apply_diffs(document(), &diffs).as_deref(), Ok(want));
        }
        let missing = apply_diffs(document(), &[diff(0, "$.z.q", Some(&int7))]);
        assert!(missing.is_err_and(|e| e.contains("no member `z`")));
        assert_eq!(
            parse_path("$.a[12].\"x.y\""),
            Some(vec![
                Leg::Member("a".into()),
                Leg::Index(12),
                Leg::Member("x.y".into()),
            ])
        );
        assert_eq!(parse_path("a.b"), None);
        let last = apply_diffs(document(), &[diff(0, "$.a[last]", Some(&int7))]);
        assert_eq!(last.as_deref(), Ok(r#"{"a": [1, 7], "b c": "x"}"#));
        let before_last = apply_diffs(document(), &[diff(2, "$.a[last-1]", None)]);
        assert_eq!(before_last.as_deref(), Ok(r#"{"a": [2], "b c": "x"}"#));
    }

    #[test]
    fn opaque_values_are_not_refused() {
        // DATE 2012-03-18 packed as MySQL packs it: ((year * 13 + month) << 5 | day) << 41.
        let packed: i64 = (((2012 * 13 + 3) << 5) | 18) << 41;
        let date = OpaqueValue::new(ColumnType::MYSQL_TYPE_DATE, packed.to_le_bytes().to_vec());
        assert_eq!(text(Value::Opaque(date)), r#""2012-03-18""#);
        let other = OpaqueValue::new(ColumnType::MYSQL_TYPE_VARCHAR, b"U".to_vec());
        assert_eq!(text(Value::Opaque(other)), r#""base64:type15:VQ==""#);
    }
}
