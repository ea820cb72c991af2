//! The operators of the rules SQL on [`Value`]s, with AWS's tables:
//! `Undefined` in, `Undefined` out; `+` concatenates when either side is a
//! string; `- * / %` read numeric strings and then compute in decimals;
//! `Int` with `Int` stays `Int` (division truncates); ordering compares
//! numbers (numeric strings included) and nothing else; `=` never converts.

use crate::ast::BinaryOp;
use crate::decimal;
use crate::value::{Num, Value, json_eq, object_eq};
use std::cmp::Ordering;

pub(crate) fn binary(op: BinaryOp, a: Value, b: Value) -> Value {
    if a.is_undefined() || b.is_undefined() {
        return Value::Undefined;
    }
    match op {
        BinaryOp::And => logic(a, b, |x, y| x && y),
        BinaryOp::Or => logic(a, b, |x, y| x || y),
        BinaryOp::Eq => Value::Bool(equals(&a, &b)),
        BinaryOp::Ne => Value::Bool(!equals(&a, &b)),
        BinaryOp::Lt => order(&a, &b, Ordering::is_lt),
        BinaryOp::Le => order(&a, &b, Ordering::is_le),
        BinaryOp::Gt => order(&a, &b, Ordering::is_gt),
        BinaryOp::Ge => order(&a, &b, Ordering::is_ge),
        BinaryOp::Add if matches!(a, Value::String(_)) || matches!(b, Value::String(_)) => {
            match (a.to_sql_string(), b.to_sql_string()) {
                (Some(x), Some(y)) => Value::String(x + &y),
                _ => Value::Undefined,
            }
        }
        BinaryOp::Add => match (&a, &b) {
            (Value::Int(_) | Value::Decimal(_), Value::Int(_) | Value::Decimal(_)) => {
                arithmetic(op, &a, &b)
            }
            _ => Value::Undefined,
        },
        BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => arithmetic(op, &a, &b),
    }
}

fn logic(a: Value, b: Value, f: fn(bool, bool) -> bool) -> Value {
    match (a.to_bool(), b.to_bool()) {
        (Some(x), Some(y)) => Value::Bool(f(x, y)),
        _ => Value::Undefined,
    }
}

pub(crate) fn not(a: Value) -> Value {
    a.to_bool().map_or(Value::Undefined, |b| Value::Bool(!b))
}

pub(crate) fn neg(a: Value) -> Value {
    match a.to_num() {
        Some((Num::Int(n), false)) => n
            .checked_neg()
            .map_or_else(|| Value::decimal(-(n as f64)), Value::Int),
        Some((n, _)) => Value::decimal(-n.as_f64()),
        None => Value::Undefined,
    }
}

/// `=` for two defined values: same type and same value, numbers by value.
pub(crate) fn equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Int(_) | Value::Decimal(_), Value::Int(_) | Value::Decimal(_)) => {
            num_of(a).as_f64() == num_of(b).as_f64()
        }
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => object_eq(x, y),
        _ => false,
    }
}

fn num_of(v: &Value) -> Num {
    match v {
        Value::Int(n) => Num::Int(*n),
        Value::Decimal(x) => Num::Dec(*x),
        _ => Num::Dec(f64::NAN),
    }
}

fn order(a: &Value, b: &Value, f: fn(Ordering) -> bool) -> Value {
    let (Some((x, _)), Some((y, _))) = (a.to_num(), b.to_num()) else {
        return Value::Undefined;
    };
    let ord = match (x, y) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (x, y) => x.as_f64().partial_cmp(&y.as_f64()),
    };
    ord.map_or(Value::Undefined, |o| Value::Bool(f(o)))
}

/// `- * / %` (and `+` on numbers): `Int` op `Int` is `Int` unless a string
/// was involved; anything else is computed as decimals.
pub(crate) fn arithmetic(op: BinaryOp, a: &Value, b: &Value) -> Value {
    let (Some((x, xs)), Some((y, ys))) = (a.to_num(), b.to_num()) else {
        return Value::Undefined;
    };
    if let (Num::Int(x), Num::Int(y), false) = (x, y, xs || ys) {
        let exact = match op {
            BinaryOp::Add => x.checked_add(y),
            BinaryOp::Sub => x.checked_sub(y),
            BinaryOp::Mul => x.checked_mul(y),
            BinaryOp::Div if y == 0 => return Value::Undefined,
            BinaryOp::Div => x.checked_div(y),
            BinaryOp::Rem if y == 0 => return Value::Undefined,
            BinaryOp::Rem => x.checked_rem(y),
            _ => return Value::Undefined,
        };
        if let Some(n) = exact {
            return Value::Int(n);
        }
        // Overflow: AWS integers have 34 digits; carry on as a decimal.
    }
    let (x, y) = (x.as_f64(), y.as_f64());
    Value::decimal(match op {
        BinaryOp::Add => decimal::add(x, y),
        BinaryOp::Sub => decimal::sub(x, y),
        BinaryOp::Mul => decimal::mul(x, y),
        BinaryOp::Div => decimal::div(x, y),
        BinaryOp::Rem => decimal::rem(x, y),
        _ => f64::NAN,
    })
}
