//! `republish`: publish the rule's output to a topic, as the broker.
//!
//! AWS fields: `topic` (template; `$$` stands for a leading `$`, so
//! `$$aws/things/lamp-1/shadow/update` reaches a reserved topic), `qos`
//! (0 or 1, default 0) and MQTT 5 `headers` (`contentType`,
//! `correlationData` in base64, `messageExpiry` in seconds,
//! `payloadFormatIndicator` `UNSPECIFIED_BYTES` or `UTF8_DATA`,
//! `responseTopic`, `userProperties`; values are templates). As in AWS
//! the message is not retained. A topic the rule itself reads is refused
//! at run time: the rule would feed itself forever.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use civitas_mqtt::PublishProperties;
use civitas_rules::Json;
use serde::{Deserialize, Serialize};

use super::{ActionError, KeyValue, Prepare, params, template, template_opt};
use crate::document::DocumentError;
use crate::template::Template;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Params {
    topic: String,
    qos: Option<u8>,
    headers: Option<HeaderParams>,
    #[allow(dead_code)]
    role_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HeaderParams {
    content_type: Option<String>,
    correlation_data: Option<String>,
    message_expiry: Option<String>,
    payload_format_indicator: Option<String>,
    response_topic: Option<String>,
    user_properties: Option<Vec<KeyValue>>,
}

#[derive(Debug)]
pub struct RepublishSpec {
    pub topic: Template,
    pub qos: u8,
    headers: HeaderTemplates,
}

#[derive(Debug, Default)]
struct HeaderTemplates {
    content_type: Option<Template>,
    correlation_data: Option<Template>,
    message_expiry: Option<Template>,
    payload_format_indicator: Option<Template>,
    response_topic: Option<Template>,
    user_properties: Vec<(String, Template)>,
}

/// A republish, rendered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepublishCall {
    pub topic: String,
    pub qos: u8,
    #[serde(skip_serializing_if = "RepublishHeaders::is_empty")]
    pub headers: RepublishHeaders,
    #[serde(serialize_with = "crate::payload::serialize")]
    pub payload: Bytes,
}

/// MQTT 5 properties of a republished message.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepublishHeaders {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::payload::serialize_opt"
    )]
    pub correlation_data: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_expiry: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_format_indicator: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_topic: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<(String, String)>,
}

impl RepublishHeaders {
    pub fn is_empty(&self) -> bool {
        *self == RepublishHeaders::default()
    }

    pub fn to_properties(&self) -> PublishProperties {
        PublishProperties {
            payload_format_indicator: self.payload_format_indicator,
            message_expiry_interval: self.message_expiry,
            response_topic: self.response_topic.clone(),
            correlation_data: self.correlation_data.clone(),
            user_properties: self.user_properties.clone(),
            content_type: self.content_type.clone(),
            ..PublishProperties::default()
        }
    }
}

/// `$$` at the start stands for `$`, as in AWS.
fn unescape_topic(topic: &str) -> &str {
    if topic.starts_with("$$") {
        &topic[1..]
    } else {
        topic
    }
}

impl RepublishSpec {
    pub(super) fn parse(value: &Json, path: &str) -> Result<RepublishSpec, DocumentError> {
        let p: Params = params(value, path)?;
        let qos = p.qos.unwrap_or(0);
        if qos > 1 {
            return Err(DocumentError::new(
                format!("{path}.qos"),
                format!("{qos} is not a republish QoS: use 0 or 1"),
            ));
        }
        let topic = template(path, "topic", &p.topic)?;
        if topic.is_literal()
            && let Err(e) = civitas_mqtt::topic::validate_topic_name(unescape_topic(&p.topic))
        {
            return Err(DocumentError::new(
                format!("{path}.topic"),
                format!("{:?} is not a topic name: {e}", p.topic),
            ));
        }
        let headers = match p.headers {
            None => HeaderTemplates::default(),
            Some(h) => {
                let at = format!("{path}.headers");
                HeaderTemplates {
                    content_type: template_opt(&at, "contentType", &h.content_type)?,
                    correlation_data: template_opt(&at, "correlationData", &h.correlation_data)?,
                    message_expiry: template_opt(&at, "messageExpiry", &h.message_expiry)?,
                    payload_format_indicator: template_opt(
                        &at,
                        "payloadFormatIndicator",
                        &h.payload_format_indicator,
                    )?,
                    response_topic: template_opt(&at, "responseTopic", &h.response_topic)?,
                    user_properties: h
                        .user_properties
                        .unwrap_or_default()
                        .into_iter()
                        .map(|kv| Ok((kv.key, template(&at, "userProperties", &kv.value)?)))
                        .collect::<Result<_, DocumentError>>()?,
                }
            }
        };
        Ok(RepublishSpec {
            topic,
            qos,
            headers,
        })
    }

    pub(super) fn prepare(&self, p: &Prepare<'_>) -> Result<RepublishCall, ActionError> {
        let rendered = p.render(&self.topic)?;
        let topic = unescape_topic(&rendered).to_owned();
        civitas_mqtt::topic::validate_topic_name(&topic)
            .map_err(|e| ActionError(format!("{topic:?} is not a topic name: {e}")))?;
        if p.rule.matches_topic(&topic) {
            return Err(ActionError(format!(
                "republishing to {topic:?} would trigger the rule again (it reads {:?})",
                p.rule.from_filter()
            )));
        }
        Ok(RepublishCall {
            topic,
            qos: self.qos,
            headers: self.headers.render(p)?,
            payload: Bytes::from(p.output.to_bytes()),
        })
    }
}

impl HeaderTemplates {
    fn render(&self, p: &Prepare<'_>) -> Result<RepublishHeaders, ActionError> {
        let correlation_data = p
            .render_opt(&self.correlation_data)?
            .map(|text| {
                STANDARD
                    .decode(text.trim())
                    .map(Bytes::from)
                    .map_err(|_| ActionError(format!("correlationData {text:?} is not base64")))
            })
            .transpose()?;
        let message_expiry = p
            .render_opt(&self.message_expiry)?
            .map(|text| {
                text.trim().parse::<u32>().map_err(|_| {
                    ActionError(format!("messageExpiry {text:?} is not a number of seconds"))
                })
            })
            .transpose()?;
        let payload_format_indicator = p
            .render_opt(&self.payload_format_indicator)?
            .map(|text| match text.trim() {
                "UNSPECIFIED_BYTES" => Ok(0),
                "UTF8_DATA" => Ok(1),
                other => Err(ActionError(format!(
                    "payloadFormatIndicator {other:?}: use UNSPECIFIED_BYTES or UTF8_DATA"
                ))),
            })
            .transpose()?;
        let mut user_properties = Vec::with_capacity(self.user_properties.len());
        for (key, value) in &self.user_properties {
            user_properties.push((key.clone(), p.render(value)?));
        }
        Ok(RepublishHeaders {
            content_type: p.render_opt(&self.content_type)?,
            correlation_data,
            message_expiry,
            payload_format_indicator,
            response_topic: p.render_opt(&self.response_topic)?,
            user_properties,
        })
    }
}
