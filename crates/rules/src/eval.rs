//! Evaluation of a lowered rule against one message. Pure: the clock,
//! identifiers and shadows come in through [`Message`] and
//! [`EvalContext`], so the runtime can evaluate wherever it likes (off the
//! broker's hot path) and tests are deterministic.
//!
//! AWS's rules: a missing field is `Undefined`; operators and functions
//! given `Undefined` give `Undefined`; a WHERE that is not `true` drops the
//! message; SELECT leaves out keys whose value is `Undefined`. A payload
//! that is not a JSON object is binary: its fields are `Undefined`, and a
//! lone `SELECT *` passes its bytes on unchanged.

use crate::ast::BinaryOp;
use crate::error::{EvalError, ShadowError};
use crate::functions;
use crate::ir::{Expr, Item, Program, Projection, Select, Step, Subquery};
use crate::ops;
use crate::value::{Cursor, Json, Value};
use serde_json::Map;

/// One message as the rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The topic it was published to (for Basic Ingest, with the
    /// `$aws/rules/{rule}/` prefix, which `topic()` leaves out).
    pub topic: &'a str,
    pub payload: &'a [u8],
    /// The publishing client; `clientid()` is "n/a" without one.
    pub client_id: Option<&'a str>,
    /// What the client authenticated as (`principal()`), e.g. the
    /// certificate fingerprint.
    pub principal: Option<&'a str>,
    /// `timestamp()`: milliseconds since the Unix epoch, chosen by the
    /// runtime (there is no clock in here).
    pub timestamp_ms: i64,
}

/// `get_thing_shadow` source: (thing name, shadow name or None for the
/// classic shadow) to the shadow document, `Ok(None)` when there is none.
pub type ShadowLookup<'a> = dyn Fn(&str, Option<&str>) -> Result<Option<Json>, ShadowError> + 'a;

/// Sources the runtime injects. Each is optional: a rule calling
/// `newuuid()` or `get_thing_shadow()` without its source fails with
/// [`EvalError::MissingSource`]; `traceid()` without one is `Undefined`.
#[derive(Clone, Copy, Default)]
pub struct EvalContext<'a> {
    pub newuuid: Option<&'a (dyn Fn() -> String + 'a)>,
    pub traceid: Option<&'a (dyn Fn() -> Option<String> + 'a)>,
    pub thing_shadow: Option<&'a ShadowLookup<'a>>,
}

impl std::fmt::Debug for EvalContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalContext")
            .field("newuuid", &self.newuuid.is_some())
            .field("traceid", &self.traceid.is_some())
            .field("thing_shadow", &self.thing_shadow.is_some())
            .finish()
    }
}

/// What a rule produces for a message that passes its WHERE clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Json(Json),
    /// Bytes passed on as they came: `SELECT *` of a non-JSON payload, or
    /// the empty payload AWS makes of a `SELECT VALUE` that is `Undefined`.
    Raw(Vec<u8>),
}

impl Output {
    pub fn as_json(&self) -> Option<&Json> {
        match self {
            Output::Json(j) => Some(j),
            Output::Raw(_) => None,
        }
    }

    /// The payload bytes an action would send.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Output::Json(j) => j.to_string().into_bytes(),
            Output::Raw(b) => b.clone(),
        }
    }
}

pub(crate) struct Env<'r> {
    pub msg: &'r Message<'r>,
    pub ctx: &'r EvalContext<'r>,
    /// The document paths read: the payload object, or an element of the
    /// array a nested SELECT iterates; None for a binary payload.
    pub row: Option<&'r Json>,
}

/// A message's payload as the statements reading one message see it:
/// parsed at most once, however many read it. A rule and the templates
/// of its actions each evaluate a statement against the same message; on
/// their own they would parse the same JSON once each.
#[derive(Debug)]
pub struct Document<'a> {
    payload: &'a [u8],
    /// `Some(None)`: parsed, and not a JSON object (binary to rules).
    parsed: std::cell::OnceCell<Option<Json>>,
}

