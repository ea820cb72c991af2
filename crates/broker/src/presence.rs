//! Presence events in AWS IoT's shape: `$aws/events/presence/connected/{clientId}`
//! and `.../disconnected/{clientId}`, published by the broker itself so that
//! operators and rules see devices come and go.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use civitas_mqtt::{PublishProperties, QoS, ReasonCode};
use civitas_store::StoredMessage;

use crate::connection::{Close, Connection};
use crate::shared::Shared;

/// What one connection's two events share.
#[derive(Debug, Clone)]
pub(crate) struct Presence {
    session_identifier: String,
    version: u64,
}

impl Connection {
    pub(crate) fn presence_connected(&mut self) {
        let presence = Presence {
            session_identifier: uuid_v4(),
            version: self.shared.presence_version.fetch_add(1, Ordering::Relaxed) + 1,
        };
        let event = serde_json::json!({
            "clientId": &*self.client_id,
            "timestamp": self.shared.router.clock.now_ms(),
            "eventType": "connected",
            "sessionIdentifier": presence.session_identifier,
            "principalIdentifier": self.principal(),
            "versionNumber": presence.version,
        });
        publish_event(&self.shared, "connected", &self.client_id, &event);
        self.presence = Some(presence);
    }

    pub(crate) fn presence_disconnected(&mut self, close: &Close) {
        let Some(presence) = self.presence.take() else {
            return;
        };
        let event = serde_json::json!({
            "clientId": &*self.client_id,
            "timestamp": self.shared.router.clock.now_ms(),
            "eventType": "disconnected",
            "sessionIdentifier": presence.session_identifier,
            "principalIdentifier": self.principal(),
            "clientInitiatedDisconnect": matches!(close, Close::ClientDisconnect { .. }),
            "disconnectReason": disconnect_reason(close),
            "versionNumber": presence.version,
        });
        publish_event(&self.shared, "disconnected", &self.client_id, &event);
    }

    /// Who authenticated: the certificate serial, else the client id.
    pub(crate) fn principal(&self) -> String {
        match &self.identity {
            Some(id) => id.serial_hex.clone(),
            None => self.client_id.to_string(),
        }
    }
}

/// AWS's names for why a connection ended.
fn disconnect_reason(close: &Close) -> &'static str {
    match close {
        Close::ClientDisconnect { .. } => "CLIENT_INITIATED_DISCONNECT",
        Close::NetworkLost(_) => "CONNECTION_LOST",
        Close::Server { reason, .. } => match *reason {
            ReasonCode::SESSION_TAKEN_OVER => "DUPLICATE_CLIENTID",
            ReasonCode::KEEP_ALIVE_TIMEOUT => "MQTT_KEEP_ALIVE_TIMEOUT",
            ReasonCode::NOT_AUTHORIZED => "AUTHORIZATION_ERROR",
            ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR | ReasonCode::UNSPECIFIED_ERROR => {
                "SERVER_ERROR"
            }
            ReasonCode::SERVER_SHUTTING_DOWN | ReasonCode::ADMINISTRATIVE_ACTION => {
                "SERVER_INITIATED_DISCONNECT"
            }
            _ => "CLIENT_ERROR",
        },
    }
}

fn publish_event(shared: &Arc<Shared>, kind: &str, client_id: &str, event: &serde_json::Value) {
    let now = shared.router.clock.now_ms();
    let message = StoredMessage {
        topic: format!("$aws/events/presence/{kind}/{client_id}"),
        payload: Bytes::from(event.to_string()),
        qos: QoS::AtLeastOnce,
        retain: false,
        expires_at_ms: None,
        properties: PublishProperties {
            payload_format_indicator: Some(1),
            content_type: Some("application/json".into()),
            ..Default::default()
        },
        received_at_ms: now,
    };
    let routed = shared.router.route(&Arc::new(message), None);
    if !routed.ops.is_empty() {
        shared.store.submit(routed.ops);
    }
}

/// A random (version 4) UUID in its usual text form.
fn uuid_v4() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::uuid_v4;

    #[test]
    fn session_identifiers_are_version_4_uuids() {
        let a = uuid_v4();
        assert_eq!(a.len(), 36);
        for (i, c) in a.chars().enumerate() {
            match i {
                8 | 13 | 18 | 23 => assert_eq!(c, '-', "{a}"),
                14 => assert_eq!(c, '4', "{a}"),
                19 => assert!("89ab".contains(c), "{a}"),
                _ => assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{a}"),
            }
        }
        assert_ne!(a, uuid_v4());
    }
}
