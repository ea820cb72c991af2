//! Server-side handlers for reserved topics: the device shadow service,
//! fleet provisioning and the like consume PUBLISHes on their topics and
//! answer with messages the broker publishes as its own.
//!
//! A handler may block (it may write to the store), so it runs on the
//! blocking pool; requests from one connection are handled one at a time
//! and in order, because later requests can depend on earlier ones (a
//! shadow update after an update).

use std::sync::Arc;

use bytes::Bytes;
use civitas_mqtt::{PublishProperties, QoS};
use civitas_store::StoredMessage;
use tokio::sync::mpsc;

use crate::shared::Shared;

/// One request to a topic service.
#[derive(Debug, Clone)]
pub struct ServiceRequest {
    pub topic: String,
    pub payload: Bytes,
    /// The MQTT client id of the sender.
    pub client_id: Arc<str>,
    /// Who authenticated: the certificate serial or the username.
    pub principal: String,
}

/// A message the broker publishes in answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceReply {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
}

/// A family of reserved topics handled inside civitas.
pub trait TopicService: Send + Sync + std::fmt::Debug + 'static {
    /// Does this service consume PUBLISHes to `topic`? Called for every
    /// authorized PUBLISH, so it must be cheap (a prefix check).
    fn handles(&self, topic: &str) -> bool;
    /// Handle one request; the replies are published in order.
    fn handle(&self, request: ServiceRequest) -> Vec<ServiceReply>;
}

/// The per-connection queue that runs service requests one at a time.
#[derive(Debug)]
pub(crate) struct ServiceQueue {
    tx: mpsc::UnboundedSender<(Arc<dyn TopicService>, ServiceRequest)>,
}

impl ServiceQueue {
    pub(crate) fn start(shared: Arc<Shared>) -> ServiceQueue {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Arc<dyn TopicService>, ServiceRequest)>();
        tokio::spawn(async move {
            while let Some((service, request)) = rx.recv().await {
                let topic = request.topic.clone();
                match tokio::task::spawn_blocking(move || service.handle(request)).await {
                    Ok(replies) => {
                        for reply in replies {
                            publish_reply(&shared, reply);
                        }
                    }
                    Err(e) => tracing::error!(%topic, error = %e, "topic service failed"),
                }
            }
        });
        ServiceQueue { tx }
    }

    pub(crate) fn push(&self, service: Arc<dyn TopicService>, request: ServiceRequest) {
        if self.tx.send((service, request)).is_err() {
            tracing::warn!("topic service queue closed; request dropped");
        }
    }
}

fn publish_reply(shared: &Arc<Shared>, reply: ServiceReply) {
    let now = shared.router.clock.now_ms();
    let message = Arc::new(StoredMessage {
        topic: reply.topic,
        payload: reply.payload,
        qos: reply.qos,
        retain: false,
        expires_at_ms: None,
        properties: PublishProperties::default(),
        received_at_ms: now,
    });
    let routed = shared.router.route(&message, None);
    if !routed.ops.is_empty() {
        shared.store.submit(routed.ops);
    }
}
