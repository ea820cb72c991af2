//! Delivery to the client: moving queued messages into flight within the
//! client's Receive Maximum, outbound topic aliases, message expiry, the
//! client's Maximum Packet Size, and the client's acknowledgements.

use civitas_mqtt::{Packet, PubAck, Publish, QoS, ReasonCode, encoded_len};
use civitas_store::{Op, OutboundState};

use crate::connection::{Close, Connection};
use crate::session::{Delivery, InFlight, outbound_record};
use crate::shared::Stats;
use crate::wire::HIGH_WATER;

impl Connection {
    /// Move what the window allows from the session queue onto the wire,
    /// up to the wire's high-water mark; the rest waits until the client
    /// has read what it was sent.
    pub(crate) fn deliver(&mut self) -> Result<(), Close> {
        let Some(session) = self.session.clone() else {
            return Ok(());
        };
        let now = self.shared.router.clock.now_ms();
        let window = usize::from(self.client_receive_maximum);
        let mut ops = Vec::new();
        let mut ready: Vec<(Delivery, Option<u16>)> = Vec::new();
        let mut budget = HIGH_WATER.saturating_sub(self.wire.output.len());
        let mut cut_short = false;
        {
            let mut s = session.lock();
            let persistent = s.is_persistent();
            while let Some(front) = s.queue.front() {
                if front.qos != QoS::AtMostOnce && s.inflight.len() >= window {
                    break;
                }
                if budget == 0 {
                    cut_short = true;
                    break;
                }
                budget = budget
                    .saturating_sub(front.message.payload.len() + front.message.topic.len() + 16);
                let Some(d) = s.queue.pop_front() else { break };
                if d.message.expires_at_ms.is_some_and(|t| t <= now) {
                    if persistent && d.qos != QoS::AtMostOnce {
                        ops.push(Op::DeleteOutbound {
                            client_id: s.client_id.to_string(),
                            seq: d.seq,
                        });
                    }
                    continue;
                }
                if d.qos == QoS::AtMostOnce {
                    ready.push((d, None));
                    continue;
                }
                let Some(pid) = s.allocate_packet_id() else {
                    s.queue.push_front(d);
                    break;
                };
                let state = if d.qos == QoS::AtLeastOnce {
                    OutboundState::AwaitingPubAck
                } else {
                    OutboundState::AwaitingPubRec
                };
                if persistent {
                    ops.push(Op::PutOutbound {
                        client_id: s.client_id.to_string(),
                        seq: d.seq,
                        message: outbound_record(&d, Some(pid), state),
                    });
                }
                s.inflight.insert(
                    pid,
                    InFlight {
                        delivery: d.clone(),
                        state,
                    },
                );
                ready.push((d, Some(pid)));
            }
        }
        if !ops.is_empty() {
            self.shared.store.submit(ops);
        }
        for (d, pid) in ready {
            match self.build_publish(&d, pid, false) {
                Some(p) => {
                    Stats::inc(&self.shared.stats.messages_sent);
                    self.send(&Packet::Publish(p));
                }
                None => {
                    // Too large for the client: it can never be delivered,
                    // so it leaves flight as if acknowledged. That frees a
                    // place in the window for what is still queued, so
                    // come back for another pass.
                    Stats::inc(&self.shared.stats.dropped_oversize);
                    if let Some(pid) = pid {
                        self.complete(pid);
                        self.wake.notify_one();
                    }
                }
            }
        }
        if cut_short && !self.wire.congested() {
            // The estimate stopped short of the mark: come back for more
            // rather than wait for a write to drain a backlog that is not
            // there.
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The PUBLISH for a delivery, or None when the client's Maximum
    /// Packet Size forbids it.
    pub(crate) fn build_publish(
        &mut self,
        d: &Delivery,
        packet_id: Option<u16>,
        dup: bool,
    ) -> Option<Publish> {
        let mut properties = d.message.properties.clone();
        properties.subscription_identifiers = d.subscription_identifiers.clone();
        if let Some(expires) = d.message.expires_at_ms {
            let now = self.shared.router.clock.now_ms();
            let remaining = expires.saturating_sub(now).div_ceil(1000);
            properties.message_expiry_interval = Some(remaining.min(u64::from(u32::MAX)) as u32);
        }
        let mut topic = d.message.topic.clone();
        // A new alias is only remembered once the PUBLISH that introduces
        // it is known to be sent: the client learns it from that packet.
        let mut new_alias = None;
        if self.client_topic_alias_max > 0 {
            if let Some(&alias) = self.outbound_aliases.get(&topic) {
                properties.topic_alias = Some(alias);
                topic = String::new();
            } else if self.outbound_aliases.len() < usize::from(self.client_topic_alias_max) {
                let alias = self.outbound_aliases.len() as u16 + 1;
                properties.topic_alias = Some(alias);
                new_alias = Some(alias);
            }
        }
        let mut packet = Packet::Publish(Publish {
            dup,
            qos: d.qos,
            retain: d.retain,
            topic,
            packet_id,
            payload: d.message.payload.clone(),
            properties,
        });
        let max = self.client_max_packet_size as usize;
        if new_alias.is_some() && encoded_len(&packet, self.protocol) > max {
            // The alias property itself may be what does not fit.
            if let Packet::Publish(p) = &mut packet {
                p.properties.topic_alias = None;
            }
            new_alias = None;
        }
        if encoded_len(&packet, self.protocol) > max {
            return None;
        }
        if let Some(alias) = new_alias {
            self.outbound_aliases.insert(d.message.topic.clone(), alias);
        }
        match packet {
            Packet::Publish(p) => Some(p),
            _ => None,
        }
    }

    /// Take a message out of flight and out of the store.
    fn complete(&mut self, packet_id: u16) -> bool {
        let Some(session) = self.session.clone() else {
            return false;
        };
        let mut s = session.lock();
        match s.inflight.remove(&packet_id) {
            Some(f) => {
                if s.is_persistent() {
                    self.shared.store.submit(vec![Op::DeleteOutbound {
                        client_id: s.client_id.to_string(),
                        seq: f.delivery.seq,
                    }]);
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn on_puback(&mut self, a: PubAck) {
        if !self.complete(a.packet_id) {
            tracing::debug!(client_id = %self.client_id, packet_id = a.packet_id, "PUBACK for an unknown packet id");
        }
    }

    pub(crate) fn on_pubrec(&mut self, a: PubAck) {
        let Some(session) = self.session.clone() else {
            return;
        };
        if a.reason_code.is_error() {
            // The receiver refused it: the flow ends here.
            self.complete(a.packet_id);
            return;
        }
        let known = {
            let mut s = session.lock();
            let persistent = s.is_persistent();
            let client_id = s.client_id.to_string();
            match s.inflight.get_mut(&a.packet_id) {
                Some(f) => {
                    f.state = OutboundState::AwaitingPubComp;
                    if persistent {
                        let record = outbound_record(&f.delivery, Some(a.packet_id), f.state);
                        self.shared.store.submit(vec![Op::PutOutbound {
                            client_id,
                            seq: f.delivery.seq,
                            message: record,
                        }]);
                    }
                    true
                }
                None => false,
            }
        };
        let reason = if known {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        let rel = self.ack(a.packet_id, reason);
        self.send(&Packet::PubRel(rel));
    }

    pub(crate) fn on_pubcomp(&mut self, a: PubAck) {
        self.complete(a.packet_id);
    }
}
