//! One client connection: the loop that reads, dispatches each packet,
//! delivers and writes, and the keep-alive timer.
//!
//! The connection task owns the protocol state of its network connection
//! (topic aliases, acknowledgements waiting for the store) and its wire;
//! the session it is attached to outlives it. Packets are encoded into
//! the wire's output as they are produced and leave together, one TLS
//! write for whatever one pass produced.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use civitas_mqtt::{
    Disconnect, DisconnectProperties, Packet, Protocol, PubAck, ReasonCode, Will, decode, encode,
    encoded_len,
};
use civitas_pki::PeerIdentity;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::authz::{Authorizer, Grants};
use crate::config::Authorization;
use crate::config::ListenerConfig;
use crate::password::PasswordCheck;
use crate::session::SessionRef;
use crate::shared::{Shared, Stats};
use crate::wire::{Progress, Transport, Wire};

/// An acknowledgement held back until the store has made the message
/// durable; resolved in the order the PUBLISHes arrived.
pub(crate) type PendingAck =
    Pin<Box<dyn Future<Output = (Packet, Result<(), civitas_store::StoreError>)> + Send>>;

/// Why a connection ends.
#[derive(Debug)]
pub(crate) enum Close {
    /// The client sent DISCONNECT; `keep_will` for any reason but 0x00.
    ClientDisconnect { keep_will: bool },
    /// The network went away (EOF, I/O error).
    NetworkLost(String),
    /// The broker closes it, telling a v5 client why.
    Server { reason: ReasonCode, message: String },
}

pub(crate) struct Connection {
    pub shared: Arc<Shared>,
    pub listener: Arc<ListenerConfig>,
    pub peer: SocketAddr,
    pub identity: Option<PeerIdentity>,
    /// Verifies CONNECT credentials on a password listener.
    pub passwords: Option<Arc<PasswordCheck>>,
    pub id: u64,
    pub protocol: Protocol,
    pub client_id: Arc<str>,
    pub session: Option<SessionRef>,
    pub grants: Arc<dyn Authorizer>,
    /// The authority's generation the grants were resolved at.
    pub authz_generation: u64,
    pub will: Option<Will>,
    pub keep_alive: Duration,
    /// The client's Receive Maximum (capped by our max_inflight).
    pub client_receive_maximum: u16,
    /// The client's Maximum Packet Size; larger messages are not sent.
    pub client_max_packet_size: u32,
    pub client_topic_alias_max: u16,
    pub inbound_aliases: HashMap<u16, String>,
    pub outbound_aliases: HashMap<String, u16>,
    pub pending_acks: FuturesOrdered<PendingAck>,
    pub wake: Arc<Notify>,
    pub kick: CancellationToken,
    pub detached: CancellationToken,
    pub(crate) wire: Wire,
    pub(crate) presence: Option<crate::presence::Presence>,
    pub(crate) service_queue: Option<crate::services::ServiceQueue>,
}

impl Connection {
    pub(crate) fn new(
        shared: Arc<Shared>,
        listener: Arc<ListenerConfig>,
        peer: SocketAddr,
        identity: Option<PeerIdentity>,
        passwords: Option<Arc<PasswordCheck>>,
        wire: Wire,
    ) -> Self {
        let id = shared.connection_id();
        Connection {
            shared,
            listener,
            peer,
            identity,
            passwords,
            id,
            protocol: Protocol::V311,
            client_id: Arc::from(""),
            session: None,
            grants: Arc::new(Grants::default()),
            authz_generation: 0,
            will: None,
            keep_alive: Duration::ZERO,
            client_receive_maximum: u16::MAX,
            client_max_packet_size: u32::MAX,
            client_topic_alias_max: 0,
            inbound_aliases: HashMap::new(),
            outbound_aliases: HashMap::new(),
            pending_acks: FuturesOrdered::new(),
            wake: Arc::new(Notify::new()),
            kick: CancellationToken::new(),
            detached: CancellationToken::new(),
            wire,
            presence: None,
            service_queue: None,
        }
    }

    /// Queue a packet for writing (encoded now, written with whatever
    /// else this pass produces).
    pub(crate) fn send(&mut self, packet: &Packet) {
        if let Err(e) = encode(packet, self.protocol, &mut self.wire.output) {
            tracing::error!(client_id = %self.client_id, packet = packet.name(), error = %e, "cannot encode packet");
        }
    }

    /// Write everything queued now, waiting for the client to take it.
    pub(crate) async fn flush(&mut self) -> Result<(), Close> {
        self.wire
            .flush_all()
            .await
            .map_err(|e| Close::NetworkLost(format!("write error: {e}")))
    }
}

