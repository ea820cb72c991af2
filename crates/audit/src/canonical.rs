//! The canonical JSON encoding records are hashed in (specified in
//! `docs/audit-log.md`): no whitespace, object members sorted by the bytes
//! of their names, strings escaped minimally, integers only. It is written
//! here by hand rather than through a serializer so that its bytes do not
//! depend on serializer settings or feature flags elsewhere in the build.

use serde_json::{Map, Value};

/// Nesting deeper than this in `details` is refused.
pub(crate) const MAX_DEPTH: usize = 32;

/// Appends `s` as a JSON string: `"` and `\` escaped with a backslash,
/// U+0008, U+0009, U+000A, U+000C and U+000D as `\b \t \n \f \r`, other
/// characters below U+0020 as `\u00xx` (lowercase hex), everything else
/// as raw UTF-8.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the canonical encoding of an object. Fails on a number that is
/// not an integer (floating-point numbers have no agreed canonical
/// spelling) and on nesting deeper than [`MAX_DEPTH`].
pub(crate) fn write_object(out: &mut String, map: &Map<String, Value>) -> Result<(), String> {
    write_map(out, map, 0)
}

fn write_nested(out: &mut String, value: &Value, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else {
                return Err(format!(
                    "{n} is not an integer; write fractional values as strings"
                ));
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_nested(out, item, depth + 1)?;
            }
            out.push(']');
        }
        Value::Object(map) => write_map(out, map, depth)?,
    }
    Ok(())
}

fn write_map(out: &mut String, map: &Map<String, Value>, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    // Sorted here, whatever order the map iterates in.
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (i, (name, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, name);
        out.push(':');
        write_nested(out, value, depth + 1)?;
    }
    out.push('}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: &Value) -> Result<String, String> {
        let mut s = String::new();
        write_nested(&mut s, v, 0).map(|()| s)
    }

    #[test]
    fn sorts_members_by_bytes_and_drops_whitespace() {
        let v = json!({ "b": [1, -2, true, null], "a": { "é": "x", "Z": {} }, "B": "" });
        assert_eq!(
            enc(&v).unwrap(),
            r#"{"B":"","a":{"Z":{},"é":"x"},"b":[1,-2,true,null]}"#
        );
    }

    #[test]
    fn escapes_minimally_like_compact_serde_json() {
        let s = "q\" b\\ \u{8}\t\n\u{c}\r \u{1} \u{1f} \u{7f} / é \u{2028}";
        let v = Value::String(s.into());
        let ours = enc(&v).unwrap();
        assert_eq!(
            ours,
            "\"q\\\" b\\\\ \\b\\t\\n\\f\\r \\u0001 \\u001f \u{7f} / é \u{2028}\""
        );
        assert_eq!(ours, serde_json::to_string(&v).unwrap());
    }

    #[test]
    fn refuses_fractions_and_deep_nesting() {
        assert!(enc(&json!({ "t": 21.5 })).is_err());
        assert_eq!(enc(&json!(u64::MAX)).unwrap(), u64::MAX.to_string());
        assert_eq!(enc(&json!(i64::MIN)).unwrap(), i64::MIN.to_string());
        let mut deep = json!(1);
        for _ in 0..=MAX_DEPTH + 1 {
            deep = json!([deep]);
        }
        assert!(enc(&deep).is_err());
    }
}
