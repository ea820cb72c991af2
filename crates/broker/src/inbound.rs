//! PUBLISH from a client and the acknowledgements of its QoS 1/2 flows:
//! topic aliases, authorization, routing, durability before PUBACK/PUBREC,
//! and MQTT 5 flow control (Receive Maximum).

use std::sync::Arc;

use civitas_mqtt::{Packet, Protocol, PubAck, Publish, QoS, ReasonCode};
use civitas_store::{Op, StoredMessage};

use crate::connection::{Close, Connection, protocol_error};
use crate::security::{self, SecurityOutcome};
use crate::shared::Stats;

impl Connection {
    pub(crate) fn on_publish(&mut self, mut p: Publish) -> Result<(), Close> {
        Stats::inc(&self.shared.stats.messages_received);
        let v5 = self.protocol == Protocol::V5;

        if !p.properties.subscription_identifiers.is_empty() {
            return Err(protocol_error(
                "a client must not send a subscription identifier in PUBLISH",
            ));
        }

        // Topic alias (MQTT 5): resolve, or learn a new mapping.
        if let Some(alias) = p.properties.topic_alias.take() {
            if alias == 0 || alias > self.shared.router.limits.topic_alias_maximum {
                return Err(Close::Server {
                    reason: ReasonCode::TOPIC_ALIAS_INVALID,
                    message: format!("topic alias {alias} is out of range"),
                });
            }
            if p.topic.is_empty() {
                match self.inbound_aliases.get(&alias) {
                    Some(t) => p.topic = t.clone(),
                    None => return Err(protocol_error(&format!("unknown topic alias {alias}"))),
                }
            } else {
                self.inbound_aliases.insert(alias, p.topic.clone());
            }
        } else if p.topic.is_empty() {
            return Err(protocol_error("PUBLISH without a topic name"));
        }

        let session = match &self.session {
            Some(s) => s.clone(),
            None => return Err(protocol_error("PUBLISH before CONNECT")),
        };

        let packet_id = p.packet_id.unwrap_or(0);

        // A QoS 2 retransmission of a message we already have: only
        // acknowledge it again. It is already counted against Receive
        // Maximum, so it must not be counted a second time below.
        if p.qos == QoS::ExactlyOnce && session.lock().incoming_qos2.contains(&packet_id) {
            self.queue_ack(Packet::PubRec(self.ack(packet_id, ReasonCode::SUCCESS)));
            return Ok(());
        }

        // Flow control: QoS 1/2 PUBLISHes not yet acknowledged by us.
        if p.qos != QoS::AtMostOnce {
            let unacked = self.pending_acks.len() + session.lock().incoming_qos2.len();
            if v5 && unacked >= usize::from(self.shared.router.limits.receive_maximum) {
                return Err(Close::Server {
                    reason: ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                    message: "more unacknowledged QoS 1/2 messages than Receive Maximum".into(),
                });
            }
        }

        if !self.grants.may_publish(&p.topic) || (p.retain && !self.grants.may_retain(&p.topic)) {
            Stats::inc(&self.shared.stats.publish_denied);
            tracing::warn!(client_id = %self.client_id, topic = %p.topic, "publish not authorized");
            security::record(
                &self.shared,
                format!("device:{}", self.client_id),
                "device.publish",
                p.topic.clone(),
                SecurityOutcome::Denied,
                vec![("retain", p.retain.to_string())],
            );
            let reason = if v5 {
                ReasonCode::NOT_AUTHORIZED
            } else {
                ReasonCode::SUCCESS
            };
            match p.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => self.queue_ack(Packet::PubAck(self.ack(packet_id, reason))),
                QoS::ExactlyOnce => self.queue_ack(Packet::PubRec(self.ack(packet_id, reason))),
            }
            return Ok(());
        }

        let now = self.shared.router.clock.now_ms();
        let expires_at_ms = p
            .properties
            .message_expiry_interval
            .map(|s| now + u64::from(s) * 1000);
        let message = Arc::new(StoredMessage {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            expires_at_ms,
            properties: p.properties,
            received_at_ms: now,
        });
        let mut consumed = false;
        if let Some(service) = self
            .shared
            .services
            .iter()
            .find(|s| s.handles(&message.topic))
            .cloned()
        {
            consumed = service.consumes();
            let request = crate::services::ServiceRequest {
                topic: message.topic.clone(),
                payload: message.payload.clone(),
                client_id: self.client_id.clone(),
                principal: self.principal(),
                certificate_serial: self.identity.as_ref().map(|id| id.serial_hex.clone()),
                user_properties: message.properties.user_properties.clone(),
            };
            let shared = self.shared.clone();
            let requester = crate::services::Requester {
                session: session.clone(),
                connection_id: self.id,
            };
            self.service_queue
                .get_or_insert_with(|| crate::services::ServiceQueue::start(shared, requester))
                .push(service, request);
        }
        // A consumed message (Basic Ingest) goes to its service alone: no
        // subscriber, observer or retained store sees it.
        let routed = if consumed {
            crate::router::Routed::default()
        } else {
            self.shared.router.route(&message, Some(&self.client_id))
        };
        let mut ops = routed.ops;
        if message.retain && !consumed {
            ops.push(self.shared.router.retain(&message));
        }
        let reason = if v5 && routed.receivers == 0 && !consumed {
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        } else {
            ReasonCode::SUCCESS
        };
        match p.qos {
            QoS::AtMostOnce => {
                if !ops.is_empty() {
                    self.shared.store.submit(ops);
                }
            }
            QoS::AtLeastOnce => {
                self.queue_durable_ack(Packet::PubAck(self.ack(packet_id, reason)), ops)
            }
            QoS::ExactlyOnce => {
                let persistent = {
                    let mut s = session.lock();
                    s.incoming_qos2.insert(packet_id);
                    s.is_persistent()
                };
                if persistent {
                    ops.push(Op::PutIncomingQos2 {
                        client_id: self.client_id.to_string(),
                        packet_id,
                    });
                }
                self.queue_durable_ack(Packet::PubRec(self.ack(packet_id, reason)), ops)
            }
        }
        Ok(())
    }

    /// Send an acknowledgement in order behind any still waiting for the
    /// store.
    fn queue_ack(&mut self, ack: Packet) {
        self.queue_durable_ack(ack, Vec::new());
    }

    /// Send `ack` once `ops` are durable, keeping the order in which the
    /// PUBLISHes arrived.
    fn queue_durable_ack(&mut self, ack: Packet, ops: Vec<Op>) {
        if ops.is_empty() && self.pending_acks.is_empty() {
            self.send(&ack);
            return;
        }
        let commit = (!ops.is_empty()).then(|| self.shared.store.commit(ops));
        self.pending_acks.push_back(Box::pin(async move {
            let result = match commit {
                Some(c) => c.await,
                None => Ok(()),
            };
            (ack, result)
        }));
    }

    pub(crate) fn on_pubrel(&mut self, a: PubAck) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let (found, persistent) = {
            let mut s = session.lock();
            (s.incoming_qos2.remove(&a.packet_id), s.is_persistent())
        };
        if found && persistent {
            self.shared.store.submit(vec![Op::DeleteIncomingQos2 {
                client_id: self.client_id.to_string(),
                packet_id: a.packet_id,
            }]);
        }
        let reason = if found {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        self.queue_ack(Packet::PubComp(self.ack(a.packet_id, reason)));
    }
}
