//! Values as the rules engine sees them: JSON's types plus AWS's
//! `Undefined` (a missing field, or a function given arguments it cannot
//! use), and numbers split into `Int` and `Decimal`.
//!
//! Following SQL version 2016-03-23, a whole-number decimal (`10.0`) is
//! treated as the `Int` `10`; [`Value::decimal`] applies that rule
//! everywhere a decimal is made. Decimals are IEEE doubles here, where AWS
//! keeps 34 significant digits: `+ - * / %` on decimals are computed on the
//! shortest decimal form of their operands (see [`crate::decimal`]), so
//! `0.1 + 0.2` is `0.3` as in AWS, but results beyond ~17 significant
//! digits differ.
//!
//! Arrays and objects hold plain JSON: `Undefined` cannot appear inside
//! them, because it is dropped when they are built.

use serde_json::{Map, Number};

pub type Json = serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Undefined,
    Null,
    Bool(bool),
    Int(i64),
    /// Always finite and never a whole number that fits an `i64`.
    Decimal(f64),
    String(String),
    Array(Vec<Json>),
    Object(Map<String, Json>),
}

/// A number taken out of a value for arithmetic or comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Dec(f64),
}

impl Num {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::Int(n) => n as f64,
            Num::Dec(x) => x,
        }
    }

    pub(crate) fn into_value(self) -> Value {
        match self {
            Num::Int(n) => Value::Int(n),
            Num::Dec(x) => Value::decimal(x),
        }
    }
}

/// 2^63 as a double: the first whole double outside the `i64` range.
const I64_BOUND: f64 = 9_223_372_036_854_775_808.0;

impl Value {
    /// A decimal result: non-finite values (division by zero, a square
    /// root of a negative number) are `Undefined`, whole numbers are `Int`.
    pub fn decimal(x: f64) -> Value {
        if !x.is_finite() {
            Value::Undefined
        } else if x.fract() == 0.0 && (-I64_BOUND..I64_BOUND).contains(&x) {
            Value::Int(x as i64)
        } else {
            Value::Decimal(x)
        }
    }

    pub fn from_json(j: &Json) -> Value {
        match j {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => number(n),
            Json::String(s) => Value::String(s.clone()),
            Json::Array(a) => Value::Array(a.clone()),
            Json::Object(o) => Value::Object(o.clone()),
        }
    }

    pub fn from_json_owned(j: Json) -> Value {
        match j {
            Json::String(s) => Value::String(s),
            Json::Array(a) => Value::Array(a),
            Json::Object(o) => Value::Object(o),
            other => Value::from_json(&other),
        }
    }

    /// The JSON form, `None` for `Undefined`.
    pub fn into_json(self) -> Option<Json> {
        Some(match self {
            Value::Undefined => return None,
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(b),
            Value::Int(n) => Json::Number(n.into()),
            Value::Decimal(x) => Number::from_f64(x).map_or(Json::Null, Json::Number),
            Value::String(s) => Json::String(s),
            Value::Array(a) => Json::Array(a),
            Value::Object(o) => Json::Object(o),
        })
    }

    pub fn is_undefined(&self) -> bool {
        matches!(self, Value::Undefined)
    }

    /// A number for operators and math functions: `Int`, `Decimal`, or a
    /// string that reads as a decimal (AWS's `^-?\d+(\.\d+)?(E-?\d+)?$`).
    /// The flag tells whether it came from a string, which makes AWS
    /// compute in decimals.
    pub(crate) fn to_num(&self) -> Option<(Num, bool)> {
        match self {
            Value::Int(n) => Some((Num::Int(*n), false)),
            Value::Decimal(x) => Some((Num::Dec(*x), false)),
            Value::String(s) => parse_decimal(s).map(|n| (n, true)),
            _ => None,
        }
    }

    /// AWS's standard conversion to a string; `None` for `Null` and
    /// `Undefined`, which have no string form.
    pub fn to_sql_string(&self) -> Option<String> {
        match self {
            Value::Undefined | Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(n) => Some(n.to_string()),
            Value::Decimal(x) => Some(decimal_text(*x)),
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => serde_json::to_string(a).ok(),
            Value::Object(o) => serde_json::to_string(o).ok(),
        }
    }

    /// AWS's conversion to a boolean: booleans, and the strings "true" and
    /// "false" in any case.
    pub(crate) fn to_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// Element `index` (an array position, a string's character or an
    /// object key), as `get()` and `[…]` read it.
    pub(crate) fn get(self, index: &Value) -> Value {
        match self {
            Value::Array(mut a) => match to_index(index) {
                Some(i) if i < a.len() => Value::from_json_owned(a.swap_remove(i)),
                _ => Value::Undefined,
            },
            Value::String(s) => char_at(&s, index),
            Value::Object(mut o) => match index {
                Value::String(k) => o.remove(k).map_or(Value::Undefined, Value::from_json_owned),
                _ => Value::Undefined,
            },
            _ => Value::Undefined,
        }
    }
}