/// Serve one accepted (and, where configured, TLS-wrapped) stream until
/// it closes.
///
/// What this future holds while the connection lasts is what an idle
/// connection costs, so the phases that run once (CONNECT, the end) are
/// boxed: their state is on the heap only while they run.
pub(crate) async fn serve(
    stream: Box<dyn Transport>,
    shared: Arc<Shared>,
    listener: Arc<ListenerConfig>,
    peer: SocketAddr,
    identity: Option<PeerIdentity>,
    passwords: Option<Arc<PasswordCheck>>,
    connect_deadline: Instant,
) {
    let wire = Wire::new(stream);
    let mut conn = Connection::new(shared.clone(), listener, peer, identity, passwords, wire);

    let connected = Box::pin(conn.read_connect(connect_deadline)).await;
    let close = match connected {
        Ok(()) => {
            Stats::inc(&shared.stats.connections_active);
            let close = conn.run().await;
            shared
                .stats
                .connections_active
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            close
        }
        Err(close) => close,
    };
    Box::pin(close_connection(conn, close)).await;
}

/// The end of a connection: will and session bookkeeping, the last
/// packets, the shutdown of the stream and, when the broker closed it, a
/// lingering drain.
async fn close_connection(mut conn: Connection, close: Close) {
    let server_closed = matches!(close, Close::Server { .. });
    conn.finish(close).await;
    // Whatever is still queued (acknowledgements, the DISCONNECT) goes out
    // first. A connection the broker ends is then shut for writing (TLS
    // close_notify); one the client ended (DISCONNECT, or it went away)
    // has nobody left to tell and is simply closed.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = conn.wire.flush_all().await;
        if server_closed {
            let _ = conn.wire.shutdown().await;
        }
    })
    .await;
    if server_closed {
        // Lingering close: closing a socket that still has unread input
        // makes the kernel send RST, and the client may then never read
        // our DISCONNECT (with its reason code) or the acknowledgements
        // before it. Our side is already shut for writing; drain what the
        // client still sends, briefly, until it closes too.
        let _ = tokio::time::timeout(LINGER, async {
            loop {
                conn.wire.input.clear();
                match conn.wire.read_some().await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

/// How long a connection the broker closed keeps draining input.
const LINGER: Duration = Duration::from_secs(2);

impl Connection {
    async fn run(&mut self) -> Close {
        let max_packet = self.shared.router.limits.max_packet_size;
        let policies = self.listener.authorization() == Authorization::Policies;
        let mut authz_rx = self.shared.authz_changed.subscribe();
        // The futures the loop waits on are made once and kept, not made
        // afresh on every pass: each registration with a token, a notifier
        // or the timer wheel is work a busy connection would repeat for
        // every packet.
        let wake = self.wake.clone();
        let notified = wake.notified();
        tokio::pin!(notified);
        let kick = self.kick.clone();
        let kicked = kick.cancelled();
        tokio::pin!(kicked);
        let shutdown = self.shared.shutdown.clone();
        let shutting_down = shutdown.cancelled();
        tokio::pin!(shutting_down);
        // The keep-alive timer fires at the deadline it was last set to;
        // only then is the deadline moved up to what the packets since
        // allow, so packets do not touch the timer.
        let grace = self.keep_alive.mul_f32(1.5);
        let mut last_seen = Instant::now();
        let keep_alive = tokio::time::sleep_until(last_seen + grace);
        tokio::pin!(keep_alive);
        loop {
            // Handle every whole packet already buffered, unless the
            // client is not reading what it is sent.
            let mut saw_packet = false;
            while !self.wire.congested() {
                match decode(&mut self.wire.input, Some(self.protocol), max_packet) {
                    Ok(Some(packet)) => {
                        saw_packet = true;
                        if let Err(close) = self.handle(packet).await {
                            return close;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        Stats::inc(&self.shared.stats.protocol_errors);
                        return Close::Server {
                            reason: e.reason_code(),
                            message: e.to_string(),
                        };
                    }
                }
            }
            if saw_packet {
                last_seen = Instant::now();
            }
            if !self.wire.congested()
                && let Err(close) = self.deliver()
            {
                return close;
            }
            self.wire.release_idle();
            let read = !self.wire.congested();
            tokio::select! {
                progress = self.wire.progress(read) => match progress {
                    Ok(Progress::Read(0)) => return Close::NetworkLost("connection closed by peer".into()),
                    Ok(Progress::Read(_) | Progress::Drained) => {}
                    Err(e) => return Close::NetworkLost(e.to_string()),
                },
                () = &mut notified => notified.set(wake.notified()),
                Some((ack, result)) = self.pending_acks.next(), if !self.pending_acks.is_empty() => {
                    if let Err(e) = result {
                        tracing::error!(client_id = %self.client_id, error = %e, "store commit failed; closing so the client resends");
                        return Close::Server { reason: ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR, message: "storage unavailable".into() };
                    }
                    self.send(&ack);
                }
                () = &mut keep_alive, if !self.keep_alive.is_zero() => {
                    let deadline = last_seen + grace;
                    if Instant::now() >= deadline {
                        return Close::Server { reason: ReasonCode::KEEP_ALIVE_TIMEOUT, message: "keep-alive timeout".into() };
                    }
                    keep_alive.as_mut().reset(deadline);
                }
                changed = authz_rx.changed(), if policies => {
                    if changed.is_ok()
                        && let Err(close) = self.reauthorize()
                    {
                        return close;
                    }
                }
                () = &mut kicked => {
                    let reason = self.session.as_ref().and_then(|s| s.lock().kick_reason).unwrap_or(ReasonCode::ADMINISTRATIVE_ACTION);
                    return Close::Server { reason, message: "closed by the broker".into() };
                }
                () = &mut shutting_down => {
                    return Close::Server { reason: ReasonCode::SERVER_SHUTTING_DOWN, message: "server shutting down".into() };
                }
            }
        }
    }

    /// The registry changed: resolve this connection's policies again, and
    /// end it if its certificate is no longer active or allowed to connect.
    fn reauthorize(&mut self) -> Result<(), Close> {
        match self.resolve_authorizer() {
            Ok(authorizer) => {
                if let Some(session) = &self.session {
                    session.lock().grants = authorizer.clone();
                }
                self.grants = authorizer;
                Ok(())
            }
            Err(refusal) => {
                Stats::inc(&self.shared.stats.auth_failures);
                tracing::warn!(client_id = %self.client_id, "no longer authorized, disconnecting: {}", refusal.0);
                Err(Close::Server {
                    reason: ReasonCode::NOT_AUTHORIZED,
                    message: "no longer authorized".into(),
                })
            }
        }
    }

    async fn handle(&mut self, packet: Packet) -> Result<(), Close> {
        match packet {
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(a) => {
                self.on_puback(a);
                Ok(())
            }
            Packet::PubRec(a) => {
                self.on_pubrec(a);
                Ok(())
            }
            Packet::PubRel(a) => {
                self.on_pubrel(a);
                Ok(())
            }
            Packet::PubComp(a) => {
                self.on_pubcomp(a);
                Ok(())
            }
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => {
                self.on_unsubscribe(u);
                Ok(())
            }
            Packet::PingReq => {
                self.send(&Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(d) => Err(self.on_disconnect(d)),
            Packet::Connect(_) => Err(protocol_error("a second CONNECT on one connection")),
            Packet::Auth(_) => Err(Close::Server {
                reason: ReasonCode::BAD_AUTHENTICATION_METHOD,
                message: "enhanced authentication is not supported".into(),
            }),
            other => Err(protocol_error(&format!(
                "{} is not sent by clients",
                other.name()
            ))),
        }
    }

    fn on_disconnect(&mut self, d: Disconnect) -> Close {
        if let Some(new_expiry) = d.properties.session_expiry_interval
            && let Some(session) = &self.session
        {
            let mut s = session.lock();
            if s.expiry_interval == 0 && new_expiry != 0 {
                return protocol_error(
                    "session expiry interval set in DISCONNECT after CONNECT gave 0",
                );
            }
            s.expiry_interval = new_expiry.min(self.shared.router.limits.max_session_expiry_secs);
        }
        // Only a normal disconnection (0x00) discards the will; 0x04 and
        // the error codes a client may leave with keep it (MQTT 5 3.14.4).
        Close::ClientDisconnect {
            keep_will: d.reason_code != ReasonCode::NORMAL_DISCONNECTION,
        }
    }

    /// Tell a v5 client why it is being disconnected (if it got that far).
    pub(crate) async fn send_disconnect(&mut self, reason: ReasonCode, message: &str) {
        if self.protocol == Protocol::V5 && self.session.is_some() {
            let mut disconnect = Disconnect {
                reason_code: reason,
                properties: DisconnectProperties {
                    reason_string: Some(message.to_string()),
                    ..Default::default()
                },
            };
            // Nothing may exceed the client's Maximum Packet Size; the
            // reason string is the part to leave out (MQTT 5 3.14.2.2.3).
            let fits = |d: &Disconnect| {
                encoded_len(&Packet::Disconnect(d.clone()), self.protocol)
                    <= self.client_max_packet_size as usize
            };
            if !fits(&disconnect) {
                disconnect.properties.reason_string = None;
            }
            self.send(&Packet::Disconnect(disconnect));
        }
        let _ = self.flush().await;
    }

    pub(crate) fn ack(&self, packet_id: u16, reason: ReasonCode) -> PubAck {
        PubAck {
            packet_id,
            reason_code: reason,
            properties: Default::default(),
        }
    }
}

pub(crate) fn protocol_error(message: &str) -> Close {
    Close::Server {
        reason: ReasonCode::PROTOCOL_ERROR,
        message: message.to_string(),
    }
}
