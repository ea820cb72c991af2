//! Answers shaped as AWS IoT's data plane sends them: `{"message",
//! "traceId"}` with an `x-amzn-ErrorType` header for the data plane's own
//! errors, and the shadow service's error documents for shadow requests.

use bytes::Bytes;
use civitas_shadow::{ShadowError, error_document};
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

pub(crate) type Body = Full<Bytes>;

/// A fresh trace id in the UUID form AWS uses.
pub(crate) fn trace_id() -> String {
    let n: u128 = rand::random();
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

pub(crate) fn json(status: StatusCode, value: &Value) -> Response<Body> {
    // Serializing a `Value` cannot fail.
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The data plane's own answer: `{"message", "traceId"}`.
pub(crate) fn message(
    status: StatusCode,
    message: &str,
    error_type: Option<&'static str>,
    trace: &str,
) -> Response<Body> {
    let mut response = json(status, &json!({"message": message, "traceId": trace}));
    if let Some(kind) = error_type {
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
    }
    response
}

pub(crate) fn ok(trace: &str) -> Response<Body> {
    message(StatusCode::OK, "OK", None, trace)
}

pub(crate) fn forbidden(trace: &str) -> Response<Body> {
    message(
        StatusCode::FORBIDDEN,
        "Forbidden",
        Some("ForbiddenException"),
        trace,
    )
}

pub(crate) fn bad_request(why: &str, trace: &str) -> Response<Body> {
    message(
        StatusCode::BAD_REQUEST,
        why,
        Some("InvalidRequestException"),
        trace,
    )
}

pub(crate) fn too_large(trace: &str) -> Response<Body> {
    message(
        StatusCode::PAYLOAD_TOO_LARGE,
        "The payload exceeds the maximum size allowed",
        Some("RequestEntityTooLargeException"),
        trace,
    )
}

pub(crate) fn not_found(trace: &str) -> Response<Body> {
    message(
        StatusCode::NOT_FOUND,
        "Not Found",
        Some("ResourceNotFoundException"),
        trace,
    )
}

pub(crate) fn method_not_allowed(trace: &str) -> Response<Body> {
    message(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
        Some("MethodNotAllowedException"),
        trace,
    )
}

pub(crate) fn unavailable(why: &str, trace: &str) -> Response<Body> {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        why,
        Some("ServiceUnavailableException"),
        trace,
    )
}

pub(crate) fn timeout(trace: &str) -> Response<Body> {
    message(
        StatusCode::REQUEST_TIMEOUT,
        "Request Timeout",
        Some("RequestTimeoutException"),
        trace,
    )
}

/// A refused shadow request: the document `/rejected` carries over MQTT,
/// with its code as the HTTP status.
pub(crate) fn shadow_error(error: &ShadowError, timestamp: u64) -> Response<Body> {
    let status = StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json(status, &error_document(error, None, timestamp));
    if let Some(kind) = shadow_error_type(error) {
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
    }
    response
}

fn shadow_error_type(error: &ShadowError) -> Option<&'static str> {
    Some(match error.code() {
        400 => "InvalidRequestException",
        404 => "ResourceNotFoundException",
        409 => "ConflictException",
        413 => "RequestEntityTooLargeException",
        415 => "UnsupportedDocumentEncodingException",
        429 => "ThrottlingException",
        500 => "InternalFailureException",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_look_like_uuids() {
        let id = trace_id();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_ne!(id, trace_id());
    }
}
