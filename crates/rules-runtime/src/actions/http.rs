//! `http` (alias `webhook`): POST the rule's output to an HTTPS endpoint.
//!
//! AWS fields: `url` (a template; must start with `https://`) and
//! `headers` (`[{"key", "value"}]`, values are templates). AWS's
//! `confirmationUrl` and `auth` (SigV4) are refused: civitas neither
//! confirms destinations nor signs requests.
//!
//! civitas fields, all optional: `caFile` (PEM roots to verify the server
//! with, instead of the system's), `timeoutMs` per attempt (10000),
//! `maxAttempts` (5), `initialBackoffMs` (200, doubled per retry up to
//! `maxBackoffMs`, 30000), `queueCapacity` (256 messages waiting per
//! action) and `maxInFlight` (4 requests at once). Delivery is
//! asynchronous: an unreachable endpoint fills its own queue, never the
//! rule's, and what cannot be queued or delivered goes to the error
//! action.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use civitas_rules::{Json, Output};
use hyper::Uri;
use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::{ActionError, KeyValue, Prepare, params, template};
use crate::document::DocumentError;
use crate::template::Template;
use crate::webhook::client_config;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Params {
    url: String,
    headers: Option<Vec<KeyValue>>,
    confirmation_url: Option<String>,
    auth: Option<Json>,
    ca_file: Option<PathBuf>,
    timeout_ms: Option<u64>,
    max_attempts: Option<u32>,
    initial_backoff_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
    queue_capacity: Option<usize>,
    max_in_flight: Option<usize>,
}

/// How an HTTP action delivers.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub queue_capacity: usize,
    pub max_in_flight: usize,
    /// Built from `ca_file` (or the system roots) when the rule is
    /// validated, so a missing file refuses the rule.
    pub tls: Arc<rustls::ClientConfig>,
}

#[derive(Debug)]
pub struct HttpSpec {
    pub url: Template,
    headers: Vec<(HeaderName, Template)>,
    pub settings: WebhookSettings,
}

/// A POST, rendered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpCall {
    pub url: String,
    pub headers: Vec<(String, String)>,
    #[serde(serialize_with = "crate::payload::serialize")]
    pub body: Bytes,
}

fn bounded<T: PartialOrd + Copy + std::fmt::Display>(
    path: &str,
    field: &str,
    value: Option<T>,
    default: T,
    min: T,
    max: T,
) -> Result<T, DocumentError> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(DocumentError::new(
            format!("{path}.{field}"),
            format!("{v} is out of range {min}..={max}"),
        ));
    }
    Ok(v)
}

impl HttpSpec {
    pub(super) fn parse(value: &Json, path: &str) -> Result<HttpSpec, DocumentError> {
        let p: Params = params(value, path)?;
        if p.confirmation_url.is_some() {
            return Err(DocumentError::new(
                format!("{path}.confirmationUrl"),
                "destination confirmation is not supported",
            ));
        }
        if p.auth.is_some() {
            return Err(DocumentError::new(
                format!("{path}.auth"),
                "request signing is not supported; send a token in headers instead",
            ));
        }
        if !p.url.starts_with("https://") {
            return Err(DocumentError::new(
                format!("{path}.url"),
                format!("{:?}: the URL must start with https://", p.url),
            ));
        }
        let url = template(path, "url", &p.url)?;
        if url.is_literal() {
            check_url(&p.url).map_err(|e| DocumentError::new(format!("{path}.url"), e.0))?;
        }
        let mut headers = Vec::new();
        for kv in p.headers.unwrap_or_default() {
            let name = HeaderName::from_bytes(kv.key.as_bytes()).map_err(|_| {
                DocumentError::new(
                    format!("{path}.headers"),
                    format!("{:?} is not a header name", kv.key),
                )
            })?;
            headers.push((name, template(path, "headers", &kv.value)?));
        }
        let timeout_ms = bounded(path, "timeoutMs", p.timeout_ms, 10_000, 1, 600_000)?;
        let initial_backoff_ms = bounded(
            path,
            "initialBackoffMs",
            p.initial_backoff_ms,
            200,
            1,
            600_000,
        )?;
        let max_backoff_ms = bounded(
            path,
            "maxBackoffMs",
            p.max_backoff_ms,
            30_000,
            initial_backoff_ms,
            3_600_000,
        )?;
        let tls = client_config(p.ca_file.as_deref())
            .map_err(|e| DocumentError::new(format!("{path}.caFile"), e))?;
        Ok(HttpSpec {
            url,
            headers,
            settings: WebhookSettings {
                ca_file: p.ca_file,
                timeout: Duration::from_millis(timeout_ms),
                max_attempts: bounded(path, "maxAttempts", p.max_attempts, 5, 1, 100)?,
                initial_backoff: Duration::from_millis(initial_backoff_ms),
                max_backoff: Duration::from_millis(max_backoff_ms),
                queue_capacity: bounded(path, "queueCapacity", p.queue_capacity, 256, 1, 1 << 20)?,
                max_in_flight: bounded(path, "maxInFlight", p.max_in_flight, 4, 1, 1024)?,
                tls,
            },
        })
    }

    pub(super) fn prepare(&self, p: &Prepare<'_>) -> Result<HttpCall, ActionError> {
        let url = p.render(&self.url)?;
        check_url(&url)?;
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        for (name, value) in &self.headers {
            let value = p.render(value)?;
            HeaderValue::from_str(&value).map_err(|_| {
                ActionError(format!("header {name}: {value:?} is not a header value"))
            })?;
            headers.push((name.as_str().to_owned(), value));
        }
        if !self
            .headers
            .iter()
            .any(|(n, _)| n == hyper::header::CONTENT_TYPE)
        {
            let content_type = match p.output {
                Output::Json(_) => "application/json",
                Output::Raw(_) => "application/octet-stream",
            };
            headers.push(("content-type".to_owned(), content_type.to_owned()));
        }
        Ok(HttpCall {
            url,
            headers,
            body: Bytes::from(p.output.to_bytes()),
        })
    }
}

/// An absolute `https://` URL with a host.
pub(crate) fn check_url(url: &str) -> Result<Uri, ActionError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| ActionError(format!("{url:?} is not a URL: {e}")))?;
    if uri.scheme_str() != Some("https") {
        return Err(ActionError(format!(
            "{url:?}: only https:// URLs are allowed"
        )));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(ActionError(format!("{url:?} has no host")));
    }
    Ok(uri)
}
