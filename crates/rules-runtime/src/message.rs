//! A message as the rules engine holds it: owned, so it can wait in a
//! rule's queue, and shared between every rule it matched. Also the
//! error document AWS sends to a rule's error action.

use bytes::Bytes;
use civitas_rules::{Json, Message};
use serde::Serialize;

use crate::payload;
use crate::signing::DeviceSignature;

/// One message on its way through the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMessage {
    /// As published; for Basic Ingest with its `$aws/rules/{rule}/`
    /// prefix (which `topic()` leaves out).
    pub topic: String,
    pub payload: Bytes,
    /// The publishing client; `None` for messages civitas publishes.
    pub client_id: Option<String>,
    /// What the publisher authenticated as, when known.
    pub principal: Option<String>,
    /// When it arrived, unix ms (`timestamp()`).
    pub timestamp_ms: i64,
    /// `traceid()`, and `cloudwatchTraceId` in error documents.
    pub trace_id: String,
    /// The device's signature over `payload`, checked by the `store`
    /// action before it keeps readings.
    pub signature: DeviceSignature,
}

impl RuleMessage {
    /// A message that arrived just now, with a fresh trace id.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> RuleMessage {
        RuleMessage {
            topic: topic.into(),
            payload: payload.into(),
            client_id: None,
            principal: None,
            timestamp_ms: now_ms(),
            trace_id: new_uuid(),
            signature: DeviceSignature::Unsigned,
        }
    }

    #[must_use]
    pub fn with_client_id(mut self, client_id: Option<String>) -> RuleMessage {
        self.client_id = client_id;
        self
    }

    #[must_use]
    pub fn with_signature(mut self, signature: DeviceSignature) -> RuleMessage {
        self.signature = signature;
        self
    }

    /// The message as the SQL evaluator reads it.
    pub fn as_message(&self) -> Message<'_> {
        Message {
            topic: &self.topic,
            payload: &self.payload,
            client_id: self.client_id.as_deref(),
            principal: self.principal.as_deref(),
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// One failed action in an error document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// `RepublishAction`, `HttpAction`, … (`RuleEvaluation` when the SQL
    /// itself could not run, a civitas addition).
    pub failed_action: String,
    pub failed_resource: String,
    pub error_message: String,
}

/// The document a rule's error action receives: one per rule and
/// message, listing every action of it that failed, as AWS sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDocument {
    pub rule_name: String,
    pub topic: String,
    pub cloudwatch_trace_id: String,
    pub client_id: String,
    pub base64_original_payload: String,
    pub failures: Vec<Failure>,
}

impl ErrorDocument {
    pub fn new(rule: &str, message: &RuleMessage, failures: Vec<Failure>) -> ErrorDocument {
        ErrorDocument {
            rule_name: rule.to_owned(),
            topic: message.topic.clone(),
            cloudwatch_trace_id: message.trace_id.clone(),
            client_id: message.client_id.clone().unwrap_or_else(|| "n/a".into()),
            base64_original_payload: payload::base64(&message.payload),
            failures,
        }
    }

    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random (version 4) UUID, for `newuuid()` and trace ids.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    // The system RNG failing is not something a caller can act on; an
    // all-zero id still works as an id.
    let _ = aws_lc_rs::rand::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, new_uuid());
    }

    #[test]
    fn error_documents_have_the_aws_shape() {
        let mut m = RuleMessage::new("city/a/things/lamp-1/telemetry", &b"{\"x\":1}"[..])
            .with_client_id(Some("lamp-1".into()));
        m.trace_id = "t-1".into();
        let doc = ErrorDocument::new(
            "lamp_rule",
            &m,
            vec![Failure {
                failed_action: "HttpAction".into(),
                failed_resource: "https://example.org/hook".into(),
                error_message: "refused".into(),
            }],
        );
        assert_eq!(
            doc.to_json(),
            serde_json::json!({
                "ruleName": "lamp_rule",
                "topic": "city/a/things/lamp-1/telemetry",
                "cloudwatchTraceId": "t-1",
                "clientId": "lamp-1",
                "base64OriginalPayload": "eyJ4IjoxfQ==",
                "failures": [{"failedAction": "HttpAction",
                              "failedResource": "https://example.org/hook",
                              "errorMessage": "refused"}]
            })
        );
    }
}
