//! Rule administration as requests and responses, so that the CLI can
//! send them to a running server (over the admin socket) or execute them
//! on a store it opened itself, with the same results.
//!
//! Requests are tagged by `op` (`{"op":"get","name":"lamp_alerts"}`),
//! responses by `type` with the payload in `data`.

use civitas_rules::Json;
use serde::{Deserialize, Serialize};

use crate::catalog::RuleInfo;
use crate::document::{document_from_value, validate};
use crate::dry_run::{TestReport, test_rule};
use crate::error::RulesError;
use crate::message::RuleMessage;
use crate::runtime::RulesEngine;

/// The service name rule requests travel under on the admin socket.
pub const ADMIN_SERVICE: &str = "rules";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RuleRequest {
    /// AWS CreateTopicRule; `document` is a TopicRulePayload.
    Create {
        name: String,
        document: Json,
    },
    /// AWS ReplaceTopicRule.
    Replace {
        name: String,
        document: Json,
    },
    Get {
        name: String,
    },
    List,
    Enable {
        name: String,
    },
    Disable {
        name: String,
    },
    Delete {
        name: String,
    },
    /// Runs a stored rule (`name`) or a document not stored (`document`,
    /// with `name` as its rule name, default `test`) on a sample message.
    Test {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        document: Option<Json>,
        topic: String,
        payload: String,
        #[serde(default)]
        client_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum RuleResponse {
    Rule(Box<RuleInfo>),
    Rules(Vec<RuleInfo>),
    Deleted,
    Test(Box<TestReport>),
    Error { code: String, message: String },
}

impl RulesEngine {
    /// Runs one administration request. Never fails: errors become
    /// [`RuleResponse::Error`]. Blocking (writes wait for the store).
    pub fn execute(&self, request: RuleRequest) -> RuleResponse {
        self.dispatch(request)
            .unwrap_or_else(|e| RuleResponse::Error {
                code: e.code().to_owned(),
                message: e.to_string(),
            })
    }

    fn dispatch(&self, request: RuleRequest) -> Result<RuleResponse, RulesError> {
        use RuleRequest as R;
        Ok(match request {
            R::Create { name, document } => RuleResponse::Rule(Box::new(
                self.create(&name, document_from_value(document)?)?,
            )),
            R::Replace { name, document } => RuleResponse::Rule(Box::new(
                self.replace(&name, document_from_value(document)?)?,
            )),
            R::Get { name } => RuleResponse::Rule(Box::new(self.catalog().get(&name)?)),
            R::List => RuleResponse::Rules(self.catalog().list()),
            R::Enable { name } => RuleResponse::Rule(Box::new(self.set_enabled(&name, true)?)),
            R::Disable { name } => RuleResponse::Rule(Box::new(self.set_enabled(&name, false)?)),
            R::Delete { name } => {
                self.delete(&name)?;
                RuleResponse::Deleted
            }
            R::Test {
                name,
                document,
                topic,
                payload,
                client_id,
            } => {
                civitas_mqtt::topic::validate_topic_name(&topic).map_err(|e| {
                    RulesError::BadRequest(format!("{topic:?} is not a topic name: {e}"))
                })?;
                let rule = match (name, document) {
                    (Some(name), None) => self.catalog().rule(&name)?,
                    (name, Some(document)) => std::sync::Arc::new(validate(
                        name.as_deref().unwrap_or("test"),
                        document_from_value(document)?,
                    )?),
                    (None, None) => {
                        return Err(RulesError::BadRequest(
                            "test needs a rule name or a document".into(),
                        ));
                    }
                };
                let message =
                    RuleMessage::new(topic, payload.into_bytes()).with_client_id(client_id);
                RuleResponse::Test(Box::new(test_rule(&rule, self.deps(), &message)))
            }
        })
    }
}
