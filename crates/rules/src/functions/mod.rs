//! The built-in functions: which names exist and how many arguments they
//! take (checked when lowering, so an unknown function or a wrong argument
//! count is refused at parse time), and their evaluation, one family per
//! file. Arguments that the functions cannot use give `Undefined`, as in
//! AWS.

mod cast;
mod context;
mod encoding;
mod math;
mod string;
pub(crate) mod time;

use crate::ast::{self, ExprKind, Literal, Span};
use crate::error::{EvalError, SqlError};
use crate::eval::Env;
use crate::ir::{Expr, Lowerer, Step, push_step};
use crate::value::Value;

pub(crate) use cast::cast;
pub(crate) use encoding::HashAlg;

#[derive(Debug)]
pub(crate) enum Func {
    Topic,
    ClientId,
    Principal,
    Timestamp,
    NewUuid,
    TraceId,
    GetThingShadow,
    Concat,
    Lower,
    Upper,
    Substring,
    StartsWith,
    EndsWith,
    /// The pattern, compiled when it is a literal.
    RegexpMatches(Option<regex::Regex>),
    RegexpReplace(Option<regex::Regex>, Option<String>),
    Abs,
    Round,
    Floor,
    Ceil,
    Power,
    Sqrt,
    Mod,
    /// `encode(*, 'base64')`: the raw payload bytes.
    EncodePayload,
    Encode,
    Decode,
    Hash(HashAlg),
    /// The pattern and zone, prepared when they are literals.
    ParseTime(Option<time::Pattern>, Option<time::Zone>),
    IsNull,
    IsUndefined,
}

fn string_literal(e: &ast::Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Literal(Literal::String(s)) => Some(s),
        _ => None,
    }
}

pub(crate) fn resolve(
    l: &mut Lowerer<'_>,
    name: &str,
    args: &[ast::Expr],
    span: Span,
) -> Result<Expr, SqlError> {
    let n = args.len();
    let arity = |min: usize, max: usize| -> Result<(), SqlError> {
        if (min..=max).contains(&n) {
            return Ok(());
        }
        let want = match (min, max) {
            (a, b) if a == b => format!("{a} argument{}", if a == 1 { "" } else { "s" }),
            (a, usize::MAX) => format!("at least {a} arguments"),
            (a, b) => format!("{a} to {b} arguments"),
        };
        Err(l.error(span, format!("{name}() takes {want}, found {n}")))
    };
    let func = match name {
        "topic" => {
            arity(0, 1)?;
            if let Some(ExprKind::Literal(Literal::Int(level))) = args.first().map(|a| &a.kind)
                && *level < 1
            {
                return Err(l.error(args[0].span, "topic levels are numbered from 1"));
            }
            Func::Topic
        }
        "clientid" | "principal" | "timestamp" | "newuuid" | "traceid" => {
            arity(0, 0)?;
            match name {
                "clientid" => Func::ClientId,
                "principal" => Func::Principal,
                "timestamp" => Func::Timestamp,
                "newuuid" => Func::NewUuid,
                _ => Func::TraceId,
            }
        }
        "get_thing_shadow" => {
            arity(1, 3)?;
            Func::GetThingShadow
        }
        "get" => {
            arity(2, 2)?;
            let base = l.expr(&args[0])?;
            let index = l.expr(&args[1])?;
            return Ok(push_step(base, Step::Index(index)));
        }
        "concat" => Func::Concat,
        "lower" | "upper" => {
            arity(1, 1)?;
            if name == "lower" {
                Func::Lower
            } else {
                Func::Upper
            }
        }
        "substring" => {
            arity(2, 3)?;
            Func::Substring
        }
        "startswith" | "endswith" => {
            arity(2, 2)?;
            if name == "startswith" {
                Func::StartsWith
            } else {
                Func::EndsWith
            }
        }
        "regexp_matches" => {
            arity(2, 2)?;
            Func::RegexpMatches(literal_regex(l, &args[1])?)
        }
        "regexp_replace" => {
            arity(3, 3)?;
            let re = literal_regex(l, &args[1])?;
            let replacement = match (string_literal(&args[2]), &re) {
                (Some(r), Some(re)) => Some(string::java_replacement(r, re.captures_len()).ok_or_else(|| {
                    l.error(args[2].span, "invalid replacement: '$' must be followed by a group number or {name}, and '\\' by a character")
                })?),
                _ => None,
            };
            Func::RegexpReplace(re, replacement)
        }
        "abs" | "round" | "floor" | "ceil" | "sqrt" => {
            arity(1, 1)?;
            match name {
                "abs" => Func::Abs,
                "round" => Func::Round,
                "floor" => Func::Floor,
                "ceil" => Func::Ceil,
                _ => Func::Sqrt,
            }
        }
        "power" | "mod" => {
            arity(2, 2)?;
            if name == "power" {
                Func::Power
            } else {
                Func::Mod
            }
        }
        "encode" | "decode" => {
            arity(2, 2)?;
            if !string_literal(&args[1]).is_some_and(|s| s.eq_ignore_ascii_case("base64")) {
                return Err(l.error(
                    args[1].span,
                    "the only supported encoding is the literal 'base64'",
                ));
            }
            if name == "encode" && args[0].kind == ExprKind::Star {
                return Ok(Expr::Call(Func::EncodePayload, Vec::new()));
            }
            let value = l.expr(&args[0])?;
            return Ok(Expr::Call(
                if name == "encode" {
                    Func::Encode
                } else {
                    Func::Decode
                },
                vec![value],
            ));
        }
        "md5" | "sha1" | "sha224" | "sha256" | "sha384" | "sha512" => {
            arity(1, 1)?;
            Func::Hash(HashAlg::from_name(name))
        }
        "parse_time" => {
            arity(2, 3)?;
            let pattern = match string_literal(&args[0]) {
                Some(p) => Some(time::Pattern::compile(p).map_err(|m| l.error(args[0].span, m))?),
                None => None,
            };
            let zone = match args.get(2).map(string_literal) {
                Some(Some(z)) => Some(time::Zone::parse(z).ok_or_else(|| {
                    l.error(args[2].span, format!("unsupported time zone '{z}': use UTC, GMT or a fixed offset such as '+05:30'"))
                })?),
                Some(None) => None,
                None => Some(time::Zone::utc()),
            };
            Func::ParseTime(pattern, zone)
        }
        "isnull" | "isundefined" => {
            arity(1, 1)?;
            if name == "isnull" {
                Func::IsNull
            } else {
                Func::IsUndefined
            }
        }
        other => return Err(l.error(span, format!("unsupported function {other}()"))),
    };
    Ok(Expr::Call(func, l.exprs(args)?))
}

