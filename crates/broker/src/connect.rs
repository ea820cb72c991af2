//! CONNECT: protocol negotiation, identity (certificate or password) and
//! client-id rules, session takeover and resumption, and the CONNACK.

use std::sync::Arc;
use std::time::Duration;

use civitas_mqtt::{
    ConnAck, ConnAckProperties, Connect, DecodeError, Packet, Protocol, ReasonCode, decode,
};
use civitas_store::{Op, OutboundState, SessionRecord, StoredSubscription};
use tokio::time::Instant;

use crate::authority::{PolicyAuthorizer, Refusal};
use crate::authz::{Authorizer, Grants};
use crate::config::AuthMode;
use crate::config::Authorization;
use crate::connection::{Close, Connection};
use crate::password::Verdict;
use crate::security::{self, SecurityOutcome};
use crate::session::{Attachment, Session, SessionRef};
use crate::shared::Stats;

impl Connection {
    /// Read and answer CONNECT, attaching the session. Any error has
    /// already been answered (CONNACK with a reason) when this returns.
    pub(crate) async fn read_connect(&mut self, deadline: Instant) -> Result<(), Close> {
        let max_packet = self.shared.router.limits.max_packet_size;
        let connect = loop {
            match decode(&mut self.wire.input, None, max_packet) {
                Ok(Some(Packet::Connect(c))) => break c,
                Ok(Some(other)) => {
                    return Err(Close::NetworkLost(format!(
                        "first packet was {}, not CONNECT",
                        other.name()
                    )));
                }
                Ok(None) => {}
                Err(e @ DecodeError::UnsupportedProtocol { level, .. }) => {
                    // Answer in the CONNACK layout the client can read: a
                    // later version (level 6 and up) gets the MQTT 5 one,
                    // whose 0x84 says exactly what is wrong.
                    self.protocol = e.connack_protocol().unwrap_or(Protocol::V311);
                    self.refuse(
                        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                        &format!("protocol level {level} is not supported"),
                    )
                    .await;
                    return Err(Close::NetworkLost("unsupported protocol".into()));
                }
                Err(e) => {
                    Stats::inc(&self.shared.stats.protocol_errors);
                    return Err(Close::NetworkLost(format!("malformed CONNECT: {e}")));
                }
            }
            let read = tokio::time::timeout_at(deadline, self.wire.read_some()).await;
            match read {
                Err(_) => {
                    return Err(Close::NetworkLost(
                        "no CONNECT within the connect timeout".into(),
                    ));
                }
                Ok(Ok(0)) => return Err(Close::NetworkLost("closed before CONNECT".into())),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(Close::NetworkLost(format!("read error: {e}"))),
            }
        };
        self.protocol = connect.protocol;
        self.accept_connect(*connect, deadline).await
    }

    /// What this connection may do: its registry policies (resolved for its
    /// certificate and client id) or the listener's permission table.
    pub(crate) fn resolve_authorizer(&mut self) -> Result<Arc<dyn Authorizer>, Refusal> {
        match self.listener.authorization() {
            Authorization::Permissions => Ok(Arc::new(Grants::resolve(
                &self.listener.permissions,
                &self.client_id,
            ))),
            Authorization::Policies => {
                let authority = self
                    .shared
                    .authority
                    .clone()
                    .ok_or_else(|| Refusal("no policy authority is configured".into()))?;
                let serial = self
                    .identity
                    .as_ref()
                    .map(|i| i.serial_hex.clone())
                    .ok_or_else(|| Refusal("policies need a certificate identity".into()))?;
                self.authz_generation = authority.generation();
                let authorizer = PolicyAuthorizer::connect(&*authority, &serial, &self.client_id)?;
                Ok(Arc::new(authorizer))
            }
        }
    }

    async fn refuse(&mut self, reason: ReasonCode, message: &str) {
        let outcome = if reason == ReasonCode::NOT_AUTHORIZED
            || reason == ReasonCode::CLIENT_IDENTIFIER_NOT_VALID
            || reason == ReasonCode::BAD_USER_NAME_OR_PASSWORD
        {
            SecurityOutcome::Denied
        } else {
            SecurityOutcome::Failure
        };
        security::record(
            &self.shared,
            format!("device:{}", self.client_id),
            "device.connect",
            format!("listener:{}", self.listener.name),
            outcome,
            vec![
                ("peer", self.peer.to_string()),
                ("reason_code", format!("{:#04x}", reason.0)),
                ("reason", message.to_string()),
                ("certificate", self.principal()),
            ],
        );
        tracing::warn!(peer = %self.peer, listener = %self.listener.name, client_id = %self.client_id, reason = format!("{:#04x}", reason.0), "{message}");
        let mut properties = ConnAckProperties::default();
        if self.protocol == Protocol::V5 {
            properties.reason_string = Some(message.to_string());
        }
        self.send(&Packet::ConnAck(ConnAck {
            session_present: false,
            reason_code: reason,
            properties,
        }));
        let _ = self.flush().await;
    }

