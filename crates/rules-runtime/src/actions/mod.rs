//! Rule actions: what a rule does with its output. Each action type has
//! its own module that parses its part of a rule document (AWS field
//! names; `roleArn` is accepted and ignored, civitas has no IAM roles)
//! and turns one evaluation into an [`Invocation`] — every template
//! rendered, every target resolved, nothing done yet. The runtime
//! performs invocations; `rule test` shows them.
//!
//! | type | AWS action | does |
//! |---|---|---|
//! | `republish` | Republish | publishes the output as the broker |
//! | `shadow` | (civitas) | `{"state":{"reported": output}}` into a device shadow |
//! | `store` | (civitas) | numeric fields of the output into the telemetry store |
//! | `cloudwatchMetric` (alias `metric`) | CloudWatch metric | sets a gauge in the monitor |
//! | `cloudwatchAlarm` (alias `alarm`) | CloudWatch alarm | raises or clears a monitor alarm |
//! | `http` (alias `webhook`) | HTTP | POSTs the output to an HTTPS endpoint |

mod alarm;
mod http;
mod metric;
mod republish;
mod shadow;
mod store;

use civitas_rules::{Document, EvalContext, EvalError, Json, Message, Output, Rule};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use alarm::{AlarmCall, AlarmChange, AlarmSpec};
pub(crate) use http::check_url;
pub use http::{HttpCall, HttpSpec, WebhookSettings};
pub use metric::{MetricCall, MetricSpec};
pub use republish::{RepublishCall, RepublishHeaders, RepublishSpec};
pub use shadow::{ShadowCall, ShadowSpec};
pub use store::StoreSpec;

use crate::document::DocumentError;
use crate::sink::TelemetryRecord;
use crate::template::Template;

/// One validated action of a rule.
#[derive(Debug)]
pub enum ActionSpec {
    Republish(RepublishSpec),
    Shadow(ShadowSpec),
    Store(StoreSpec),
    Metric(MetricSpec),
    Alarm(AlarmSpec),
    Http(HttpSpec),
}

/// One action, ready to perform: the answer to "what would this action
/// receive?".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Invocation {
    Republish(RepublishCall),
    Shadow(ShadowCall),
    Store(TelemetryRecord),
    Metric(MetricCall),
    Alarm(AlarmCall),
    Http(HttpCall),
}

impl Invocation {
    /// What the action acts on, as AWS reports it in `failedResource`.
    pub fn resource(&self) -> String {
        match self {
            Invocation::Republish(c) => c.topic.clone(),
            Invocation::Shadow(c) => match &c.shadow_name {
                Some(s) => format!("{}~{s}", c.thing_name),
                None => c.thing_name.clone(),
            },
            Invocation::Store(r) => r.thing.clone(),
            Invocation::Metric(c) => format!("{}/{}", c.namespace, c.name),
            Invocation::Alarm(c) => c.name.clone(),
            Invocation::Http(c) => c.url.clone(),
        }
    }
}

/// Why an action could not be prepared or performed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActionError(pub String);

impl From<EvalError> for ActionError {
    fn from(e: EvalError) -> ActionError {
        ActionError(format!("template: {e}"))
    }
}

/// What an action is prepared from.
#[derive(Clone, Copy)]
pub struct Prepare<'a> {
    /// The rule the action belongs to (a republish may not feed it).
    pub rule: &'a Rule,
    /// The original message: templates read it.
    pub message: &'a Message<'a>,
    /// Its payload, parsed once for the rule and every template.
    pub document: &'a std::cell::RefCell<Document<'a>>,
    pub context: &'a EvalContext<'a>,
    /// What the rule's SELECT made of the message.
    pub output: &'a Output,
}

impl Prepare<'_> {
    fn render(&self, t: &Template) -> Result<String, ActionError> {
        Ok(t.render_in(self.message, &mut self.document.borrow_mut(), self.context)?)
    }

    fn render_opt(&self, t: &Option<Template>) -> Result<Option<String>, ActionError> {
        t.as_ref().map(|t| self.render(t)).transpose()
    }

    fn output_object(&self, action: &str) -> Result<&serde_json::Map<String, Json>, ActionError> {
        match self.output {
            Output::Json(Json::Object(map)) => Ok(map),
            Output::Json(other) => Err(ActionError(format!(
                "the {action} action needs a JSON object from the rule, and it produced {other}"
            ))),
            Output::Raw(_) => Err(ActionError(format!(
                "the {action} action needs a JSON object from the rule, and it produced binary data"
            ))),
        }
    }
}

