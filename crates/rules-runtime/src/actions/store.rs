//! `store` (civitas): keep readings from the rule's output in the
//! telemetry store.
//!
//! `{"store": {"thingName": "${topic(4)}", "metrics": ["power_w"],
//! "timestamp": "${timestamp()}", "keepRaw": false,
//! "signedEnvelope": false}}`: each listed
//! top-level field of the output that is a number becomes a reading
//! (without `metrics`, every numeric top-level field does); `timestamp`
//! (unix ms, a template) defaults to when the message arrived; `keepRaw`
//! keeps the output's bytes with the readings. An output with no numeric
//! reading to store is a failure.
//!
//! A message the device signed is stored only if its signature verifies
//! (see [`crate::signing`]); its readings are then marked verified and
//! `keepRaw` keeps the signed payload itself, so that the signature can
//! be checked again later. With `signedEnvelope` the rule's messages are
//! MQTT 3.1.1 envelopes `{"payload": …, "signature": …}`: the rule
//! evaluates the payload inside, and a message that is not an envelope is
//! refused.

use bytes::Bytes;
use civitas_rules::Json;
use serde::Deserialize;

use super::{ActionError, Prepare, number, params, template, template_opt};
use crate::document::DocumentError;
use crate::sink::TelemetryRecord;
use crate::template::Template;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Params {
    thing_name: String,
    metrics: Option<Vec<String>>,
    timestamp: Option<String>,
    #[serde(default)]
    keep_raw: bool,
    #[serde(default)]
    signed_envelope: bool,
}

#[derive(Debug)]
pub struct StoreSpec {
    pub thing_name: Template,
    metrics: Option<Vec<String>>,
    timestamp: Option<Template>,
    keep_raw: bool,
    signed_envelope: bool,
}

impl StoreSpec {
    pub(super) fn parse(value: &Json, path: &str) -> Result<StoreSpec, DocumentError> {
        let p: Params = params(value, path)?;
        if let Some(metrics) = &p.metrics
            && (metrics.is_empty() || metrics.iter().any(String::is_empty))
        {
            return Err(DocumentError::new(
                format!("{path}.metrics"),
                "list at least one field name, and no empty one (or leave metrics out to store every numeric field)",
            ));
        }
        Ok(StoreSpec {
            thing_name: template(path, "thingName", &p.thing_name)?,
            metrics: p.metrics,
            timestamp: template_opt(path, "timestamp", &p.timestamp)?,
            keep_raw: p.keep_raw,
            signed_envelope: p.signed_envelope,
        })
    }

    /// True if the rule's messages are MQTT 3.1.1 signature envelopes,
    /// opened before the rule evaluates them.
    pub fn signed_envelope(&self) -> bool {
        self.signed_envelope
    }

    pub(super) fn prepare(&self, p: &Prepare<'_>) -> Result<TelemetryRecord, ActionError> {
        let output = p.output_object("store")?;
        let numeric = |v: &Json| v.as_f64().filter(|x| x.is_finite());
        let metrics: Vec<(String, f64)> = match &self.metrics {
            Some(names) => names
                .iter()
                .filter_map(|n| output.get(n).and_then(numeric).map(|v| (n.clone(), v)))
                .collect(),
            None => output
                .iter()
                .filter_map(|(k, v)| numeric(v).map(|v| (k.clone(), v)))
                .collect(),
        };
        if metrics.is_empty() {
            return Err(ActionError(match &self.metrics {
                Some(names) => format!("none of {names:?} is a number in the rule's output"),
                None => "the rule's output has no numeric field to store".into(),
            }));
        }
        let thing = p.render(&self.thing_name)?;
        if thing.is_empty() {
            return Err(ActionError("thingName rendered empty".into()));
        }
        let precise_timestamp_ms = match p.render_opt(&self.timestamp)? {
            Some(text) => {
                let ms = number("timestamp", &text)?;
                if ms < 0.0 {
                    return Err(ActionError(format!("timestamp {text:?} is before 1970")));
                }
                ms
            }
            None => p.message.timestamp_ms.max(0) as f64,
        };
        Ok(TelemetryRecord {
            thing,
            // Whole milliseconds, as stored (the cast saturates).
            timestamp_ms: precise_timestamp_ms as u64,
            precise_timestamp_ms,
            metrics,
            raw: self.keep_raw.then(|| Bytes::from(p.output.to_bytes())),
            signature: None,
        })
    }
}
