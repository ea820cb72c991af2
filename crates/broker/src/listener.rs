//! Accepting connections: TCP, the TLS handshake (mutual TLS by default)
//! under the connect timeout, the client identity from the certificate,
//! and on WebSocket listeners the HTTP upgrade. A failed handshake — no
//! certificate, a certificate from another CA, expired or revoked — ends
//! there, before any MQTT byte.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use civitas_pki::{PeerIdentity, ReloadingServerConfig, peer_identity};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::config::{AuthMode, ListenerConfig};
use crate::connection::serve;
use crate::password::PasswordCheck;
use crate::security::{self, SecurityOutcome};
use crate::shared::{Shared, Stats};
use crate::websocket;
use crate::wire::Transport;

/// What one listener needs to serve a connection.
pub(crate) struct Endpoint {
    pub config: Arc<ListenerConfig>,
    pub tls: Option<Arc<ReloadingServerConfig>>,
    /// Password verification (password listeners only).
    pub passwords: Option<Arc<PasswordCheck>>,
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    endpoint: Arc<Endpoint>,
    shared: Arc<Shared>,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shared.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                Stats::inc(&shared.stats.connections_accepted);
                let endpoint = endpoint.clone();
                let shared = shared.clone();
                connections.spawn(handle(stream, peer, endpoint, shared));
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                tracing::warn!(listener = %endpoint.config.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(stream: TcpStream, peer: SocketAddr, endpoint: Arc<Endpoint>, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let config = &endpoint.config;
    let deadline = Instant::now() + Duration::from_secs(shared.router.limits.connect_timeout_secs);
    let Some(tls) = &endpoint.tls else {
        serve_transport(Box::new(stream), &endpoint, shared, peer, None, deadline).await;
        return;
    };
    let acceptor = TlsAcceptor::from(tls.current());
    // The handshake's state and the TLS stream live on the heap: kept
    // inline, their size would stay reserved in the connection task for
    // its whole life, idle or not.
    let accept = Box::pin(acceptor.accept(stream));
    let tls_stream = match tokio::time::timeout_at(deadline, accept).await {
        Ok(Ok(s)) => Box::new(s),
        Ok(Err(e)) => {
            tracing::warn!(%peer, listener = %config.name, error = %e, "TLS handshake refused");
            tls_refused(
                &shared,
                peer,
                config,
                SecurityOutcome::Failure,
                e.to_string(),
            );
            return;
        }
        Err(_) => {
            Stats::inc(&shared.stats.tls_failures);
            tracing::warn!(%peer, listener = %config.name, "TLS handshake not finished within the connect timeout");
            return;
        }
    };
    if let Err(e) = tls.check_resumption(tls_stream.get_ref().1) {
        tracing::warn!(%peer, listener = %config.name, error = %e, "TLS session resumption refused");
        tls_refused(
            &shared,
            peer,
            config,
            SecurityOutcome::Denied,
            e.to_string(),
        );
        return;
    }
    let identity = match config.auth {
        AuthMode::Mtls => {
            let (_, conn) = tls_stream.get_ref();
            let cert = conn.peer_certificates().and_then(|c| c.first());
            match cert.map(|c| peer_identity(c.as_ref())) {
                Some(Ok(id)) => Some(id),
                Some(Err(e)) => {
                    Stats::inc(&shared.stats.auth_failures);
                    tracing::warn!(%peer, error = %e, "unreadable client certificate");
                    return;
                }
                None => {
                    Stats::inc(&shared.stats.auth_failures);
                    tracing::warn!(%peer, "no client certificate on a mutual-TLS listener");
                    return;
                }
            }
        }
        // The password arrives in CONNECT.
        AuthMode::Anonymous | AuthMode::Password => None,
    };
    serve_transport(tls_stream, &endpoint, shared, peer, identity, deadline).await;
}

/// A handshake that ends the connection: counted and on the record.
fn tls_refused(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    config: &ListenerConfig,
    outcome: SecurityOutcome,
    error: String,
) {
    Stats::inc(&shared.stats.tls_failures);
    security::record(
        shared,
        format!("peer:{peer}"),
        "tls.handshake",
        format!("listener:{}", config.name),
        outcome,
        vec![("error", error)],
    );
}

/// Serve MQTT on `stream` directly or, on a WebSocket listener, after the
/// upgrade (still within the connect deadline).
async fn serve_transport(
    stream: Box<dyn Transport>,
    endpoint: &Endpoint,
    shared: Arc<Shared>,
    peer: SocketAddr,
    identity: Option<PeerIdentity>,
    deadline: Instant,
) {
    let config = endpoint.config.clone();
    let passwords = endpoint.passwords.clone();
    if !config.transport.is_websocket() {
        serve(stream, shared, config, peer, identity, passwords, deadline).await;
        return;
    }
    // A message may carry a whole packet plus whatever else the client
    // batched with it.
    let max_message = (shared.router.limits.max_packet_size as usize).saturating_add(64 * 1024);
    let upgrade = Box::pin(websocket::accept(stream, max_message));
    match tokio::time::timeout_at(deadline, upgrade).await {
        Ok(Ok(ws)) => {
            serve(
                Box::new(ws),
                shared,
                config,
                peer,
                identity,
                passwords,
                deadline,
            )
            .await
        }
        Ok(Err(e)) => {
            Stats::inc(&shared.stats.protocol_errors);
            tracing::warn!(%peer, listener = %config.name, error = %e, "WebSocket upgrade refused");
        }
        Err(_) => {
            Stats::inc(&shared.stats.protocol_errors);
            tracing::warn!(%peer, listener = %config.name, "WebSocket upgrade not finished within the connect timeout");
        }
    }
}
