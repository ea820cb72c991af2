//! Functions about the message rather than its payload: `topic()`,
//! `topic(n)`, `clientid()`, `principal()`, `newuuid()`, `traceid()` and
//! `get_thing_shadow()`. Identifiers, trace ids and shadows come from
//! sources the runtime injects through the evaluation context.

use crate::error::EvalError;
use crate::eval::Env;
use crate::value::{Num, Value};

/// The topic as rules see it: for Basic Ingest (`$aws/rules/{rule}/…`)
/// the prefix is not part of it, as in AWS.
fn rule_topic(topic: &str) -> &str {
    topic
        .strip_prefix("$aws/rules/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(topic, |(_, t)| t)
}

pub(super) fn topic(env: &Env<'_>, level: Option<&Value>) -> Value {
    let topic = rule_topic(env.msg.topic);
    let Some(level) = level else {
        return Value::String(topic.to_owned());
    };
    let n = match level.to_num() {
        Some((Num::Int(n), _)) => n,
        Some((Num::Dec(x), _)) => x.trunc() as i64,
        None => return Value::Undefined,
    };
    match usize::try_from(n).ok().and_then(|n| n.checked_sub(1)) {
        Some(i) => topic
            .split('/')
            .nth(i)
            .map_or(Value::Undefined, |s| Value::String(s.to_owned())),
        None => Value::Undefined,
    }
}

/// AWS answers "n/a" for messages that did not come from an MQTT client.
pub(super) fn client_id(env: &Env<'_>) -> Value {
    Value::String(env.msg.client_id.unwrap_or("n/a").to_owned())
}

pub(super) fn principal(env: &Env<'_>) -> Value {
    env.msg
        .principal
        .map_or(Value::Undefined, |p| Value::String(p.to_owned()))
}

pub(super) fn new_uuid(env: &Env<'_>) -> Result<Value, EvalError> {
    let source = env.ctx.newuuid.ok_or(EvalError::MissingSource("newuuid"))?;
    Ok(Value::String(source()))
}

/// `Undefined` when the message has no trace id (or no source was given).
pub(super) fn trace_id(env: &Env<'_>) -> Value {
    env.ctx
        .traceid
        .and_then(|source| source())
        .map_or(Value::Undefined, Value::String)
}

/// `get_thing_shadow(thing)`, `get_thing_shadow(thing, roleArn)` or
/// `get_thing_shadow(thing, shadowName, roleArn)`. The role ARN has no
/// meaning in civitas and is ignored; a missing thing or shadow is
/// `Undefined`.
pub(super) fn thing_shadow(env: &Env<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let Value::String(thing) = &args[0] else {
        return Ok(Value::Undefined);
    };
    let shadow = match args {
        [_, Value::String(name), _] => Some(name.as_str()),
        [_, _, _] => return Ok(Value::Undefined),
        _ => None,
    };
    let lookup = env
        .ctx
        .thing_shadow
        .ok_or(EvalError::MissingSource("get_thing_shadow"))?;
    match lookup(thing, shadow) {
        Ok(Some(doc)) => Ok(Value::from_json_owned(doc)),
        Ok(None) => Ok(Value::Undefined),
        Err(source) => Err(EvalError::ShadowLookup {
            thing: thing.clone(),
            source,
        }),
    }
}
