//! Server-side handlers for reserved topics: the device shadow service,
//! fleet provisioning and the like consume PUBLISHes on their topics and
//! answer with messages the broker publishes as its own.
//!
//! A handler may block (it may write to the store), so it runs on the
//! blocking pool; requests from one connection are handled one at a time
//! and in order, because later requests can depend on earlier ones (a
//! shadow update after an update). A service may also refuse a request
//! the moment it is queued (`admit`), e.g. to cap requests in flight.

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

/// Held by the broker from when a request is admitted until its handler
/// returns: a service that counts requests in flight releases one when
/// its ticket is dropped.
pub struct Ticket(Option<Box<dyn Send>>);

impl Ticket {
    /// A ticket that holds `hold` (say, an in-flight count guard) until the
    /// request has been handled.
    pub fn new(hold: impl Send + 'static) -> Ticket {
        Ticket(Some(Box::new(hold)))
    }

    /// A ticket that holds nothing.
    pub fn none() -> Ticket {
        Ticket(None)
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Ticket(held)"
        } else {
            "Ticket(none)"
        })
    }
}

/// A family of reserved topics handled inside civitas.
pub trait TopicService: Send + Sync + std::fmt::Debug + 'static {
    /// Does this service consume PUBLISHes to `topic`? Called for every
    /// authorized PUBLISH, so it must be cheap (a prefix check).
    fn handles(&self, topic: &str) -> bool;

    /// Called on the connection's task when the request arrives, before
    /// it is queued behind the connection's earlier requests, so it must
    /// not block. `Err(replies)` refuses it: the replies are published at
    /// once and `handle` is never called. The ticket is dropped when
    /// `handle` returns. By default every request is admitted.
    fn admit(&self, request: &ServiceRequest) -> Result<Ticket, Vec<ServiceReply>> {
        let _ = request;
        Ok(Ticket::none())
    }

    /// Handle one request; the replies are published in order.
    fn handle(&self, request: ServiceRequest) -> Vec<ServiceReply>;
}

/// The per-connection queue that runs service requests one at a time.
#[derive(Debug)]
pub(crate) struct ServiceQueue {
    tx: mpsc::UnboundedSender<Queued>,
    shared: Arc<Shared>,
}

type Queued = (Arc<dyn TopicService>, ServiceRequest, Ticket);

impl ServiceQueue {
    pub(crate) fn start(shared: Arc<Shared>) -> ServiceQueue {
        let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
        let replies_to = shared.clone();
        tokio::spawn(async move {
            while let Some((service, request, ticket)) = rx.recv().await {
                let topic = request.topic.clone();
                let handled = tokio::task::spawn_blocking(move || {
                    let replies = service.handle(request);
                    drop(ticket);
                    replies
                });
                match handled.await {
                    Ok(replies) => {
                        for reply in replies {
                            publish_reply(&replies_to, reply);
                        }
                    }
                    Err(e) => tracing::error!(%topic, error = %e, "topic service failed"),
                }
            }
        });
        ServiceQueue { tx, shared }
    }

    /// Queue `request` behind the connection's earlier ones, or publish
    /// the service's refusal at once.
    pub(crate) fn push(&self, service: Arc<dyn TopicService>, request: ServiceRequest) {
        match service.admit(&request) {
            Ok(ticket) => {
                if self.tx.send((service, request, ticket)).is_err() {
                    tracing::warn!("topic service queue closed; request dropped");
                }
            }
            Err(replies) => {
                for reply in replies {
                    publish_reply(&self.shared, reply);
                }
            }
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