impl<'a> Document<'a> {
    /// Nothing is parsed until a statement reads the payload.
    pub fn new(payload: &'a [u8]) -> Document<'a> {
        Document {
            payload,
            parsed: std::cell::OnceCell::new(),
        }
    }

    fn parse(payload: &[u8]) -> Option<Json> {
        match serde_json::from_slice::<Json>(payload) {
            Ok(j @ Json::Object(_)) => Some(j),
            _ => None,
        }
    }

    /// The payload's JSON object; `None` when it is binary.
    fn object(&self) -> Option<&Json> {
        self.parsed
            .get_or_init(|| Self::parse(self.payload))
            .as_ref()
    }

    /// The object by value (a `SELECT *` output), without a copy; a later
    /// reader parses again.
    fn take_object(&mut self) -> Option<Json> {
        self.parsed
            .take()
            .unwrap_or_else(|| Self::parse(self.payload))
    }
}

pub(crate) fn run(
    program: &Program,
    msg: &Message<'_>,
    doc: &mut Document<'_>,
    ctx: &EvalContext<'_>,
) -> Result<Option<Output>, EvalError> {
    let row = if program.needs_payload {
        doc.object()
    } else {
        None
    };
    let env = Env { msg, ctx, row };
    let select = &program.select;
    if let Some(filter) = &select.filter
        && !truth(filter, &env)?
    {
        return Ok(None);
    }
    let items = match &select.projection {
        Projection::Value(e) => {
            return Ok(Some(
                eval(e, &env)?
                    .into_json()
                    .map_or(Output::Raw(Vec::new()), Output::Json),
            ));
        }
        Projection::Items(items) => items,
    };
    if let [Item::Star] = items.as_slice() {
        return Ok(Some(match doc.take_object() {
            Some(d) => Output::Json(d),
            None => Output::Raw(msg.payload.to_vec()),
        }));
    }
    let values = eval_items(items, &env)?;
    let mut out = if items.iter().any(|i| matches!(i, Item::Star)) {
        match doc.take_object() {
            Some(Json::Object(map)) => map,
            _ if msg.payload.trim_ascii().is_empty() => Map::new(),
            _ => return Err(EvalError::PayloadNotObject),
        }
    } else {
        Map::new()
    };
    insert_all(&mut out, values);
    Ok(Some(Output::Json(Json::Object(out))))
}

fn eval_items<'i>(items: &'i [Item], env: &Env<'_>) -> Result<Vec<(&'i str, Value)>, EvalError> {
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        if let Item::Expr { key, expr } = item {
            values.push((key.as_str(), eval(expr, env)?));
        }
    }
    Ok(values)
}

fn insert_all(out: &mut Map<String, Json>, values: Vec<(&str, Value)>) {
    for (key, value) in values {
        if let Some(j) = value.into_json() {
            out.insert(key.to_owned(), j);
        }
    }
}

/// Whether `e` is true, as WHERE and searched CASE need it. AND stops at
/// a left side that is not true: the whole cannot be true then.
fn truth(e: &Expr, env: &Env<'_>) -> Result<bool, EvalError> {
    if let Expr::Binary(BinaryOp::And, a, b) = e {
        return Ok(truth(a, env)? && truth(b, env)?);
    }
    Ok(eval(e, env)?.to_bool() == Some(true))
}

