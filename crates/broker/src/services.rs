//! Server-side handlers for reserved topics: the device shadow service,
//! fleet provisioning and the like consume PUBLISHes on their topics and
//! answer with messages the broker publishes as its own.
//!
//! A handler may block (it may write to the store), so it runs on the
//! blocking pool; requests from one connection are handled one at a time
//! and in order, because later requests can depend on earlier ones (a
//! shadow update after an update). A service may also refuse a request
//! the moment it is queued (`admit`), e.g. to cap requests in flight.
//!
//! A reply goes to every authorized subscriber of its topic, or — when it
//! carries a secret such as a certificate or a private key — only to the
//! connection that asked ([`Audience::Requester`]).

use std::sync::Arc;

use bytes::Bytes;
use civitas_mqtt::topic::matches;
use civitas_mqtt::{PublishProperties, QoS};
use civitas_store::StoredMessage;
use tokio::sync::mpsc;

use crate::router::split_shared;
use crate::session::{Delivery, SessionRef};
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
    /// The serial (lower-case hex) of the client certificate the
    /// connection presented, verified by mutual TLS; `None` without one.
    /// Unlike `principal`, never a name the client chose.
    pub certificate_serial: Option<String>,
    /// The PUBLISH's MQTT 5 user properties, in order (a device's
    /// `civitas-signature`, say); empty for MQTT 3.1.1.
    pub user_properties: Vec<(String, String)>,
}

/// A message the broker publishes in answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceReply {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub audience: Audience,
}

impl ServiceReply {
    /// A reply for every subscriber of `topic`.
    pub fn to_subscribers(topic: impl Into<String>, payload: impl Into<Bytes>, qos: QoS) -> Self {
        ServiceReply {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            audience: Audience::Subscribers,
        }
    }

    /// A reply for the requesting connection alone.
    pub fn to_requester(topic: impl Into<String>, payload: impl Into<Bytes>, qos: QoS) -> Self {
        ServiceReply {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            audience: Audience::Requester,
        }
    }
}

/// Who receives a [`ServiceReply`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Audience {
    /// Every session subscribed to the topic and allowed to receive it, as
    /// for any message; message observers see it too.
    #[default]
    Subscribers,
    /// Only the connection that sent the request, and only while it is
    /// connected, subscribed to the topic and allowed to receive it. For
    /// replies that carry a certificate or a private key: no other
    /// session and no message observer ever sees them.
    Requester,
}

/// The connection a queue answers: the session it is attached to.
#[derive(Debug)]
pub(crate) struct Requester {
    pub session: SessionRef,
    pub connection_id: u64,
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

    /// Whether the service is the only consumer of the messages it
    /// handles (AWS Basic Ingest): they are then neither routed to
    /// subscribers and observers nor retained, and the publisher is
    /// acknowledged with success. By default a handled message is also
    /// routed as usual.
    fn consumes(&self) -> bool {
        false
    }
}

/// The per-connection queue that runs service requests one at a time.
#[derive(Debug)]
pub(crate) struct ServiceQueue {
    tx: mpsc::UnboundedSender<Queued>,
    shared: Arc<Shared>,
    requester: Arc<Requester>,
}

type Queued = (Arc<dyn TopicService>, ServiceRequest, Ticket);

impl ServiceQueue {
    pub(crate) fn start(shared: Arc<Shared>, requester: Requester) -> ServiceQueue {
        let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
        let replies_to = shared.clone();
        let requester = Arc::new(requester);
        let asked_by = requester.clone();
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
                            publish_reply(&replies_to, &asked_by, reply);
                        }
                    }
                    Err(e) => tracing::error!(%topic, error = %e, "topic service failed"),
                }
            }
        });
        ServiceQueue {
            tx,
            shared,
            requester,
        }
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
                    publish_reply(&self.shared, &self.requester, reply);
                }
            }
        }
    }
}

fn publish_reply(shared: &Arc<Shared>, requester: &Requester, reply: ServiceReply) {
    let now = shared.router.clock.now_ms();
    let audience = reply.audience;
    let message = Arc::new(StoredMessage {
        topic: reply.topic,
        payload: reply.payload,
        qos: reply.qos,
        retain: false,
        expires_at_ms: None,
        properties: PublishProperties::default(),
        received_at_ms: now,
    });
    if audience == Audience::Requester {
        if let Some(op) = deliver_to_requester(shared, requester, message) {
            shared.store.submit(vec![op]);
        }
        return;
    }
    let routed = shared.router.route(&message, None);
    if !routed.ops.is_empty() {
        shared.store.submit(routed.ops);
    }
}

/// Queues `message` for the requesting connection alone, as the router
/// would if it were its only subscriber; returns the store op that makes
/// it durable, if any. Nothing is delivered once another connection has
/// taken the session over: the reply was meant for the one that asked.
fn deliver_to_requester(
    shared: &Shared,
    requester: &Requester,
    message: Arc<StoredMessage>,
) -> Option<civitas_store::Op> {
    let mut s = requester.session.lock();
    if s.attachment.as_ref().map(|a| a.connection_id) != Some(requester.connection_id)
        || !s.grants.may_receive(&message.topic)
    {
        return None;
    }
    let mut granted: Option<QoS> = None;
    let mut identifiers = Vec::new();
    for (full_filter, state) in &s.subscriptions {
        if matches(split_shared(full_filter).1, &message.topic) {
            granted = Some(granted.map_or(state.options.qos, |q| q.max(state.options.qos)));
            identifiers.extend(state.identifier);
        }
    }
    let granted = granted?;
    let delivery = Delivery {
        seq: s.next_seq(),
        qos: message.qos.min(granted),
        message,
        retain: false,
        subscription_identifiers: identifiers,
    };
    s.enqueue(delivery, shared.router.limits.max_queued_messages)
}
