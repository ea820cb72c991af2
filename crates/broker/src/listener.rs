//! Accepting connections: TCP, the TLS handshake (mutual TLS by default)
//! under the connect timeout, and the client identity from the
//! certificate. A failed handshake — no certificate, a certificate from
//! another CA, expired or revoked — ends there, before any MQTT byte.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use civitas_pki::{ReloadingServerConfig, peer_identity};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::config::{AuthMode, ListenerConfig};
use crate::connection::serve;
use crate::shared::{Shared, Stats};

pub(crate) async fn accept_loop(
    listener: TcpListener,
    config: Arc<ListenerConfig>,
    tls: Option<Arc<ReloadingServerConfig>>,
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
                let config = config.clone();
                let tls = tls.clone();
                let shared = shared.clone();
                connections.spawn(handle(stream, peer, config, tls, shared));
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                tracing::warn!(listener = %config.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<ListenerConfig>,
    tls: Option<Arc<ReloadingServerConfig>>,
    shared: Arc<Shared>,
) {
    let _ = stream.set_nodelay(true);
    let deadline =
        Instant::now() + Duration::from_secs(shared.router.limits.connect_timeout_secs);
    let Some(tls) = tls else {
        serve(stream, shared, config, peer, None, deadline).await;
        return;
    };
    let acceptor = TlsAcceptor::from(tls.current());
    let tls_stream = match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            Stats::inc(&shared.stats.tls_failures);
            tracing::warn!(%peer, listener = %config.name, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            Stats::inc(&shared.stats.tls_failures);
            tracing::warn!(%peer, listener = %config.name, "TLS handshake not finished within the connect timeout");
            return;
        }
    };
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
        AuthMode::Anonymous => None,
    };
    serve(tls_stream, shared, config, peer, identity, deadline).await;
}