    async fn accept_connect(&mut self, connect: Connect, deadline: Instant) -> Result<(), Close> {
        let limits = self.shared.router.limits.clone();
        let v5 = connect.protocol == Protocol::V5;

        if connect.properties.authentication_method.is_some() {
            self.refuse(
                ReasonCode::BAD_AUTHENTICATION_METHOD,
                "enhanced authentication is not supported",
            )
            .await;
            return Err(Close::NetworkLost("bad authentication method".into()));
        }

        // Identity and client id.
        let mut assigned = None;
        let client_id = match (self.listener.auth, &self.identity) {
            (AuthMode::Mtls, None) => {
                // The TLS layer requires a certificate; this is defence in depth.
                Stats::inc(&self.shared.stats.auth_failures);
                self.refuse(ReasonCode::NOT_AUTHORIZED, "no client certificate")
                    .await;
                return Err(Close::NetworkLost("no identity".into()));
            }
            (AuthMode::Mtls, Some(identity)) => {
                // Under policies the registry knows the certificate's
                // thing, which fleet provisioning names only after the
                // certificate (and its common name) was made.
                let thing = match (&self.shared.authority, self.listener.authorization()) {
                    (Some(authority), Authorization::Policies) => {
                        authority.certificate_thing(&identity.serial_hex)
                    }
                    _ => None,
                };
                let (name, what) = match thing {
                    Some(thing) => (thing, "the certificate's thing"),
                    None => (identity.common_name.clone(), "the certificate common name"),
                };
                self.client_id_for(name, &connect, &mut assigned, what)
                    .await?
            }
            (AuthMode::Password, _) => {
                let username = self.authenticate_password(&connect, deadline).await?;
                self.client_id_for(username, &connect, &mut assigned, "the username")
                    .await?
            }
            (AuthMode::Anonymous, _) => {
                if connect.client_id.is_empty() {
                    if !v5 && !connect.clean_start {
                        self.refuse(
                            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                            "an empty client id needs clean session",
                        )
                        .await;
                        return Err(Close::NetworkLost("empty client id".into()));
                    }
                    let id = format!("civitas-{:016x}", rand::random::<u64>());
                    if v5 {
                        assigned = Some(id.clone());
                    }
                    id
                } else {
                    connect.client_id.clone()
                }
            }
        };
        self.client_id = Arc::from(client_id.as_str());
        match self.resolve_authorizer() {
            Ok(authorizer) => self.grants = authorizer,
            Err(refusal) => {
                Stats::inc(&self.shared.stats.auth_failures);
                tracing::warn!(peer = %self.peer, client_id = %self.client_id, "connection not authorized: {}", refusal.0);
                self.refuse(ReasonCode::NOT_AUTHORIZED, "not authorized")
                    .await;
                return Err(Close::NetworkLost("not authorized".into()));
            }
        }

        if let Some(will) = &connect.will
            && !self.grants.may_publish(&will.topic)
        {
            Stats::inc(&self.shared.stats.auth_failures);
            self.refuse(
                ReasonCode::NOT_AUTHORIZED,
                "the will topic is not allowed for this client",
            )
            .await;
            return Err(Close::NetworkLost("will topic not allowed".into()));
        }

        // Negotiated parameters.
        let mut connack = ConnAckProperties::default();
        let mut keep_alive = connect.keep_alive;
        if v5 && (keep_alive > limits.max_keep_alive_secs || keep_alive == 0) {
            keep_alive = limits.max_keep_alive_secs;
            connack.server_keep_alive = Some(keep_alive);
        }
        self.keep_alive = Duration::from_secs(u64::from(keep_alive));
        let requested_expiry = if v5 {
            connect.properties.session_expiry_interval.unwrap_or(0)
        } else if connect.clean_start {
            0
        } else {
            limits.max_session_expiry_secs
        };
        let expiry = requested_expiry.min(limits.max_session_expiry_secs);
        if v5 && expiry != requested_expiry {
            connack.session_expiry_interval = Some(expiry);
        }
        self.client_receive_maximum = connect
            .properties
            .receive_maximum
            .unwrap_or(u16::MAX)
            .min(limits.max_inflight)
            .max(1);
        self.client_max_packet_size = connect.properties.maximum_packet_size.unwrap_or(u32::MAX);
        self.client_topic_alias_max = connect.properties.topic_alias_maximum.unwrap_or(0);
        self.will = connect.will.clone();

        // Attach the session, taking it over from another connection.
        let (session, present) = self.attach(&client_id, connect.clean_start, expiry).await;
        self.session = Some(session.clone());

        if v5 {
            connack.assigned_client_identifier = assigned;
            connack.receive_maximum = Some(limits.receive_maximum);
            connack.maximum_packet_size = Some(limits.max_packet_size);
            connack.topic_alias_maximum = Some(limits.topic_alias_maximum);
            connack.retain_available = Some(true);
            connack.wildcard_subscription_available = Some(true);
            connack.subscription_identifiers_available = Some(true);
            connack.shared_subscription_available = Some(true);
        }
        self.send(&Packet::ConnAck(ConnAck {
            session_present: present,
            reason_code: ReasonCode::SUCCESS,
            properties: connack,
        }));
        tracing::info!(peer = %self.peer, listener = %self.listener.name, client_id = %self.client_id, protocol = ?self.protocol, session_present = present, "client connected");
        self.presence_connected();
        security::record(
            &self.shared,
            format!("device:{}", self.client_id),
            "device.connect",
            format!("listener:{}", self.listener.name),
            SecurityOutcome::Success,
            vec![
                ("peer", self.peer.to_string()),
                ("protocol", format!("{:?}", self.protocol)),
                ("certificate", self.principal()),
            ],
        );
        self.resend_inflight();
        Ok(())
    }

