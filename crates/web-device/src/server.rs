//! The listener: accepts TCP connections up to the connection limit,
//! completes mutual TLS with the broker's live configuration, reads the
//! device from its certificate and serves HTTP/1.1 until the shutdown
//! token is cancelled, then lets requests in progress finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use civitas_broker::{Authority, BrokerHandle};
use civitas_pki::ReloadingServerConfig;
use civitas_shadow::ShadowService;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, body::Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::DeviceApiError;
use crate::authz::Device;
use crate::config::Limits;
use crate::response;
use crate::routes::Api;

/// How long requests in progress may take to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The HTTPS device API. Build it, then [`DeviceApi::serve`] a bound
/// listener.
#[derive(Debug)]
pub struct DeviceApi {
    tls: Arc<ReloadingServerConfig>,
    api: Api,
}

impl DeviceApi {
    /// `tls` must require client certificates (the broker's mutual-TLS
    /// configuration); `authority` answers which policies apply to a
    /// certificate; `broker` carries the publishes.
    pub fn new(
        tls: Arc<ReloadingServerConfig>,
        authority: Arc<dyn Authority>,
        broker: BrokerHandle,
    ) -> DeviceApi {
        DeviceApi {
            tls,
            api: Api {
                authority,
                broker,
                shadows: None,
                limits: Limits::default(),
            },
        }
    }

    /// Serve `/things/{thing}/shadow` from this service (the one the
    /// broker's shadow topics use). Without it those requests get 503.
    pub fn with_shadows(mut self, shadows: ShadowService) -> DeviceApi {
        self.api.shadows = Some(shadows);
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> DeviceApi {
        self.api.limits = limits;
        self
    }

    /// Bind the listener (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> Result<TcpListener, DeviceApiError> {
        TcpListener::bind(addr)
            .await
            .map_err(|source| DeviceApiError::Bind { addr, source })
    }

    /// Serve until `shutdown` is cancelled; returns once every connection
    /// has closed (requests in progress get a few seconds to finish).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), DeviceApiError> {
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "device HTTPS API listening");
        let permits = Arc::new(Semaphore::new(self.api.limits.max_connections));
        let tls = self.tls;
        let api = Arc::new(self.api);
        let connections = TaskTracker::new();
        loop {
            let (stream, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Running out of descriptors must not end the
                        // listener; back off a little instead.
                        tracing::warn!(error = %e, "device API accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "device API connection limit reached; connection closed");
                continue;
            };
            let acceptor = TlsAcceptor::from(tls.current());
            connections.spawn(serve_connection(
                stream,
                peer,
                acceptor,
                tls.clone(),
                api.clone(),
                shutdown.clone(),
                permit,
            ));
        }
        drop(listener);
        connections.close();
        connections.wait().await;
        tracing::info!(%addr, "device HTTPS API stopped");
        Ok(())
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    config: Arc<civitas_pki::ReloadingServerConfig>,
    api: Arc<Api>,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let timeout = api.limits.request_timeout;
    let tls = tokio::select! {
        () = shutdown.cancelled() => return,
        handshake = tokio::time::timeout(timeout, acceptor.accept(stream)) => match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "device API TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "device API TLS handshake timed out");
                return;
            }
        },
    };
    // A resumed session skipped certificate verification: its certificate
    // is checked against the current CRL and its validity.
    if let Err(e) = config.check_resumption(tls.get_ref().1) {
        tracing::warn!(%peer, error = %e, "device API TLS session resumption refused");
        return;
    }
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| civitas_pki::peer_identity(cert.as_ref()));
    let device = match identity {
        Some(Ok(id)) => Arc::new(Device {
            thing: id.common_name,
            serial: id.serial_hex,
        }),
        Some(Err(e)) => {
            tracing::debug!(%peer, error = %e, "device API client certificate unreadable");
            return;
        }
        None => {
            // The mutual-TLS configuration requires a certificate, so this
            // means a misconfiguration: never serve an unidentified client.
            tracing::warn!(%peer, "device API client presented no certificate; closed");
            return;
        }
    };
    let service = service_fn(move |request: Request<Incoming>| {
        let (api, device) = (api.clone(), device.clone());
        async move { Ok::<_, Infallible>(answer(api, &device, request, timeout).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(tls), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "device API connection ended");
            }
        }
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
        }
    }
}

/// One request, bounded by the request timeout, with its access log line.
async fn answer(
    api: Arc<Api>,
    device: &Device,
    request: Request<Incoming>,
    timeout: Duration,
) -> hyper::Response<response::Body> {
    let started = Instant::now();
    let trace = response::trace_id();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let answer = tokio::time::timeout(timeout, api.handle(device, request, &trace))
        .await
        .unwrap_or_else(|_| response::timeout(&trace));
    tracing::debug!(
        thing = %device.thing,
        %method,
        %path,
        status = answer.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        trace = %trace,
        "device API request"
    );
    answer
}
