//! MySQL's binary JSON (the cells of JSON columns in row events) as JSON text for the target.
//!
//! Why not `serde_json::Value::try_from`: `mysql_common` refuses documents holding opaque
//! scalars, which MySQL stores whenever a JSON document is built from typed values
//! (`JSON_OBJECT('d', CURDATE())`, `CAST(… AS JSON)` of a DECIMAL), and a `serde_json` number
//! cannot keep a DECIMAL's scale (`9.00`). The text written here is what MySQL prints for the
//! same document: DECIMAL as an unquoted number with its scale, DATE / TIME / DATETIME as
//! quoted strings (`"2012-03-18 11:30:45.000000"`), any other opaque value as
//! `"base64:type<N>:<data>"`, strings escaped as JSON.

use mysql_common::binlog::jsonb::{self, JsonContainer, JsonDom, JsonNumber, JsonScalar};

/// The JSON text of a binary JSON value; an error says why it does not decode.
pub fn json_text(value: jsonb::Value<'_>) -> Result<String, String> {
    let dom = value.parse().map_err(|e| format!("binary JSON: {e}"))?;
    let mut out = String::new();
    write(&mut out, &dom);
    Ok(out)
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