    /// The client id for an authenticated `identity`: the identity itself
    /// when the client sends none, else the client's, which must equal
    /// the identity when the listener says so (`what` names it).
    async fn client_id_for(
        &mut self,
        identity: String,
        connect: &Connect,
        assigned: &mut Option<String>,
        what: &str,
    ) -> Result<String, Close> {
        let v5 = connect.protocol == Protocol::V5;
        if connect.client_id.is_empty() {
            if !v5 && !connect.clean_start {
                self.refuse(
                    ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                    "an empty client id needs clean session",
                )
                .await;
                return Err(Close::NetworkLost("empty client id".into()));
            }
            if v5 {
                *assigned = Some(identity.clone());
            }
            Ok(identity)
        } else if self.listener.client_id_must_match_identity && connect.client_id != identity {
            Stats::inc(&self.shared.stats.auth_failures);
            self.client_id = Arc::from(connect.client_id.as_str());
            tracing::warn!(peer = %self.peer, %identity, client_id = %connect.client_id, "client id does not match {what}: refused as a spoof");
            self.refuse(
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                &format!("client id must equal {what}"),
            )
            .await;
            Err(Close::NetworkLost("client id spoof".into()))
        } else {
            Ok(connect.client_id.clone())
        }
    }

    /// Check CONNECT's username and password; the username on success.
    /// The password is never logged.
    async fn authenticate_password(
        &mut self,
        connect: &Connect,
        deadline: Instant,
    ) -> Result<String, Close> {
        self.client_id = Arc::from(connect.client_id.as_str());
        let Some(check) = self.passwords.clone() else {
            // Broker::run refuses a password listener without credentials.
            Stats::inc(&self.shared.stats.auth_failures);
            self.refuse(ReasonCode::NOT_AUTHORIZED, "no credentials are configured")
                .await;
            return Err(Close::NetworkLost("no credential store".into()));
        };
        let (Some(username), Some(password)) = (&connect.username, &connect.password) else {
            Stats::inc(&self.shared.stats.auth_failures);
            self.refuse(
                ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                "a username and password are required",
            )
            .await;
            return Err(Close::NetworkLost("no credentials".into()));
        };
        match check.verify(username, password.clone(), deadline).await {
            Verdict::Accepted => Ok(username.clone()),
            Verdict::Refused => {
                Stats::inc(&self.shared.stats.auth_failures);
                tracing::warn!(peer = %self.peer, %username, "wrong password or unknown username");
                self.refuse(
                    ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                    "bad username or password",
                )
                .await;
                Err(Close::NetworkLost("bad credentials".into()))
            }
            Verdict::Busy => {
                self.refuse(ReasonCode::SERVER_BUSY, "too many logins at once")
                    .await;
                Err(Close::NetworkLost("password verification busy".into()))
            }
        }
    }

