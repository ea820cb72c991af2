//! Shared helpers: run a statement or a single expression on a payload
//! with fixed message metadata and deterministic injected sources.

#![allow(dead_code)]

use civitas_rules::{EvalContext, EvalError, Json, Message, Output, Rule};

pub const TOPIC: &str = "city/oslo/things/sensor-1/telemetry";

pub fn message(payload: &[u8]) -> Message<'_> {
    Message {
        topic: TOPIC,
        payload,
        client_id: Some("sensor-1"),
        principal: Some("ab12cd"),
        timestamp_ms: 1_481_825_251_155,
    }
}

pub fn uuid() -> String {
    "123e4567-e89b-12d3-a456-426614174000".to_owned()
}

pub fn trace() -> Option<String> {
    Some("trace-1".to_owned())
}

pub fn shadow(thing: &str, name: Option<&str>) -> Result<Option<Json>, civitas_rules::ShadowError> {
    match (thing, name) {
        ("lamp", None) => Ok(Some(
            serde_json::json!({"state": {"reported": {"alarm": "ON"}}}),
        )),
        ("lamp", Some("cfg")) => Ok(Some(serde_json::json!({"state": {"desired": {"mode": 2}}}))),
        ("broken", _) => Err("store unavailable".into()),
        _ => Ok(None),
    }
}

pub fn try_run(sql: &str, payload: &str) -> Result<Option<Output>, EvalError> {
    let rule = Rule::parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let ctx = EvalContext {
        newuuid: Some(&uuid),
        traceid: Some(&trace),
        thing_shadow: Some(&shadow),
    };
    rule.evaluate(&message(payload.as_bytes()), &ctx)
}

/// The output of `sql` on `payload`; None when WHERE drops the message.
pub fn run(sql: &str, payload: &str) -> Option<Output> {
    try_run(sql, payload).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The JSON output of `sql`; panics on raw output.
pub fn run_json(sql: &str, payload: &str) -> Option<Json> {
    run(sql, payload).map(|o| match o {
        Output::Json(j) => j,
        Output::Raw(b) => panic!("{sql}: raw output {b:?}"),
    })
}

/// The value of one expression on `payload`; None for Undefined.
pub fn value(expr: &str, payload: &str) -> Option<Json> {
    let sql = format!("SELECT VALUE {expr} FROM 'city/#'");
    match run(&sql, payload) {
        Some(Output::Json(j)) => Some(j),
        Some(Output::Raw(b)) if b.is_empty() => None,
        other => panic!("{sql}: {other:?}"),
    }
}
