//! SUBSCRIBE and UNSUBSCRIBE: filter validation, authorization per filter,
//! shared subscriptions, subscription identifiers, and the retained
//! messages a new subscription receives.

use civitas_mqtt::topic::{parse_shared, validate_topic_filter};
use civitas_mqtt::{
    Packet, Protocol, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use civitas_store::Op;

use crate::connect::session_record;
use crate::connection::{Close, Connection, protocol_error};
use crate::security::{self, SecurityOutcome};
use crate::session::{Delivery, SubscriptionState};
use crate::shared::Stats;

impl Connection {
    pub(crate) fn on_subscribe(&mut self, sub: Subscribe) -> Result<(), Close> {
        let Some(session) = self.session.clone() else {
            return Err(protocol_error("SUBSCRIBE before CONNECT"));
        };
        let router = self.shared.router.clone();
        let identifier = sub.properties.subscription_identifier;
        let mut codes = Vec::with_capacity(sub.subscriptions.len());
        let mut retained_for: Vec<(String, QoS, Option<u32>)> = Vec::new();
        for s in &sub.subscriptions {
            let shared = match parse_shared(&s.filter) {
                Ok(shared) => shared,
                Err(_) => {
                    codes.push(ReasonCode::TOPIC_FILTER_INVALID);
                    continue;
                }
            };
            let plain = shared.as_ref().map_or(s.filter.as_str(), |sh| sh.filter);
            if validate_topic_filter(plain).is_err() {
                codes.push(ReasonCode::TOPIC_FILTER_INVALID);
                continue;
            }
            if shared.is_some() && s.options.no_local {
                return Err(protocol_error("No Local on a shared subscription"));
            }
            if !self.grants.may_subscribe(&s.filter) {
                Stats::inc(&self.shared.stats.subscribe_denied);
                tracing::warn!(client_id = %self.client_id, filter = %s.filter, "subscription not authorized");
                security::record(
                    &self.shared,
                    format!("device:{}", self.client_id),
                    "device.subscribe",
                    s.filter.clone(),
                    SecurityOutcome::Denied,
                    Vec::new(),
                );
                codes.push(ReasonCode::NOT_AUTHORIZED);
                continue;
            }
            let existed = router.subscribe(
                &session,
                &s.filter,
                SubscriptionState {
                    options: s.options,
                    identifier,
                },
            );
            codes.push(ReasonCode(s.options.qos as u8));
            let send_retained = shared.is_none()
                && match s.options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
            if send_retained {
                retained_for.push((plain.to_string(), s.options.qos, identifier));
            }
        }
        {
            let s = session.lock();
            if s.is_persistent() {
                self.shared
                    .store
                    .submit(vec![Op::PutSession(session_record(&s, None))]);
            }
        }
        self.send(&Packet::SubAck(SubAck {
            packet_id: sub.packet_id,
            reason_codes: codes,
            properties: Default::default(),
        }));

        // Retained messages go after the SUBACK, through the session queue
        // so that flow control and persistence apply to them too.
        let mut ops = Vec::new();
        for (filter, granted, id) in retained_for {
            for message in router.retained_matching(&filter) {
                let mut s = session.lock();
                if !s.grants.may_receive(&message.topic) {
                    continue;
                }
                let seq = s.next_seq();
                let delivery = Delivery {
                    seq,
                    qos: message.qos.min(granted),
                    message,
                    retain: true,
                    subscription_identifiers: id.into_iter().collect(),
                };
                ops.extend(s.enqueue(delivery, router.limits.max_queued_messages));
            }
        }
        if !ops.is_empty() {
            self.shared.store.submit(ops);
        }
        Ok(())
    }

    pub(crate) fn on_unsubscribe(&mut self, u: Unsubscribe) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let codes = u
            .filters
            .iter()
            .map(|f| {
                if self.shared.router.unsubscribe(&session, f) {
                    ReasonCode::SUCCESS
                } else {
                    ReasonCode::NO_SUBSCRIPTION_EXISTED
                }
            })
            .collect();
        {
            let s = session.lock();
            if s.is_persistent() {
                self.shared
                    .store
                    .submit(vec![Op::PutSession(session_record(&s, None))]);
            }
        }
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: u.packet_id,
            reason_codes: if self.protocol == Protocol::V5 {
                codes
            } else {
                Vec::new()
            },
            properties: Default::default(),
        }));
    }
}