    /// Find or create the session for `client_id`, disconnecting any
    /// connection that holds it now (reason 0x8E).
    async fn attach(
        &mut self,
        client_id: &str,
        clean_start: bool,
        expiry: u32,
    ) -> (SessionRef, bool) {
        let shared = self.shared.clone();
        let router = &shared.router;
        let _guard = shared.connect_lock.lock().await;

        let existing = router.sessions.lock().get(client_id).cloned();
        if let Some(old) = &existing {
            let attachment = {
                let mut s = old.lock();
                let a = s.attachment.clone();
                if a.is_some() {
                    s.kick_reason = Some(ReasonCode::SESSION_TAKEN_OVER);
                }
                a
            };
            if let Some(a) = attachment {
                tracing::info!(client_id, "session taken over by a new connection");
                a.kick.cancel();
                let _ = tokio::time::timeout(Duration::from_secs(5), a.detached.cancelled()).await;
            }
        }
        // The old connection may have ended the session while detaching.
        let existing = router.sessions.lock().get(client_id).cloned();
        let mut ops = Vec::new();
        let (session, present) = match existing {
            Some(old) if !clean_start => {
                if let Some(timers) = old.lock().timers.take() {
                    timers.cancel();
                }
                (old, true)
            }
            other => {
                if let Some(old) = other {
                    ops.extend(crate::lifecycle::end_session(&shared, &old));
                }
                let s = Session::new(
                    router.new_session_id(),
                    Arc::from(client_id),
                    self.protocol,
                    expiry,
                );
                let s: SessionRef = Arc::new(parking_lot::Mutex::new(s));
                router
                    .sessions
                    .lock()
                    .insert(Arc::from(client_id), s.clone());
                (s, false)
            }
        };
        {
            let mut s = session.lock();
            s.protocol = self.protocol;
            s.expiry_interval = expiry;
            s.grants = self.grants.clone();
            s.kick_reason = None;
            s.attachment = Some(Attachment {
                connection_id: self.id,
                wake: self.wake.clone(),
                kick: self.kick.clone(),
                detached: self.detached.clone(),
            });
            if s.is_persistent() {
                ops.push(Op::PutSession(session_record(&s, None)));
            } else if present {
                // A persistent session resumed with expiry 0 is no longer
                // kept across connections.
                ops.push(Op::DeleteSession {
                    client_id: client_id.to_string(),
                });
            }
        }
        if !ops.is_empty()
            && let Err(e) = shared.store.commit(ops).await
        {
            tracing::error!(client_id, error = %e, "could not persist the session");
        }
        (session, present)
    }

    /// On resumption, resend what was in flight, in order: PUBLISH with
    /// DUP for unacknowledged messages, PUBREL where PUBREC had arrived.
    fn resend_inflight(&mut self) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let mut inflight: Vec<_> = {
            let s = session.lock();
            s.inflight
                .iter()
                .map(|(pid, f)| (f.delivery.seq, *pid, f.clone()))
                .collect()
        };
        inflight.sort_by_key(|(seq, _, _)| *seq);
        for (_, pid, f) in inflight {
            match f.state {
                OutboundState::AwaitingPubComp => {
                    let rel = self.ack(pid, ReasonCode::SUCCESS);
                    self.send(&Packet::PubRel(rel));
                }
                _ => {
                    if let Some(p) = self.build_publish(&f.delivery, Some(pid), true) {
                        self.send(&Packet::Publish(p));
                    }
                }
            }
        }
    }
}

/// The durable form of a session.
pub(crate) fn session_record(s: &Session, disconnected_at_ms: Option<u64>) -> SessionRecord {
    SessionRecord {
        client_id: s.client_id.to_string(),
        protocol_level: s.protocol.level(),
        session_expiry_interval: s.expiry_interval,
        disconnected_at_ms,
        subscriptions: s
            .subscriptions
            .iter()
            .map(|(filter, st)| StoredSubscription {
                filter: filter.clone(),
                options: st.options,
                subscription_identifier: st.identifier,
            })
            .collect(),
        will: None,
    }
}
