//! Shadow documents: the state and metadata a shadow holds, how they are
//! stored, and the JSON documents built from them (get/accepted and error
//! documents; update replies are built in `update`).

use serde_json::{Map, Value};

use crate::error::ShadowError;
use crate::request::{SectionPatch, UpdateRequest};
use crate::state;

type Object = Map<String, Value>;

/// The state and metadata of a live shadow. An empty map is an absent
/// section: AWS drops a section that an update leaves empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShadowData {
    pub desired: Object,
    pub reported: Object,
    /// Mirrors `desired`, with `{"timestamp": secs}` at each leaf.
    pub metadata_desired: Object,
    /// Mirrors `reported`.
    pub metadata_reported: Object,
}

/// A shadow as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredShadow {
    /// The version of the last accepted update.
    pub version: u64,
    /// When the shadow was last updated or deleted, unix ms.
    pub updated_at_ms: u64,
    /// `None` once deleted: the record then only carries the version
    /// counter, so that a shadow re-created soon after continues it.
    pub data: Option<ShadowData>,
}

/// A stored document that is not what this crate writes.
#[derive(Debug, thiserror::Error)]
#[error("malformed stored shadow document: {0}")]
pub struct MalformedDocument(String);

impl ShadowData {
    /// Applies a validated update; every leaf it writes is stamped `ts`.
    pub(crate) fn apply(&mut self, request: &UpdateRequest, ts: u64) {
        apply_section(
            &mut self.desired,
            &mut self.metadata_desired,
            &request.desired,
            ts,
        );
        apply_section(
            &mut self.reported,
            &mut self.metadata_reported,
            &request.reported,
            ts,
        );
    }

    /// The desired keys that reported lacks or holds differently.
    pub fn delta(&self) -> Object {
        if self.desired.is_empty() {
            return Object::new();
        }
        state::delta(&self.desired, &self.reported)
    }

    /// The desired metadata of the keys of `delta`.
    pub fn delta_metadata(&self, delta: &Object) -> Object {
        state::delta_metadata(delta, &self.desired, &self.metadata_desired)
    }

    /// The size the state limit applies to: `desired` and `reported`
    /// serialized, metadata not counted (as AWS counts it).
    pub fn state_size(&self) -> usize {
        let size = |m: &Object| {
            if m.is_empty() {
                0
            } else {
                state::serialized_len(m)
            }
        };
        size(&self.desired) + size(&self.reported)
    }

    /// `{"desired": .., "reported": ..}` with absent sections left out.
    pub(crate) fn state_json(&self) -> Object {
        sections(&self.desired, &self.reported)
    }

    pub(crate) fn metadata_json(&self) -> Object {
        sections(&self.metadata_desired, &self.metadata_reported)
    }

    /// The stored form: `{"state": {..}, "metadata": {..}}`.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut doc = Object::new();
        doc.insert("state".into(), Value::Object(self.state_json()));
        doc.insert("metadata".into(), Value::Object(self.metadata_json()));
        // Serializing a `Value` into a `Vec` cannot fail.
        serde_json::to_vec(&doc).unwrap_or_default()
    }

    pub fn from_json_bytes(bytes: &[u8]) -> Result<ShadowData, MalformedDocument> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| MalformedDocument(e.to_string()))?;
        let mut doc = into_object(doc, "document")?;
        let mut state = optional_object(doc.remove("state"), "state")?;
        let mut metadata = optional_object(doc.remove("metadata"), "metadata")?;
        Ok(ShadowData {
            desired: optional_object(state.remove("desired"), "state.desired")?,
            reported: optional_object(state.remove("reported"), "state.reported")?,
            metadata_desired: optional_object(metadata.remove("desired"), "metadata.desired")?,
            metadata_reported: optional_object(metadata.remove("reported"), "metadata.reported")?,
        })
    }
}

fn apply_section(state: &mut Object, meta: &mut Object, patch: &SectionPatch, ts: u64) {
    match patch {
        SectionPatch::Keep => {}
        SectionPatch::Clear => {
            state.clear();
            meta.clear();
        }
        SectionPatch::Merge(m) => state::merge(state, meta, m, ts),
    }
}

fn sections(desired: &Object, reported: &Object) -> Object {
    let mut out = Object::new();
    if !desired.is_empty() {
        out.insert("desired".into(), Value::Object(desired.clone()));
    }
    if !reported.is_empty() {
        out.insert("reported".into(), Value::Object(reported.clone()));
    }
    out
}

fn into_object(v: Value, what: &str) -> Result<Object, MalformedDocument> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(MalformedDocument(format!("{what} is not an object"))),
    }
}

fn optional_object(v: Option<Value>, what: &str) -> Result<Object, MalformedDocument> {
    v.map_or(Ok(Object::new()), |v| into_object(v, what))
}

/// A shadow as a get returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowDocument {
    pub version: u64,
    /// When the document was read, epoch seconds.
    pub timestamp: u64,
    pub data: ShadowData,
}

impl ShadowDocument {
    /// The get/accepted document: `state` with `desired`, `reported` and
    /// (when they differ) `delta`; `metadata`; `version`; `timestamp`; and
    /// `clientToken` when the request had one.
    pub fn to_json(&self, client_token: Option<&str>) -> Value {
        let mut state = self.data.state_json();
        let delta = self.data.delta();
        if !delta.is_empty() {
            state.insert("delta".into(), Value::Object(delta));
        }
        let mut doc = Object::new();
        doc.insert("state".into(), Value::Object(state));
        doc.insert("metadata".into(), Value::Object(self.data.metadata_json()));
        doc.insert("version".into(), Value::from(self.version));
        doc.insert("timestamp".into(), Value::from(self.timestamp));
        with_token(doc, client_token)
    }
}

/// The document published on `/rejected`:
/// `{"code", "message", "timestamp", "clientToken"}`. A 404 has no
/// timestamp, as AWS sends it.
pub fn error_document(error: &ShadowError, client_token: Option<&str>, timestamp: u64) -> Value {
    let mut doc = Object::new();
    doc.insert("code".into(), Value::from(error.code()));
    doc.insert("message".into(), Value::from(error.to_string()));
    if !matches!(error, ShadowError::NotFound(_)) {
        doc.insert("timestamp".into(), Value::from(timestamp));
    }
    with_token(doc, client_token)
}

pub(crate) fn with_token(mut doc: Object, client_token: Option<&str>) -> Value {
    if let Some(token) = client_token {
        doc.insert("clientToken".into(), Value::from(token));
    }
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stored_form_round_trips() {
        let data = ShadowData {
            desired: json!({"a": 1}).as_object().unwrap().clone(),
            reported: Object::new(),
            metadata_desired: json!({"a": {"timestamp": 5}}).as_object().unwrap().clone(),
            metadata_reported: Object::new(),
        };
        let bytes = data.to_json_bytes();
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes).unwrap(),
            json!({"state": {"desired": {"a": 1}}, "metadata": {"desired": {"a": {"timestamp": 5}}}})
        );
        assert_eq!(ShadowData::from_json_bytes(&bytes).unwrap(), data);
        assert_eq!(
            ShadowData::from_json_bytes(b"{}").unwrap(),
            ShadowData::default()
        );
        assert!(ShadowData::from_json_bytes(b"[]").is_err());
        assert!(ShadowData::from_json_bytes(br#"{"state":{"desired":1}}"#).is_err());
        assert!(ShadowData::from_json_bytes(b"\xff").is_err());
    }
}
