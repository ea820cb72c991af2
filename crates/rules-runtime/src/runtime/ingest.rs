//! How messages reach the rules: the broker's message observer (FROM
//! filter matches) and the Basic Ingest topic service (`$aws/rules/…`).
//! Both hold the engine weakly: the broker must not keep a dropped engine
//! alive, and a dropped engine runs no rules.

use std::sync::{Arc, Weak};

use civitas_broker::{MessageObserver, ServiceReply, ServiceRequest, TopicService};
use civitas_store::StoredMessage;

use super::Inner;
use crate::message::{RuleMessage, new_uuid, now_ms};
use crate::signing::DeviceSignature;

/// The Basic Ingest prefix: `$aws/rules/{rule}/…`.
pub(crate) const BASIC_INGEST: &str = "$aws/rules/";

pub(crate) struct Observer {
    engine: Weak<Inner>,
}

impl Observer {
    pub(crate) fn new(engine: &Arc<Inner>) -> Observer {
        Observer {
            engine: Arc::downgrade(engine),
        }
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RulesObserver")
    }
}

impl MessageObserver for Observer {
    fn observe(&self, message: &Arc<StoredMessage>, publisher: Option<&str>) {
        let Some(engine) = self.engine.upgrade() else {
            return;
        };
        let set = engine.live.load();
        if set.rules.is_empty() {
            return;
        }
        // Built once, for the first matching rule, and shared by the rest.
        let mut shared: Option<Arc<RuleMessage>> = None;
        set.index.for_each_match(&message.topic, |_, _, rule| {
            let m = shared.get_or_insert_with(|| {
                Arc::new(RuleMessage {
                    topic: message.topic.clone(),
                    payload: message.payload.clone(),
                    client_id: publisher.map(str::to_owned),
                    principal: None,
                    timestamp_ms: i64::try_from(message.received_at_ms).unwrap_or(i64::MAX),
                    trace_id: new_uuid(),
                    signature: DeviceSignature::from_user_properties(
                        &message.properties.user_properties,
                    ),
                })
            });
            rule.offer(m);
        });
    }
}

pub(crate) struct BasicIngest {
    engine: Weak<Inner>,
}

impl BasicIngest {
    pub(crate) fn new(engine: &Arc<Inner>) -> BasicIngest {
        BasicIngest {
            engine: Arc::downgrade(engine),
        }
    }
}

impl std::fmt::Debug for BasicIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicIngest")
    }
}

/// The rule a Basic Ingest topic names.
pub(crate) fn ingest_rule_name(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix(BASIC_INGEST)?;
    let name = rest.split('/').next().unwrap_or_default();
    (!name.is_empty()).then_some(name)
}

impl TopicService for BasicIngest {
    fn handles(&self, topic: &str) -> bool {
        topic.starts_with(BASIC_INGEST)
    }

    fn consumes(&self) -> bool {
        true
    }

    fn handle(&self, request: ServiceRequest) -> Vec<ServiceReply> {
        let Some(engine) = self.engine.upgrade() else {
            return Vec::new();
        };
        let Some(name) = ingest_rule_name(&request.topic) else {
            engine.ingest_unmatched.inc();
            return Vec::new();
        };
        let name = name.to_owned();
        let message = RuleMessage {
            topic: request.topic,
            payload: request.payload,
            client_id: Some(request.client_id.to_string()),
            principal: Some(request.principal),
            timestamp_ms: now_ms(),
            trace_id: new_uuid(),
            signature: DeviceSignature::from_user_properties(&request.user_properties),
        };
        if !engine.ingest(&name, message) {
            tracing::debug!(rule = %name, "basic ingest for no enabled rule; dropped");
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_ingest_topics_name_their_rule() {
        assert_eq!(
            ingest_rule_name("$aws/rules/lamp_power/city/a"),
            Some("lamp_power")
        );
        assert_eq!(
            ingest_rule_name("$aws/rules/lamp_power"),
            Some("lamp_power")
        );
        assert_eq!(ingest_rule_name("$aws/rules/"), None);
        assert_eq!(ingest_rule_name("$aws/rules//x"), None);
        assert_eq!(ingest_rule_name("city/a"), None);
    }
}
