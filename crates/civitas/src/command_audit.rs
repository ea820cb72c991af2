//! Every actuator command sent to a device goes on the audit record: a
//! message observer notes each message routed to a device's command
//! topics (`city/{district}/things/{thing}/cmd/...`), with who sent it and
//! a digest of what was sent, never the payload itself.

use std::sync::Arc;

use civitas_audit::{Event, Outcome};
use civitas_broker::MessageObserver;
use civitas_store::StoredMessage;

use crate::security_wiring::AuditEvents;

#[derive(Debug)]
pub struct CommandAudit(pub AuditEvents);

impl MessageObserver for CommandAudit {
    fn observe(&self, message: &Arc<StoredMessage>, publisher: Option<&str>) {
        let Some(thing) = command_target(&message.topic) else {
            return;
        };
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &message.payload);
        let hex = hex::encode(digest);
        let actor = publisher.map_or_else(|| "system".to_string(), |p| format!("device:{p}"));
        let event = Event::new(
            actor,
            "command.send",
            format!("thing:{thing}"),
            Outcome::Success,
        )
        .detail("topic", message.topic.clone())
        .detail("qos", message.qos as u64)
        .detail("payload_bytes", message.payload.len() as u64)
        .detail("payload_sha256", hex);
        self.0.append(event);
    }
}

/// The thing a command topic addresses.
fn command_target(topic: &str) -> Option<&str> {
    let mut levels = topic.split('/');
    match (
        levels.next(),
        levels.next(),
        levels.next(),
        levels.next(),
        levels.next(),
    ) {
        (Some("city"), Some(_), Some("things"), Some(thing), Some("cmd")) if !thing.is_empty() => {
            Some(thing)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_command_topics_are_commands() {
        assert_eq!(
            command_target("city/north/things/lamp-1/cmd/power"),
            Some("lamp-1")
        );
        assert_eq!(
            command_target("city/north/things/lamp-1/cmd"),
            Some("lamp-1")
        );
        assert_eq!(command_target("city/north/things/lamp-1/telemetry"), None);
        assert_eq!(command_target("$aws/things/lamp-1/shadow/update"), None);
    }

    #[test]
    fn a_command_is_recorded_with_its_sender_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let (_ring, log) = crate::security_wiring::open(dir.path()).unwrap();
        let audit = CommandAudit(AuditEvents(log.sink()));
        let message = Arc::new(StoredMessage {
            topic: "city/north/things/lamp-1/cmd/power".into(),
            payload: bytes::Bytes::from_static(b"on"),
            qos: civitas_mqtt::QoS::AtLeastOnce,
            retain: false,
            expires_at_ms: None,
            properties: Default::default(),
            received_at_ms: 0,
        });
        audit.observe(&message, Some("control-center"));
        let telemetry = Arc::new(StoredMessage {
            topic: "city/north/things/lamp-1/telemetry".into(),
            ..(*message).clone()
        });
        audit.observe(&telemetry, Some("lamp-1"));
        log.close().unwrap();
        let records = civitas_audit::tail(&civitas_audit::log_path(dir.path()), 50).unwrap();
        let commands: Vec<_> = records
            .iter()
            .filter(|r| r.action == "command.send")
            .collect();
        assert_eq!(commands.len(), 1, "{records:?}");
        assert_eq!(commands[0].actor, "device:control-center");
        assert_eq!(commands[0].target, "thing:lamp-1");
        let details = commands[0].details_json().unwrap();
        // SHA-256 of "on".
        assert!(details.contains("b8d31e852725afb1"), "{details}");
    }
}
