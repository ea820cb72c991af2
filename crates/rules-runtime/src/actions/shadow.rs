//! `shadow` (civitas): report the rule's output into a device shadow.
//!
//! `{"shadow": {"thingName": "${topic(4)}", "shadowName": "lighting"}}`
//! sends the shadow service the update request
//! `{"state": {"reported": <output>}}` — what the device itself would
//! publish on `$aws/things/{thing}/shadow[/name/{shadow}]/update` — so the
//! output must be a JSON object; a key set to `null` deletes it, as in any
//! shadow update. `shadowName` is optional (the classic shadow). The
//! service's `/update/accepted`, `/delta` and `/documents` messages are
//! published as for a device's update.

use civitas_rules::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ActionError, Prepare, params, template, template_opt};
use crate::document::DocumentError;
use crate::template::Template;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Params {
    thing_name: String,
    shadow_name: Option<String>,
    #[allow(dead_code)]
    role_arn: Option<String>,
}

#[derive(Debug)]
pub struct ShadowSpec {
    pub thing_name: Template,
    pub shadow_name: Option<Template>,
}

/// A shadow update, rendered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShadowCall {
    pub thing_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_name: Option<String>,
    /// The update request document.
    pub document: Json,
}

impl ShadowSpec {
    pub(super) fn parse(value: &Json, path: &str) -> Result<ShadowSpec, DocumentError> {
        let p: Params = params(value, path)?;
        Ok(ShadowSpec {
            thing_name: template(path, "thingName", &p.thing_name)?,
            shadow_name: template_opt(path, "shadowName", &p.shadow_name)?,
        })
    }

    pub(super) fn prepare(&self, p: &Prepare<'_>) -> Result<ShadowCall, ActionError> {
        let reported = p.output_object("shadow")?;
        let thing_name = p.render(&self.thing_name)?;
        if thing_name.is_empty() {
            return Err(ActionError("thingName rendered empty".into()));
        }
        let shadow_name = p.render_opt(&self.shadow_name)?;
        if shadow_name.as_deref() == Some("") {
            return Err(ActionError("shadowName rendered empty".into()));
        }
        Ok(ShadowCall {
            thing_name,
            shadow_name,
            document: json!({"state": {"reported": reported}}),
        })
    }
}
