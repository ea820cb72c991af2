//! What happens when a connection ends: the will message (with its
//! delay), the session expiry timer, and the end of a session. Also the
//! restoration of persistent sessions and pending wills at start.

use std::sync::Arc;
use std::time::Duration;

use civitas_mqtt::{Protocol, Will};
use civitas_store::{Op, OutboundState, PersistedSession, StoredMessage, StoredWill};
use tokio_util::sync::CancellationToken;

use crate::connect::session_record;
use crate::connection::{Close, Connection};
use crate::security::{self, SecurityOutcome};
use crate::session::{Delivery, InFlight, Session, SessionRef, SubscriptionState};
use crate::shared::Shared;

impl Connection {
    /// Tear the connection down: tell the client why, detach from the
    /// session, and start the will and expiry clocks.
    pub(crate) async fn finish(&mut self, close: Close) {
        let publish_will = match &close {
            Close::ClientDisconnect { keep_will } => *keep_will,
            Close::NetworkLost(_) | Close::Server { .. } => true,
        };
        match &close {
            Close::Server { reason, message } => {
                tracing::info!(peer = %self.peer, client_id = %self.client_id, reason = format!("{:#04x}", reason.0), "disconnecting: {message}");
                self.send_disconnect(*reason, message).await;
            }
            Close::NetworkLost(why) => {
                tracing::info!(peer = %self.peer, client_id = %self.client_id, "connection closed: {why}");
            }
            Close::ClientDisconnect { .. } => {
                tracing::info!(peer = %self.peer, client_id = %self.client_id, "client disconnected");
            }
        }
        if self.presence.is_some() {
            let (outcome, reason) = match &close {
                Close::ClientDisconnect { .. } => {
                    (SecurityOutcome::Success, "client disconnected".to_string())
                }
                Close::NetworkLost(why) => (SecurityOutcome::Success, why.clone()),
                Close::Server { reason, message } => (
                    if *reason == civitas_mqtt::ReasonCode::NOT_AUTHORIZED {
                        SecurityOutcome::Denied
                    } else {
                        SecurityOutcome::Success
                    },
                    format!("{message} ({:#04x})", reason.0),
                ),
            };
            security::record(
                &self.shared,
                format!("device:{}", self.client_id),
                "device.disconnect",
                format!("listener:{}", self.listener.name),
                outcome,
                vec![("peer", self.peer.to_string()), ("reason", reason)],
            );
        }
        self.presence_disconnected(&close);
        let will = if publish_will { self.will.take() } else { None };
        let Some(session) = self.session.take() else {
            self.detached.cancel();
            return;
        };
        {
            let mut s = session.lock();
            if s.attachment.as_ref().map(|a| a.connection_id) == Some(self.id) {
                s.attachment = None;
            }
        }
        detach(
            &self.shared,
            &session,
            will.map(will_message_of(&self.shared)),
        );
        self.detached.cancel();
    }
}

/// A will with its delay, ready to publish.
pub(crate) struct PendingWill {
    message: StoredMessage,
    delay_secs: u32,
}

fn will_message_of(shared: &Arc<Shared>) -> impl Fn(Will) -> PendingWill + '_ {
    move |w: Will| {
        let now = shared.router.clock.now_ms();
        let delay_secs = w.properties.will_delay_interval.unwrap_or(0);
        // The expiry interval is kept relative: the will's lifetime starts
        // when it is published, after the will delay (MQTT 5 3.1.3.2.4);
        // `publish_will` turns it into a deadline.
        let mut properties = civitas_mqtt::PublishProperties {
            payload_format_indicator: w.properties.payload_format_indicator,
            message_expiry_interval: w.properties.message_expiry_interval,
            content_type: w.properties.content_type,
            response_topic: w.properties.response_topic,
            correlation_data: w.properties.correlation_data,
            user_properties: w.properties.user_properties,
            ..Default::default()
        };
        properties.topic_alias = None;
        PendingWill {
            message: StoredMessage {
                topic: w.topic,
                payload: w.payload,
                qos: w.qos,
                retain: w.retain,
                expires_at_ms: None,
                properties,
                received_at_ms: now,
            },
            delay_secs,
        }
    }
}

