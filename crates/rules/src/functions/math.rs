//! Math functions: `abs`, `round`, `floor`, `ceil`, `power`, `sqrt`, `mod`.
//! They accept numbers and numeric strings; anything else is `Undefined`,
//! and so are results that are not finite (`sqrt(-1)`).

use crate::ast::BinaryOp;
use crate::ops;
use crate::value::{Num, Value};

fn num(v: &Value) -> Option<Num> {
    v.to_num().map(|(n, _)| n)
}

pub(super) fn abs(v: &Value) -> Value {
    match num(v) {
        Some(Num::Int(n)) => n
            .checked_abs()
            .map_or_else(|| Value::decimal((n as f64).abs()), Value::Int),
        Some(Num::Dec(x)) => Value::decimal(x.abs()),
        None => Value::Undefined,
    }
}

/// `round` (half away from zero), `floor`, `ceil`: integers stay as they
/// are, decimals become the integer `f` picks.
pub(super) fn to_int(v: &Value, f: fn(f64) -> f64) -> Value {
    match num(v) {
        Some(Num::Int(n)) => Value::Int(n),
        Some(Num::Dec(x)) => Value::decimal(f(x)),
        None => Value::Undefined,
    }
}

pub(super) fn power(a: &Value, b: &Value) -> Value {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => Value::decimal(x.as_f64().powf(y.as_f64())),
        _ => Value::Undefined,
    }
}

pub(super) fn sqrt(v: &Value) -> Value {
    num(v).map_or(Value::Undefined, |x| Value::decimal(x.as_f64().sqrt()))
}

/// Same as the `%` operator.
pub(super) fn modulo(a: &Value, b: &Value) -> Value {
    if a.is_undefined() || b.is_undefined() {
        return Value::Undefined;
    }
    ops::arithmetic(BinaryOp::Rem, a, b)
}
