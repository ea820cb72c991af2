//! In-process access to a running broker for the rest of civitas: the
//! rules engine republishes through it, and observers see every message
//! the router handles.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use civitas_mqtt::{PublishProperties, QoS};
use civitas_store::StoredMessage;

use crate::shared::Shared;

/// Sees every message the broker routes — from clients, wills, presence
/// events and topic services — after authorization. Called on the
/// publisher's task: it must not block (hand the message to a bounded
/// queue and count what overflows).
pub trait MessageObserver: Send + Sync + std::fmt::Debug + 'static {
    /// `publisher` is the client id of the sender; `None` for messages the
    /// broker originates.
    fn observe(&self, message: &Arc<StoredMessage>, publisher: Option<&str>);
}

/// Publishes into a broker from inside civitas. Cheap to clone; usable as
/// soon as the broker runs.
#[derive(Debug, Clone, Default)]
pub struct BrokerHandle {
    shared: Arc<OnceLock<Arc<Shared>>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandleError {
    #[error("the broker is not running")]
    NotRunning,
}

/// What a publish through the handle reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub receivers: usize,
}

impl BrokerHandle {
    pub(crate) fn attach(&self, shared: Arc<Shared>) {
        let _ = self.shared.set(shared);
    }

    /// Publish a message as the broker itself: to every authorized
    /// subscriber and, when `retain`, to the retained store. Returns once
    /// the deliveries are queued (durability follows by group commit).
    pub fn publish(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: PublishProperties,
    ) -> Result<Published, HandleError> {
        self.route(None, topic, payload, qos, retain, properties)
    }

    /// Publish a message on behalf of the client `publisher` (a device
    /// publishing over the HTTPS data plane, authorized by the caller):
    /// observers — the rules engine, the command audit — see it as that
    /// client's, and its No Local subscriptions skip it, as over MQTT.
    pub fn publish_from(
        &self,
        publisher: &str,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: PublishProperties,
    ) -> Result<Published, HandleError> {
        self.route(Some(publisher), topic, payload, qos, retain, properties)
    }

    fn route(
        &self,
        publisher: Option<&str>,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: PublishProperties,
    ) -> Result<Published, HandleError> {
        let shared = self.shared.get().ok_or(HandleError::NotRunning)?;
        let now = shared.router.clock.now_ms();
        let expires_at_ms = properties
            .message_expiry_interval
            .map(|s| now + u64::from(s) * 1000);
        let message = Arc::new(StoredMessage {
            topic: topic.to_string(),
            payload,
            qos,
            retain,
            expires_at_ms,
            properties,
            received_at_ms: now,
        });
        let routed = shared.router.route(&message, publisher);
        let mut ops = routed.ops;
        if retain {
            ops.push(shared.router.retain(&message));
        }
        if !ops.is_empty() {
            shared.store.submit(ops);
        }
        Ok(Published {
            receivers: routed.receivers,
        })
    }
}
