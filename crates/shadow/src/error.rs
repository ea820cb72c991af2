//! `ShadowError`: every way a shadow request is refused, with the HTTP
//! code and the message text AWS IoT uses for it.
//!
//! `Display` is the AWS message, so an error document is
//! `{"code": e.code(), "message": e.to_string()}`; the cause of an
//! internal failure is kept as the error's source, not shown to devices.

use std::sync::Arc;

/// The cause of a store failure.
pub type StoreFailure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ShadowError {
    /// 400: the payload is not JSON, or not a JSON object.
    #[error("Invalid JSON")]
    InvalidJson,
    /// 400: an update without `state`, or with an empty one.
    #[error("Missing required node: state")]
    MissingState,
    #[error("State node must be an object")]
    StateNotObject,
    #[error("Desired node must be an object")]
    DesiredNotObject,
    #[error("Reported node must be an object")]
    ReportedNotObject,
    /// 400: `version` is not a non-negative integer.
    #[error("Invalid version")]
    InvalidVersion,
    /// 400: `clientToken` is not a string of at most 64 bytes.
    #[error("Invalid clientToken")]
    InvalidClientToken,
    /// 400: `desired` or `reported` nests deeper than the limit.
    #[error("JSON contains too many levels of nesting; maximum is {0}")]
    TooDeep(usize),
    /// 400: `state` holds a key other than `desired`/`reported`, or an
    /// array holds a `null`.
    #[error("State contains an invalid node")]
    InvalidNode,
    /// 400: the thing name does not match `[a-zA-Z0-9:_-]{1,128}`.
    #[error("Invalid thing name")]
    InvalidThingName,
    /// 400: the shadow name does not match `[$a-zA-Z0-9:_-]{1,64}`.
    #[error("Invalid shadow name")]
    InvalidShadowName,
    /// 404: no such shadow. Holds the name AWS reports: the thing name for
    /// the classic shadow, `thing~shadow` for a named one.
    #[error("No shadow exists with name: '{0}'")]
    NotFound(String),
    /// 409: the request's `version` is not the shadow's current one.
    #[error("Version conflict")]
    VersionConflict,
    /// 413: the request, or the state it would leave, is too large.
    #[error("The payload exceeds the maximum size allowed")]
    PayloadTooLarge,
    /// 415: the payload is not UTF-8.
    #[error("Unsupported documented encoding; supported encoding is UTF-8")]
    UnsupportedEncoding,
    /// 429: the connection already has the maximum of requests in flight.
    #[error("Too Many Requests")]
    TooManyRequests,
    /// 500: the store failed.
    #[error("Internal service failure")]
    Internal(#[source] Arc<dyn std::error::Error + Send + Sync>),
}

impl ShadowError {
    /// The HTTP status code AWS answers with (also the `code` of an error
    /// document on `/rejected`).
    pub fn code(&self) -> u16 {
        match self {
            ShadowError::InvalidJson
            | ShadowError::MissingState
            | ShadowError::StateNotObject
            | ShadowError::DesiredNotObject
            | ShadowError::ReportedNotObject
            | ShadowError::InvalidVersion
            | ShadowError::InvalidClientToken
            | ShadowError::TooDeep(_)
            | ShadowError::InvalidNode
            | ShadowError::InvalidThingName
            | ShadowError::InvalidShadowName => 400,
            ShadowError::NotFound(_) => 404,
            ShadowError::VersionConflict => 409,
            ShadowError::PayloadTooLarge => 413,
            ShadowError::UnsupportedEncoding => 415,
            ShadowError::TooManyRequests => 429,
            ShadowError::Internal(_) => 500,
        }
    }

    pub(crate) fn internal(cause: StoreFailure) -> ShadowError {
        ShadowError::Internal(Arc::from(cause))
    }
}