/// The session has no connection any more: end it now (expiry 0) or keep
/// it with timers for the will and the expiry.
fn detach(shared: &Arc<Shared>, session: &SessionRef, will: Option<PendingWill>) {
    let now = shared.router.clock.now_ms();
    let (expiry, still_attached) = {
        let s = session.lock();
        (s.expiry_interval, s.attachment.is_some())
    };
    if still_attached {
        // Taken over: the new connection owns the session now; only the
        // will of the old connection remains to publish.
        if let Some(w) = will {
            publish_will(shared, w.message);
        }
        return;
    }
    if expiry == 0 {
        let ops = end_session(shared, session);
        if !ops.is_empty() {
            shared.store.submit(ops);
        }
        if let Some(w) = will {
            publish_will(shared, w.message);
        }
        return;
    }
    // The will waits for min(will delay, session expiry).
    let will = match will {
        Some(w) if w.delay_secs == 0 => {
            publish_will(shared, w.message);
            None
        }
        other => other,
    };
    let timers = CancellationToken::new();
    let stored_will = will.as_ref().map(|w| StoredWill {
        message: w.message.clone(),
        delay_interval: w.delay_secs,
        publish_at_ms: Some(now + u64::from(w.delay_secs.min(expiry)) * 1000),
    });
    {
        let mut s = session.lock();
        if let Some(old) = s.timers.replace(timers.clone()) {
            old.cancel();
        }
        let mut record = session_record(&s, Some(now));
        record.will = stored_will;
        shared.store.submit(vec![Op::PutSession(record)]);
    }
    schedule(
        shared,
        session,
        timers,
        will.map(|w| {
            (
                w.message,
                Duration::from_secs(u64::from(w.delay_secs.min(expiry))),
            )
        }),
        expiry_duration(expiry),
    );
}

fn expiry_duration(expiry: u32) -> Option<Duration> {
    (expiry != u32::MAX).then(|| Duration::from_secs(u64::from(expiry)))
}

/// Run the will and expiry timers of a disconnected session; both are
/// cancelled when a connection resumes it.
fn schedule(
    shared: &Arc<Shared>,
    session: &SessionRef,
    timers: CancellationToken,
    will: Option<(StoredMessage, Duration)>,
    expiry: Option<Duration>,
) {
    let shared2 = shared.clone();
    let session = session.clone();
    shared.tasks.spawn(async move {
        let start = tokio::time::Instant::now();
        if let Some((message, delay)) = will {
            tokio::select! {
                _ = tokio::time::sleep(delay) => publish_will(&shared2, message),
                _ = timers.cancelled() => return,
                _ = shared2.shutdown.cancelled() => return,
            }
        }
        let Some(expiry) = expiry else { return };
        tokio::select! {
            _ = tokio::time::sleep_until(start + expiry) => {
                let still_detached = session.lock().attachment.is_none();
                if still_detached && !timers.is_cancelled() {
                    tracing::info!(client_id = %session.lock().client_id, "session expired");
                    let ops = end_session(&shared2, &session);
                    if !ops.is_empty() {
                        shared2.store.submit(ops);
                    }
                }
            }
            _ = timers.cancelled() => {}
            _ = shared2.shutdown.cancelled() => {}
        }
    });
}

/// Remove a session from the router; returns the store op that forgets it.
pub(crate) fn end_session(shared: &Arc<Shared>, session: &SessionRef) -> Vec<Op> {
    shared.router.unindex_session(session);
    let client_id = {
        let mut s = session.lock();
        if let Some(t) = s.timers.take() {
            t.cancel();
        }
        s.client_id.clone()
    };
    {
        let mut sessions = shared.router.sessions.lock();
        if sessions
            .get(&client_id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            sessions.remove(&client_id);
        }
    }
    // Deleting an absent record is cheap; it also clears a record left by
    // an earlier persistent incarnation of this client id.
    vec![Op::DeleteSession {
        client_id: client_id.to_string(),
    }]
}

