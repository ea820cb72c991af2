//! Session state: what the broker keeps for a client id across network
//! connections — subscriptions, the outbound queue, messages in flight in
//! both directions, the will.
//!
//! A session is shared (`Arc<Mutex<Session>>`) between the router, which
//! appends deliveries from any publisher's task, and the one connection
//! task currently attached, which alone moves messages from the queue into
//! flight and writes them. Persistent sessions mirror every change into the
//! store so that a restart resumes them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use civitas_mqtt::{Protocol, QoS, SubscriptionOptions};
use civitas_store::{Op, OutboundMessage, OutboundState, StoredMessage};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::authz::{Authorizer, Grants};
use tokio_util::sync::CancellationToken;

pub type SessionRef = Arc<Mutex<Session>>;

/// A message waiting for, or in, delivery to one session.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub seq: u64,
    pub message: Arc<StoredMessage>,
    /// The QoS it is delivered at: min(published, granted).
    pub qos: QoS,
    pub retain: bool,
    pub subscription_identifiers: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct InFlight {
    pub delivery: Delivery,
    pub state: OutboundState,
}

#[derive(Debug, Clone)]
pub struct SubscriptionState {
    pub options: SubscriptionOptions,
    pub identifier: Option<u32>,
}

/// The link between a session and the connection task serving it.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub connection_id: u64,
    /// Woken when deliveries are queued.
    pub wake: Arc<Notify>,
    /// Cancelled to make the connection close (takeover, shutdown); the
    /// reason code to send is left in `kick_reason`.
    pub kick: CancellationToken,
    /// Cancelled by the connection task once it has fully detached.
    pub detached: CancellationToken,
}

#[derive(Debug)]
pub struct Session {
    /// Unique for this incarnation of the session: a new session under the
    /// same client id gets a new id, so stale subscription entries never
    /// alias.
    pub id: u64,
    pub client_id: Arc<str>,
    pub protocol: Protocol,
    pub expiry_interval: u32,
    pub subscriptions: HashMap<String, SubscriptionState>,
    pub queue: VecDeque<Delivery>,
    pub inflight: HashMap<u16, InFlight>,
    pub incoming_qos2: HashSet<u16>,
    next_packet_id: u16,
    next_seq: u64,
    pub attachment: Option<Attachment>,
    pub kick_reason: Option<civitas_mqtt::ReasonCode>,
    /// Cancels a scheduled will publication or session expiry.
    pub timers: Option<CancellationToken>,
    /// What the client may receive, from its latest connection.
    pub grants: Arc<dyn Authorizer>,
    /// Messages dropped because the queue was full (for logs and metrics).
    pub dropped: u64,
}

impl Session {
    pub fn new(id: u64, client_id: Arc<str>, protocol: Protocol, expiry_interval: u32) -> Self {
        Session {
            id,
            client_id,
            protocol,
            expiry_interval,
            subscriptions: HashMap::new(),
            queue: VecDeque::new(),
            inflight: HashMap::new(),
            incoming_qos2: Default::default(),
            next_packet_id: 1,
            next_seq: 1,
            attachment: None,
            kick_reason: None,
            timers: None,
            grants: Arc::new(Grants::default()),
            dropped: 0,
        }
    }

    /// Persistent sessions outlive their connection and live in the store.
    pub fn is_persistent(&self) -> bool {
        self.expiry_interval > 0
    }

    pub fn next_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Restore the counters after loading from the store.
    pub fn restore_counters(&mut self, max_seq: u64) {
        self.next_seq = self.next_seq.max(max_seq + 1);
    }

    /// A packet id not used by any message in flight towards the client.
    pub fn allocate_packet_id(&mut self) -> Option<u16> {
        if self.inflight.len() >= u16::MAX as usize - 1 {
            return None;
        }
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if id != 0 && !self.inflight.contains_key(&id) {
                return Some(id);
            }
        }
    }

    /// Append a delivery, enforcing the queue bound. Returns the store op
    /// that makes it durable when the session is persistent and the
    /// message is QoS 1/2.
    pub fn enqueue(&mut self, delivery: Delivery, max_queued: usize) -> Option<Op> {
        if self.queue.len() >= max_queued {
            // Make room by dropping the oldest QoS 0 message; if there is
            // none, the new message is the one that cannot be kept.
            match self.queue.iter().position(|d| d.qos == QoS::AtMostOnce) {
                Some(i) => {
                    self.queue.remove(i);
                    self.dropped += 1;
                }
                None => {
                    self.dropped += 1;
                    return None;
                }
            }
        }
        let op =
            (self.is_persistent() && delivery.qos != QoS::AtMostOnce).then(|| Op::PutOutbound {
                client_id: self.client_id.to_string(),
                seq: delivery.seq,
                message: outbound_record(&delivery, None, OutboundState::Queued),
            });
        self.queue.push_back(delivery);
        if let Some(a) = &self.attachment {
            a.wake.notify_one();
        }
        op
    }
}

pub fn outbound_record(
    delivery: &Delivery,
    packet_id: Option<u16>,
    state: OutboundState,
) -> OutboundMessage {
    let mut message = (*delivery.message).clone();
    // What the subscriber sees (retain-as-published) is what a resumed
    // session must resend.
    message.retain = delivery.retain;
    OutboundMessage {
        message,
        packet_id,
        state,
        qos: delivery.qos,
        subscription_identifiers: delivery.subscription_identifiers.clone(),
    }
}
