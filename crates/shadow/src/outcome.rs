//! What an accepted update or delete produces: the reply documents and
//! the messages to publish, in the order AWS publishes them.

use serde_json::{Map, Value};

use crate::document::{ShadowData, with_token};
use crate::request::UpdateRequest;
use crate::state;

/// One message to publish: a topic and a JSON payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub topic: String,
    pub payload: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(topic: String, doc: &Value) -> Reply {
        Reply {
            topic,
            // Serializing a `Value` into a `Vec` cannot fail.
            payload: serde_json::to_vec(doc).unwrap_or_default(),
        }
    }
}

/// An accepted update.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The shadow's new version.
    pub version: u64,
    /// The `/update/accepted` document (also the HTTPS response body): the
    /// request's `state` as sent, its metadata, `version`, `timestamp`,
    /// `clientToken`.
    pub accepted: Value,
    /// The `/update/delta` document, when desired and reported differ
    /// after the update.
    pub delta: Option<Value>,
    /// The `/update/documents` document: `previous` (absent for a new
    /// shadow), `current`, `timestamp`, `clientToken`.
    pub documents: Value,
    /// `.../update`, to which the reply suffixes are appended.
    request_topic: String,
}

impl UpdateOutcome {
    pub(crate) fn new(
        request_topic: String,
        previous: Option<(&ShadowData, u64)>,
        current: &ShadowData,
        version: u64,
        request: &UpdateRequest,
        client_token: Option<&str>,
        ts: u64,
    ) -> UpdateOutcome {
        let request_state = Value::Object(request.state.clone());
        let mut accepted = Map::new();
        accepted.insert("metadata".into(), state::metadata_of(&request_state, ts));
        accepted.insert("state".into(), request_state);
        accepted.insert("version".into(), Value::from(version));
        accepted.insert("timestamp".into(), Value::from(ts));

        let delta = current.delta();
        let delta = (!delta.is_empty()).then(|| {
            let mut doc = Map::new();
            doc.insert(
                "metadata".into(),
                Value::Object(current.delta_metadata(&delta)),
            );
            doc.insert("state".into(), Value::Object(delta));
            doc.insert("version".into(), Value::from(version));
            doc.insert("timestamp".into(), Value::from(ts));
            with_token(doc, client_token)
        });

        let mut documents = Map::new();
        if let Some((previous, previous_version)) = previous {
            documents.insert("previous".into(), snapshot(previous, previous_version));
        }
        documents.insert("current".into(), snapshot(current, version));
        documents.insert("timestamp".into(), Value::from(ts));

        UpdateOutcome {
            version,
            accepted: with_token(accepted, client_token),
            delta,
            documents: with_token(documents, client_token),
            request_topic,
        }
    }

    /// `/update/accepted`, then `/update/delta` (if any), then
    /// `/update/documents`.
    pub fn replies(&self) -> Vec<Reply> {
        let t = &self.request_topic;
        let mut out = Vec::with_capacity(3);
        out.push(Reply::json(format!("{t}/accepted"), &self.accepted));
        if let Some(delta) = &self.delta {
            out.push(Reply::json(format!("{t}/delta"), delta));
        }
        out.push(Reply::json(format!("{t}/documents"), &self.documents));
        out
    }
}

/// `{"state", "metadata", "version"}` as `/update/documents` carries it.
fn snapshot(data: &ShadowData, version: u64) -> Value {
    let mut doc = Map::new();
    doc.insert("state".into(), Value::Object(data.state_json()));
    doc.insert("metadata".into(), Value::Object(data.metadata_json()));
    doc.insert("version".into(), Value::from(version));
    Value::Object(doc)
}

/// An accepted delete.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteOutcome {
    /// The version of the deleted shadow; a shadow created again within the
    /// retention period continues from it.
    pub version: u64,
    /// The `/delete/accepted` document (also the HTTPS response body):
    /// `version`, `timestamp`, `clientToken`.
    pub accepted: Value,
    request_topic: String,
}

impl DeleteOutcome {
    pub(crate) fn new(
        request_topic: String,
        version: u64,
        client_token: Option<&str>,
        ts: u64,
    ) -> DeleteOutcome {
        let mut accepted = Map::new();
        accepted.insert("version".into(), Value::from(version));
        accepted.insert("timestamp".into(), Value::from(ts));
        DeleteOutcome {
            version,
            accepted: with_token(accepted, client_token),
            request_topic,
        }
    }

    /// `/delete/accepted`.
    pub fn replies(&self) -> Vec<Reply> {
        vec![Reply::json(
            format!("{}/accepted", self.request_topic),
            &self.accepted,
        )]
    }
}