/// Publish a will (or any broker-originated message) to subscribers and
/// the retained store.
pub(crate) fn publish_will(shared: &Arc<Shared>, mut message: StoredMessage) {
    tracing::info!(topic = %message.topic, "publishing will message");
    if let Some(secs) = message.properties.message_expiry_interval {
        message.expires_at_ms = Some(shared.router.clock.now_ms() + u64::from(secs) * 1000);
    }
    let message = Arc::new(message);
    let routed = shared.router.route(&message, None);
    let mut ops = routed.ops;
    if message.retain {
        ops.push(shared.router.retain(&message));
    }
    if !ops.is_empty() {
        shared.store.submit(ops);
    }
}

/// Rebuild persistent sessions from the store. Returns the store ops that
/// delete sessions which expired while the broker was down.
pub(crate) fn restore_sessions(shared: &Arc<Shared>, persisted: Vec<PersistedSession>) -> Vec<Op> {
    let router = &shared.router;
    let now = router.clock.now_ms();
    let mut ops = Vec::new();
    for p in persisted {
        let r = &p.record;
        // A session that was connected when the broker stopped counts as
        // disconnected from now.
        let since = r.disconnected_at_ms.unwrap_or(now);
        let expiry_ms = u64::from(r.session_expiry_interval) * 1000;
        if r.session_expiry_interval != u32::MAX && since + expiry_ms <= now {
            if let Some(w) = &r.will {
                publish_will(shared, w.message.clone());
            }
            ops.push(Op::DeleteSession {
                client_id: r.client_id.clone(),
            });
            continue;
        }
        let protocol = if r.protocol_level == 5 {
            Protocol::V5
        } else {
            Protocol::V311
        };
        let mut s = Session::new(
            router.new_session_id(),
            Arc::from(r.client_id.as_str()),
            protocol,
            r.session_expiry_interval,
        );
        let mut max_seq = 0;
        for (seq, out) in p.outbound {
            max_seq = max_seq.max(seq);
            let retain = out.message.retain;
            let delivery = Delivery {
                seq,
                message: Arc::new(out.message),
                qos: out.qos,
                retain,
                subscription_identifiers: out.subscription_identifiers,
            };
            match (out.state, out.packet_id) {
                (OutboundState::Queued, _) | (_, None) => s.queue.push_back(delivery),
                (state, Some(pid)) => {
                    s.inflight.insert(pid, InFlight { delivery, state });
                }
            }
        }
        s.restore_counters(max_seq);
        s.incoming_qos2.extend(p.incoming_qos2);
        let session: SessionRef = Arc::new(parking_lot::Mutex::new(s));
        for sub in &r.subscriptions {
            router.subscribe(
                &session,
                &sub.filter,
                SubscriptionState {
                    options: sub.options,
                    identifier: sub.subscription_identifier,
                },
            );
        }
        router
            .sessions
            .lock()
            .insert(Arc::from(r.client_id.as_str()), session.clone());
        // Timers restart from now for what remains of the expiry.
        let remaining = Duration::from_millis((since + expiry_ms).saturating_sub(now));
        let will = r.will.as_ref().map(|w| {
            let at = w.publish_at_ms.unwrap_or(now);
            (
                w.message.clone(),
                Duration::from_millis(at.saturating_sub(now)),
            )
        });
        let timers = CancellationToken::new();
        session.lock().timers = Some(timers.clone());
        schedule(
            shared,
            &session,
            timers,
            will,
            (r.session_expiry_interval != u32::MAX).then_some(remaining),
        );
    }
    ops
}
