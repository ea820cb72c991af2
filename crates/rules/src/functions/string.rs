//! String functions: `concat`, `lower`, `upper`, `substring`,
//! `startswith`, `endswith`, `regexp_matches`, `regexp_replace`.
//! Non-string arguments go through AWS's standard string conversion;
//! `Null` and `Undefined` have none, so they make the result `Undefined`.
//! Indices count Unicode characters.

use crate::value::{Num, Value};
use regex::Regex;
use serde_json::Value as Json;

/// `concat()`: with an array among the arguments, one array of all of
/// them (arrays spliced in); otherwise the concatenated string forms.
pub(super) fn concat(args: Vec<Value>) -> Value {
    if args.is_empty() || args.iter().any(Value::is_undefined) {
        return Value::Undefined;
    }
    if args.len() == 1 && matches!(args[0], Value::Array(_)) {
        return args.into_iter().next().unwrap_or(Value::Undefined);
    }
    if args.iter().any(|a| matches!(a, Value::Array(_))) {
        let mut out: Vec<Json> = Vec::new();
        for a in args {
            match a {
                Value::Array(items) => out.extend(items),
                other => out.extend(other.into_json()),
            }
        }
        return Value::Array(out);
    }
    let mut out = String::new();
    for a in &args {
        match a.to_sql_string() {
            Some(s) => out.push_str(&s),
            None => return Value::Undefined,
        }
    }
    Value::String(out)
}

pub(super) fn map(v: &Value, f: impl Fn(&str) -> String) -> Value {
    v.to_sql_string()
        .map_or(Value::Undefined, |s| Value::String(f(&s)))
}

/// An index argument: numbers and numeric strings, decimals truncated.
fn index_arg(v: &Value) -> Option<i64> {
    match v.to_num()?.0 {
        Num::Int(n) => Some(n),
        // `as` saturates, which is the clamping substring() wants anyway.
        Num::Dec(x) => Some(x.trunc() as i64),
    }
}

/// `substring(s, start[, end])`: 0-based, end exclusive, both clamped to
/// the string; an end at or before the start gives "".
pub(super) fn substring(args: &[Value]) -> Value {
    let Some(s) = args[0].to_sql_string() else {
        return Value::Undefined;
    };
    let Some(start) = index_arg(&args[1]) else {
        return Value::Undefined;
    };
    let len = s.chars().count() as i64;
    let end = match args.get(2) {
        Some(e) => match index_arg(e) {
            Some(e) => e,
            None => return Value::Undefined,
        },
        None => len,
    };
    let start = start.clamp(0, len) as usize;
    let end = end.clamp(0, len) as usize;
    if end <= start {
        return Value::String(String::new());
    }
    Value::String(s.chars().skip(start).take(end - start).collect())
}

pub(super) fn affix(args: &[Value], f: fn(&str, &str) -> bool) -> Value {
    match (args[0].to_sql_string(), args[1].to_sql_string()) {
        (Some(s), Some(p)) => Value::Bool(f(&s, &p)),
        _ => Value::Undefined,
    }
}

fn runtime_regex(pattern: &Value) -> Option<Regex> {
    Regex::new(&pattern.to_sql_string()?).ok()
}

pub(super) fn regexp_matches(compiled: Option<&Regex>, args: &[Value]) -> Value {
    let Some(s) = args[0].to_sql_string() else {
        return Value::Undefined;
    };
    let owned;
    let re = match compiled {
        Some(re) => re,
        None => match runtime_regex(&args[1]) {
            Some(re) => {
                owned = re;
                &owned
            }
            None => return Value::Undefined,
        },
    };
    Value::Bool(re.is_match(&s))
}

pub(super) fn regexp_replace(
    compiled: Option<&Regex>,
    replacement: Option<&str>,
    args: &[Value],
) -> Value {
    let Some(s) = args[0].to_sql_string() else {
        return Value::Undefined;
    };
    let owned;
    let re = match compiled {
        Some(re) => re,
        None => match runtime_regex(&args[1]) {
            Some(re) => {
                owned = re;
                &owned
            }
            None => return Value::Undefined,
        },
    };
    let translated;
    let rep = match replacement {
        Some(r) => r,
        None => match args[2]
            .to_sql_string()
            .and_then(|r| java_replacement(&r, re.captures_len()))
        {
            Some(r) => {
                translated = r;
                &translated
            }
            None => return Value::Undefined,
        },
    };
    Value::String(re.replace_all(&s, rep).into_owned())
}

/// Java's replacement syntax (`$1`, `${name}`, `\$`), which AWS uses, in
/// the `regex` crate's syntax; `None` where Java would throw. `groups`
/// counts group 0. Java reads `$12` as group 12 only if that group
/// exists, else as group 1 followed by "2".
pub(crate) fn java_replacement(java: &str, groups: usize) -> Option<String> {
    let mut out = String::with_capacity(java.len());
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                '$' => out.push_str("$$"),
                other => out.push(other),
            },
            '$' => match chars.next()? {
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next()? {
                            '}' => break,
                            ch if ch.is_ascii_alphanumeric() => name.push(ch),
                            _ => return None,
                        }
                    }
                    if name.is_empty() || !name.starts_with(|ch: char| ch.is_ascii_alphabetic()) {
                        return None;
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                d @ '0'..='9' => {
                    let mut group = d.to_digit(10)? as usize;
                    if group >= groups {
                        return None;
                    }
                    while let Some(next) = chars.peek().and_then(|ch| ch.to_digit(10)) {
                        let longer = group * 10 + next as usize;
                        if longer >= groups {
                            break;
                        }
                        group = longer;
                        chars.next();
                    }
                    out.push_str(&format!("${{{group}}}"));
                }
                _ => return None,
            },
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::java_replacement;

    #[test]
    fn java_replacements_translate() {
        assert_eq!(java_replacement("$1", 2).as_deref(), Some("${1}"));
        assert_eq!(java_replacement("$1a", 2).as_deref(), Some("${1}a"));
        assert_eq!(java_replacement("$12", 2).as_deref(), Some("${1}2"));
        assert_eq!(java_replacement("$12", 13).as_deref(), Some("${12}"));
        assert_eq!(java_replacement("\\$5", 1).as_deref(), Some("$$5"));
        assert_eq!(java_replacement("${word}", 2).as_deref(), Some("${word}"));
        assert_eq!(java_replacement("$2", 2), None);
        assert_eq!(java_replacement("$x", 2), None);
        assert_eq!(java_replacement("end\\", 1), None);
    }
}
