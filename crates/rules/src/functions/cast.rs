//! `cast(x AS type)` with AWS's casting tables: like the standard
//! conversions, plus numbers to and from booleans. What cannot be cast is
//! `Undefined`.

use crate::ast::CastType;
use crate::value::{Num, Value};

pub(crate) fn cast(v: Value, ty: CastType) -> Value {
    match ty {
        CastType::Int => match v {
            Value::Bool(b) => Value::Int(i64::from(b)),
            // "Rounded down" in AWS's table is Java's RoundingMode.DOWN:
            // towards zero.
            other => match other.to_num() {
                Some((Num::Int(n), _)) => Value::Int(n),
                Some((Num::Dec(x), _)) => Value::decimal(x.trunc()),
                None => Value::Undefined,
            },
        },
        CastType::Decimal => match v {
            Value::Bool(b) => Value::Int(i64::from(b)),
            other => other
                .to_num()
                .map_or(Value::Undefined, |(n, _)| n.into_value()),
        },
        CastType::Bool => match v {
            Value::Int(n) => Value::Bool(n != 0),
            Value::Decimal(x) => Value::Bool(x != 0.0),
            other => other.to_bool().map_or(Value::Undefined, Value::Bool),
        },
        CastType::String => v.to_sql_string().map_or(Value::Undefined, Value::String),
    }
}