fn literal_regex(l: &Lowerer<'_>, arg: &ast::Expr) -> Result<Option<regex::Regex>, SqlError> {
    match string_literal(arg) {
        Some(p) => regex::Regex::new(p)
            .map(Some)
            .map_err(|e| l.error(arg.span, format!("unsupported regular expression: {e}"))),
        None => Ok(None),
    }
}

pub(crate) fn call(func: &Func, args: Vec<Value>, env: &Env<'_>) -> Result<Value, EvalError> {
    Ok(match func {
        Func::Topic => context::topic(env, args.first()),
        Func::ClientId => context::client_id(env),
        Func::Principal => context::principal(env),
        Func::Timestamp => Value::Int(env.msg.timestamp_ms),
        Func::NewUuid => context::new_uuid(env)?,
        Func::TraceId => context::trace_id(env),
        Func::GetThingShadow => context::thing_shadow(env, &args)?,
        Func::Concat => string::concat(args),
        Func::Lower => string::map(&args[0], |s| s.to_lowercase()),
        Func::Upper => string::map(&args[0], |s| s.to_uppercase()),
        Func::Substring => string::substring(&args),
        Func::StartsWith => string::affix(&args, |s, p| s.starts_with(p)),
        Func::EndsWith => string::affix(&args, |s, p| s.ends_with(p)),
        Func::RegexpMatches(re) => string::regexp_matches(re.as_ref(), &args),
        Func::RegexpReplace(re, rep) => string::regexp_replace(re.as_ref(), rep.as_deref(), &args),
        Func::Abs => math::abs(&args[0]),
        Func::Round => math::to_int(&args[0], f64::round),
        Func::Floor => math::to_int(&args[0], f64::floor),
        Func::Ceil => math::to_int(&args[0], f64::ceil),
        Func::Power => math::power(&args[0], &args[1]),
        Func::Sqrt => math::sqrt(&args[0]),
        Func::Mod => math::modulo(&args[0], &args[1]),
        Func::EncodePayload => encoding::base64(env.msg.payload),
        Func::Encode => encoding::encode(&args[0]),
        Func::Decode => encoding::decode(&args[0]),
        Func::Hash(alg) => encoding::hash(*alg, &args[0]),
        Func::ParseTime(pattern, zone) => time::parse_time(pattern.as_ref(), zone.as_ref(), &args),
        Func::IsNull => Value::Bool(matches!(args[0], Value::Null)),
        Func::IsUndefined => Value::Bool(args[0].is_undefined()),
    })
}