/// [`Value::get`] on borrowed JSON, without copying what is not read.
pub(crate) enum Cursor<'a> {
    Borrowed(&'a Json),
    Owned(Value),
}

impl<'a> Cursor<'a> {
    pub(crate) fn field(self, name: &str) -> Cursor<'a> {
        match self {
            Cursor::Borrowed(Json::Object(o)) => match o.get(name) {
                Some(j) => Cursor::Borrowed(j),
                None => Cursor::Owned(Value::Undefined),
            },
            Cursor::Owned(v @ Value::Object(_)) => {
                Cursor::Owned(v.get(&Value::String(name.to_owned())))
            }
            _ => Cursor::Owned(Value::Undefined),
        }
    }

    pub(crate) fn index(self, index: &Value) -> Cursor<'a> {
        match self {
            Cursor::Borrowed(Json::Array(a)) => match to_index(index).and_then(|i| a.get(i)) {
                Some(j) => Cursor::Borrowed(j),
                None => Cursor::Owned(Value::Undefined),
            },
            Cursor::Borrowed(Json::Object(o)) => match index {
                Value::String(k) => o
                    .get(k)
                    .map_or(Cursor::Owned(Value::Undefined), Cursor::Borrowed),
                _ => Cursor::Owned(Value::Undefined),
            },
            Cursor::Borrowed(Json::String(s)) => Cursor::Owned(char_at(s, index)),
            Cursor::Borrowed(_) => Cursor::Owned(Value::Undefined),
            Cursor::Owned(v) => Cursor::Owned(v.get(index)),
        }
    }

    pub(crate) fn into_value(self) -> Value {
        match self {
            Cursor::Borrowed(j) => Value::from_json(j),
            Cursor::Owned(v) => v,
        }
    }
}

fn to_index(index: &Value) -> Option<usize> {
    let (n, _) = index.to_num()?;
    let i = match n {
        Num::Int(i) => i,
        Num::Dec(x) => x.trunc() as i64,
    };
    usize::try_from(i).ok()
}

fn char_at(s: &str, index: &Value) -> Value {
    match to_index(index).and_then(|i| s.chars().nth(i)) {
        Some(c) => Value::String(c.to_string()),
        None => Value::Undefined,
    }
}

fn number(n: &Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Int(i)
    } else {
        Value::decimal(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// The text of a decimal: JSON's shortest form (`0.1`, `1e-7`).
pub(crate) fn decimal_text(x: f64) -> String {
    Number::from_f64(x).map_or_else(|| x.to_string(), |n| n.to_string())
}

/// Reads `s` as AWS reads a decimal in a string:
/// `^-?\d+(\.\d+)?((?i)E-?\d+)?$`.
pub(crate) fn parse_decimal(s: &str) -> Option<Num> {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |from: usize| {
        let mut j = from;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let int_end = digits(i);
    if int_end == i {
        return None;
    }
    i = int_end;
    let mut integral = true;
    if i < b.len() && b[i] == b'.' {
        let end = digits(i + 1);
        if end == i + 1 {
            return None;
        }
        integral = false;
        i = end;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && b[j] == b'-' {
            j += 1;
        }
        let end = digits(j);
        if end == j {
            return None;
        }
        integral = false;
        i = end;
    }
    if i != b.len() {
        return None;
    }
    if integral && let Ok(n) = s.parse::<i64>() {
        return Some(Num::Int(n));
    }
    match Value::decimal(s.parse::<f64>().ok()?) {
        Value::Int(n) => Some(Num::Int(n)),
        Value::Decimal(x) => Some(Num::Dec(x)),
        _ => None,
    }
}

/// Equality of JSON values with numbers compared by value (`1` = `1.0`),
/// object keys in any order.
pub(crate) fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => num_eq(number(x), number(y)),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Json::Object(x), Json::Object(y)) => object_eq(x, y),
        _ => a == b,
    }
}

pub(crate) fn object_eq(x: &Map<String, Json>, y: &Map<String, Json>) -> bool {
    x.len() == y.len()
        && x.iter()
            .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
}

fn num_eq(a: Value, b: Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (a, b) => match (a.to_num(), b.to_num()) {
            (Some((x, _)), Some((y, _))) => x.as_f64() == y.as_f64(),
            _ => false,
        },
    }
}