pub(crate) fn eval(e: &Expr, env: &Env<'_>) -> Result<Value, EvalError> {
    Ok(match e {
        Expr::Const(v) => v.clone(),
        Expr::Path { base, steps } => {
            let mut cursor = match base {
                None => match env.row {
                    Some(row) => Cursor::Borrowed(row),
                    None => return Ok(Value::Undefined),
                },
                Some(b) => Cursor::Owned(eval(b, env)?),
            };
            for step in steps {
                cursor = match step {
                    Step::Field(name) => cursor.field(name),
                    Step::Index(i) => cursor.index(&eval(i, env)?),
                };
                if let Cursor::Owned(Value::Undefined) = cursor {
                    return Ok(Value::Undefined);
                }
            }
            cursor.into_value()
        }
        Expr::Not(a) => ops::not(eval(a, env)?),
        Expr::Neg(a) => ops::neg(eval(a, env)?),
        Expr::Binary(op, a, b) => ops::binary(*op, eval(a, env)?, eval(b, env)?),
        Expr::Is {
            expr,
            negated,
            undefined,
        } => {
            let v = eval(expr, env)?;
            let hit = if *undefined {
                v.is_undefined()
            } else {
                matches!(v, Value::Null)
            };
            Value::Bool(hit != *negated)
        }
        Expr::In {
            expr,
            negated,
            list,
        } => {
            let v = eval(expr, env)?;
            if v.is_undefined() {
                return Ok(Value::Undefined);
            }
            let mut found = false;
            for item in list {
                let w = eval(item, env)?;
                if !w.is_undefined() && ops::equals(&v, &w) {
                    found = true;
                    break;
                }
            }
            Value::Bool(found != *negated)
        }
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => return case(operand.as_deref(), whens, otherwise.as_deref(), env),
        Expr::Call(func, args) => {
            let mut values = Vec::with_capacity(args.len());
            for a in args {
                values.push(eval(a, env)?);
            }
            functions::call(func, values, env)?
        }
        Expr::Cast(v, ty) => functions::cast(eval(v, env)?, *ty),
        Expr::Subquery(q) => subquery(q, env)?,
        Expr::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.extend(eval(item, env)?.into_json());
            }
            Value::Array(out)
        }
        Expr::Object(fields) => {
            let mut out = Map::new();
            for (key, value) in fields {
                if let Some(j) = eval(value, env)?.into_json() {
                    out.insert(key.clone(), j);
                }
            }
            Value::Object(out)
        }
    })
}

fn case(
    operand: Option<&Expr>,
    whens: &[(Expr, Expr)],
    otherwise: Option<&Expr>,
    env: &Env<'_>,
) -> Result<Value, EvalError> {
    match operand {
        Some(operand) => {
            let v = eval(operand, env)?;
            if v.is_undefined() {
                return Ok(Value::Undefined);
            }
            for (when, then) in whens {
                let w = eval(when, env)?;
                if !w.is_undefined() && ops::equals(&v, &w) {
                    return eval(then, env);
                }
            }
        }
        None => {
            for (when, then) in whens {
                if truth(when, env)? {
                    return eval(then, env);
                }
            }
        }
    }
    otherwise.map_or(Ok(Value::Undefined), |e| eval(e, env))
}

/// `(SELECT … FROM path [WHERE …])`: one result per element of the array
/// at `path` that passes WHERE; `Undefined` when `path` is not an array.
fn subquery(q: &Subquery, env: &Env<'_>) -> Result<Value, EvalError> {
    let Value::Array(rows) = eval(&q.from, env)? else {
        return Ok(Value::Undefined);
    };
    let mut out = Vec::new();
    for row in &rows {
        let inner = Env {
            msg: env.msg,
            ctx: env.ctx,
            row: Some(row),
        };
        if let Some(result) = project_row(&q.select, row, &inner)? {
            out.push(result);
        }
    }
    Ok(Value::Array(out))
}

fn project_row(select: &Select, row: &Json, env: &Env<'_>) -> Result<Option<Json>, EvalError> {
    if let Some(filter) = &select.filter
        && !truth(filter, env)?
    {
        return Ok(None);
    }
    match &select.projection {
        Projection::Value(e) => Ok(eval(e, env)?.into_json()),
        Projection::Items(items) => {
            if let [Item::Star] = items.as_slice() {
                return Ok(Some(row.clone()));
            }
            let values = eval_items(items, env)?;
            let mut out = match row {
                Json::Object(map) if items.iter().any(|i| matches!(i, Item::Star)) => map.clone(),
                _ => Map::new(),
            };
            insert_all(&mut out, values);
            Ok(Some(Json::Object(out)))
        }
    }
}
