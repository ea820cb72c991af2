//! Parsing and validating request payloads, in the order AWS checks them,
//! so that the first problem found is the one reported.
//!
//! The client token is read as early as possible: a rejection echoes it
//! whenever the payload got far enough to yield a valid one.

use serde_json::{Map, Value};

use crate::error::ShadowError;
use crate::service::ShadowLimits;
use crate::state;

/// The longest client token AWS accepts, in bytes.
pub const MAX_CLIENT_TOKEN_LEN: usize = 64;

/// What an update asks for one section.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SectionPatch {
    Keep,
    /// `"desired": null`.
    Clear,
    Merge(Map<String, Value>),
}

/// A validated update request.
#[derive(Debug)]
pub(crate) struct UpdateRequest {
    pub(crate) version: Option<u64>,
    /// The request's `state`, echoed on `/update/accepted`.
    pub(crate) state: Map<String, Value>,
    pub(crate) desired: SectionPatch,
    pub(crate) reported: SectionPatch,
}

/// The request's client token (when valid) and the request or the reason
/// it is refused.
pub(crate) fn parse_update(
    payload: &[u8],
    limits: &ShadowLimits,
) -> (Option<String>, Result<UpdateRequest, ShadowError>) {
    if payload.len() > limits.max_request_bytes {
        return (None, Err(ShadowError::PayloadTooLarge));
    }
    let mut top = match parse_object(payload) {
        Ok(top) => top,
        Err(e) => return (None, Err(e)),
    };
    let token = match client_token(&top) {
        Ok(token) => token,
        Err(e) => return (None, Err(e)),
    };
    let request = validate_update(&mut top, limits);
    (token, request)
}

fn validate_update(
    top: &mut Map<String, Value>,
    limits: &ShadowLimits,
) -> Result<UpdateRequest, ShadowError> {
    let state = match top.remove("state") {
        None => return Err(ShadowError::MissingState),
        Some(Value::Object(state)) => state,
        Some(_) => return Err(ShadowError::StateNotObject),
    };
    if state.keys().any(|k| k != "desired" && k != "reported") {
        return Err(ShadowError::InvalidNode);
    }
    if state.is_empty() {
        return Err(ShadowError::MissingState);
    }
    let desired = section(state.get("desired"), ShadowError::DesiredNotObject)?;
    let reported = section(state.get("reported"), ShadowError::ReportedNotObject)?;
    for patch in [&desired, &reported] {
        if let SectionPatch::Merge(m) = patch {
            let v = Value::Object(m.clone());
            if state::depth(&v) > limits.max_depth {
                return Err(ShadowError::TooDeep(limits.max_depth));
            }
            if state::array_holds_null(&v) {
                return Err(ShadowError::InvalidNode);
            }
        }
    }
    let version = match top.get("version") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or(ShadowError::InvalidVersion)?),
    };
    Ok(UpdateRequest {
        version,
        state,
        desired,
        reported,
    })
}

fn section(v: Option<&Value>, not_object: ShadowError) -> Result<SectionPatch, ShadowError> {
    match v {
        None => Ok(SectionPatch::Keep),
        Some(Value::Null) => Ok(SectionPatch::Clear),
        Some(Value::Object(m)) => Ok(SectionPatch::Merge(m.clone())),
        Some(_) => Err(not_object),
    }
}

/// A get request: the payload is empty or carries only a client token.
pub(crate) fn parse_get(
    payload: &[u8],
    limits: &ShadowLimits,
) -> (Option<String>, Result<(), ShadowError>) {
    if payload.len() > limits.max_request_bytes {
        return (None, Err(ShadowError::PayloadTooLarge));
    }
    if payload.iter().all(u8::is_ascii_whitespace) {
        return (None, Ok(()));
    }
    match parse_object(payload).and_then(|top| client_token(&top)) {
        Ok(token) => (token, Ok(())),
        Err(e) => (None, Err(e)),
    }
}

/// The client token of a payload whose content is otherwise ignored (a
/// delete, or a request refused before it is parsed). Never an error: a
/// payload that yields no valid token yields none.
pub(crate) fn peek_client_token(payload: &[u8], limits: &ShadowLimits) -> Option<String> {
    if payload.len() > limits.max_request_bytes || payload.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    parse_object(payload)
        .and_then(|top| client_token(&top))
        .ok()
        .flatten()
}

fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, ShadowError> {
    let text = std::str::from_utf8(payload).map_err(|_| ShadowError::UnsupportedEncoding)?;
    match serde_json::from_str(text) {
        Ok(Value::Object(top)) => Ok(top),
        // A JSON scalar or array is as unusable as no JSON at all.
        _ => Err(ShadowError::InvalidJson),
    }
}