impl ActionSpec {
    /// Parses one action object (`{"republish": {…}}`) found at `path`.
    pub fn parse(value: &Json, path: &str) -> Result<ActionSpec, DocumentError> {
        let Some(map) = value.as_object() else {
            return Err(DocumentError::new(
                path,
                "expected an object such as {\"republish\": {…}}",
            ));
        };
        let mut entries = map.iter();
        let (Some((kind, params)), None) = (entries.next(), entries.next()) else {
            return Err(DocumentError::new(
                path,
                format!("an action has exactly one action type, found {}", map.len()),
            ));
        };
        let at = format!("{path}.{kind}");
        Ok(match kind.as_str() {
            "republish" => ActionSpec::Republish(RepublishSpec::parse(params, &at)?),
            "shadow" => ActionSpec::Shadow(ShadowSpec::parse(params, &at)?),
            "store" => ActionSpec::Store(StoreSpec::parse(params, &at)?),
            "cloudwatchMetric" | "metric" => ActionSpec::Metric(MetricSpec::parse(params, &at)?),
            "cloudwatchAlarm" | "alarm" => ActionSpec::Alarm(AlarmSpec::parse(params, &at)?),
            "http" | "webhook" => ActionSpec::Http(HttpSpec::parse(params, &at)?),
            other => {
                return Err(DocumentError::new(
                    path,
                    format!(
                        "unknown action type {other:?}; civitas supports republish, shadow, \
                         store, cloudwatchMetric (metric), cloudwatchAlarm (alarm) and http (webhook)"
                    ),
                ));
            }
        })
    }

    /// The action's type as the document names it.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionSpec::Republish(_) => "republish",
            ActionSpec::Shadow(_) => "shadow",
            ActionSpec::Store(_) => "store",
            ActionSpec::Metric(_) => "cloudwatchMetric",
            ActionSpec::Alarm(_) => "cloudwatchAlarm",
            ActionSpec::Http(_) => "http",
        }
    }

    /// The action's name in AWS error documents (`failedAction`).
    pub fn failed_action_name(&self) -> &'static str {
        match self {
            ActionSpec::Republish(_) => "RepublishAction",
            ActionSpec::Shadow(_) => "ShadowAction",
            ActionSpec::Store(_) => "StoreAction",
            ActionSpec::Metric(_) => "CloudwatchMetricAction",
            ActionSpec::Alarm(_) => "CloudwatchAlarmAction",
            ActionSpec::Http(_) => "HttpAction",
        }
    }

    /// The target as far as it is known before a message arrives (the
    /// template source), for `failedResource` when preparing fails.
    pub fn resource_hint(&self) -> String {
        match self {
            ActionSpec::Republish(s) => s.topic.source().to_owned(),
            ActionSpec::Shadow(s) => s.thing_name.source().to_owned(),
            ActionSpec::Store(s) => s.thing_name.source().to_owned(),
            ActionSpec::Metric(s) => s.metric_name.source().to_owned(),
            ActionSpec::Alarm(s) => s.alarm_name.source().to_owned(),
            ActionSpec::Http(s) => s.url.source().to_owned(),
        }
    }

    /// Renders the action for one evaluation.
    pub fn prepare(&self, p: &Prepare<'_>) -> Result<Invocation, ActionError> {
        Ok(match self {
            ActionSpec::Republish(s) => Invocation::Republish(s.prepare(p)?),
            ActionSpec::Shadow(s) => Invocation::Shadow(s.prepare(p)?),
            ActionSpec::Store(s) => Invocation::Store(s.prepare(p)?),
            ActionSpec::Metric(s) => Invocation::Metric(s.prepare(p)?),
            ActionSpec::Alarm(s) => Invocation::Alarm(s.prepare(p)?),
            ActionSpec::Http(s) => Invocation::Http(s.prepare(p)?),
        })
    }

    /// The HTTP action's settings, for the runtime's delivery queue.
    pub fn http(&self) -> Option<&HttpSpec> {
        match self {
            ActionSpec::Http(s) => Some(s),
            _ => None,
        }
    }
}

/// Deserializes an action's parameters, naming `path` on error.
fn params<T: DeserializeOwned>(value: &Json, path: &str) -> Result<T, DocumentError> {
    if !value.is_object() {
        return Err(DocumentError::new(path, "expected an object"));
    }
    serde_json::from_value(value.clone()).map_err(|e| DocumentError::new(path, e.to_string()))
}

/// Compiles the template in field `field` of the action at `path`.
fn template(path: &str, field: &str, source: &str) -> Result<Template, DocumentError> {
    Template::parse(source)
        .map_err(|e| DocumentError::new(format!("{path}.{field}"), format!("template {e}")))
}

fn template_opt(
    path: &str,
    field: &str,
    source: &Option<String>,
) -> Result<Option<Template>, DocumentError> {
    source
        .as_deref()
        .map(|s| template(path, field, s))
        .transpose()
}

/// A number from a rendered template (`metricValue`, a timestamp).
fn number(field: &str, text: &str) -> Result<f64, ActionError> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| ActionError(format!("{field} {text:?} is not a number")))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ActionError(format!(
            "{field} {text:?} is not a finite number"
        )))
    }
}

/// `{"key": …, "value": …}`, as AWS writes header and property lists.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyValue {
    key: String,
    value: String,
}