fn client_token(top: &Map<String, Value>) -> Result<Option<String>, ShadowError> {
    match top.get("clientToken") {
        None => Ok(None),
        Some(Value::String(t)) if t.len() <= MAX_CLIENT_TOKEN_LEN => Ok(Some(t.clone())),
        Some(_) => Err(ShadowError::InvalidClientToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(payload: &str) -> (Option<String>, Result<UpdateRequest, ShadowError>) {
        parse_update(payload.as_bytes(), &ShadowLimits::default())
    }

    fn refused(payload: &str) -> (Option<String>, String) {
        let (token, r) = update(payload);
        (token, r.expect_err(payload).to_string())
    }

    #[test]
    fn sections_are_kept_cleared_or_merged() {
        let (token, r) = update(
            r#"{"state":{"desired":null,"reported":{"a":1}},"clientToken":"t","version":3}"#,
        );
        let r = r.unwrap();
        assert_eq!(token.as_deref(), Some("t"));
        assert_eq!(r.version, Some(3));
        assert_eq!(r.desired, SectionPatch::Clear);
        assert!(matches!(r.reported, SectionPatch::Merge(_)));
        let r = update(r#"{"state":{"reported":{}}}"#).1.unwrap();
        assert_eq!(r.desired, SectionPatch::Keep);
    }

    #[test]
    fn problems_are_reported_in_aws_order_with_the_token_when_valid() {
        assert_eq!(refused("{"), (None, "Invalid JSON".into()));
        assert_eq!(refused("[1]"), (None, "Invalid JSON".into()));
        assert_eq!(
            refused(r#"{"clientToken":5,"state":{}}"#),
            (None, "Invalid clientToken".into())
        );
        let long = "x".repeat(65);
        assert_eq!(
            refused(&format!(r#"{{"clientToken":"{long}","state":{{}}}}"#)),
            (None, "Invalid clientToken".into())
        );
        let t = Some("t".to_owned());
        assert_eq!(
            refused(r#"{"clientToken":"t"}"#),
            (t.clone(), "Missing required node: state".into())
        );
        assert_eq!(
            refused(r#"{"clientToken":"t","state":{}}"#),
            (t.clone(), "Missing required node: state".into())
        );
        assert_eq!(
            refused(r#"{"clientToken":"t","state":null}"#),
            (t.clone(), "State node must be an object".into())
        );
        assert_eq!(
            refused(r#"{"clientToken":"t","state":{"delta":{}}}"#),
            (t.clone(), "State contains an invalid node".into())
        );
        assert_eq!(
            refused(r#"{"clientToken":"t","state":{"desired":1}}"#),
            (t.clone(), "Desired node must be an object".into())
        );
        assert_eq!(
            refused(r#"{"clientToken":"t","state":{"reported":[]}}"#),
            (t.clone(), "Reported node must be an object".into())
        );
        assert_eq!(
            refused(r#"{"clientToken":"t","state":{"reported":{"a":[null]}}}"#),
            (t.clone(), "State contains an invalid node".into())
        );
        assert_eq!(
            refused(r#"{"clientToken":"t","state":{"reported":{}},"version":-1}"#),
            (t.clone(), "Invalid version".into())
        );
        assert_eq!(
            refused(r#"{"clientToken":"t","state":{"reported":{}},"version":"1"}"#),
            (t, "Invalid version".into())
        );
    }

    #[test]
    fn nesting_is_limited_below_each_section() {
        let six = r#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}}"#;
        assert!(update(six).1.is_ok());
        let seven = r#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}}"#;
        assert_eq!(
            refused(seven).1,
            "JSON contains too many levels of nesting; maximum is 6"
        );
    }

    #[test]
    fn encoding_and_size_come_first() {
        assert_eq!(
            parse_update(
                b"{\"state\":{\"reported\":{\"a\":\"\xff\"}}}",
                &ShadowLimits::default()
            )
            .1
            .unwrap_err()
            .code(),
            415
        );
        let limits = ShadowLimits {
            max_request_bytes: 10,
            ..ShadowLimits::default()
        };
        assert_eq!(
            parse_update(&[b' '; 11], &limits).1.unwrap_err().code(),
            413
        );
    }

    #[test]
    fn get_accepts_empty_payloads_and_reads_the_token() {
        let limits = ShadowLimits::default();
        let get = |p: &[u8]| {
            let (token, r) = parse_get(p, &limits);
            (token, r.map_err(|e| e.code()))
        };
        assert_eq!(get(b""), (None, Ok(())));
        assert_eq!(get(b" \n"), (None, Ok(())));
        assert_eq!(get(br#"{"clientToken":"t"}"#), (Some("t".into()), Ok(())));
        assert_eq!(parse_get(b"nope", &limits).1.unwrap_err().code(), 400);
        assert_eq!(
            peek_client_token(br#"{"clientToken":"t","x":1}"#, &limits).as_deref(),
            Some("t")
        );
        assert_eq!(peek_client_token(b"anything", &limits), None);
    }
}
