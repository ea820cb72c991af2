//! The civitas MQTT broker (the AWS IoT Core message broker role).
//!
//! [`Broker::new`] restores durable state from the store; [`Broker::run`]
//! serves already-bound listeners until the shutdown token is cancelled,
//! so tests can start as many brokers as they like on port 0. Mutual TLS
//! is the default and only default listener; password, anonymous,
//! plaintext and WebSocket listeners exist only when the configuration
//! asks for them. Password credentials come from [`password::Credentials`]
//! via [`Broker::with_passwords`].

mod authority;
mod authz;
pub mod clock;
pub mod config;
mod connect;
mod connection;
mod handle;
mod inbound;
mod lifecycle;
mod listener;
mod outbound;
pub mod password;
mod presence;
mod router;
mod security;
mod services;
mod session;
mod shared;
mod subscribe;
mod websocket;
mod wire;

use std::sync::Arc;

use civitas_pki::ReloadingServerConfig;
use civitas_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use authority::{Authority, PolicyAuthorizer, Refusal};
pub use authz::Authorizer;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    AuthMode, Authorization, BrokerConfig, IdentityGrant, Limits, ListenerConfig, Permissions,
    Transport,
};
pub use handle::{BrokerHandle, HandleError, MessageObserver, Published};
pub use password::Credentials;
pub use security::{SecurityEvent, SecurityLog, SecurityOutcome};
pub use services::{Audience, ServiceReply, ServiceRequest, Ticket, TopicService};
pub use shared::Stats;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("listener {name}: {reason}")]
    Listener { name: String, reason: String },
    #[error("listener {name}: cannot bind {addr}: {source}")]
    Bind {
        name: String,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] civitas_store::StoreError),
}

/// TLS server configurations the listeners use; both reload live.
#[derive(Debug, Clone)]
pub struct BrokerTls {
    /// Requires a client certificate from the civitas CA (mtls listeners).
    pub mutual: Arc<ReloadingServerConfig>,
    /// Server authentication only (anonymous listeners that use TLS).
    pub server_only: Option<Arc<ReloadingServerConfig>>,
}

pub struct Broker {
    shared: Arc<shared::Shared>,
    config: BrokerConfig,
    tls: Option<BrokerTls>,
    passwords: Option<Arc<Credentials>>,
    restored: Vec<civitas_store::PersistedSession>,
    handle: BrokerHandle,
}

impl Broker {
    /// Build a broker over `store`, loading retained messages and
    /// persistent sessions. `shutdown` stops it.
    pub fn new(
        config: BrokerConfig,
        store: Store,
        tls: Option<BrokerTls>,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
    ) -> Result<Broker, BrokerError> {
        let router = Arc::new(router::Router::new(config.limits.clone(), clock));
        let state = store.load_broker_state()?;
        for message in state.retained {
            router.restore_retained(message);
        }
        let shared = Arc::new(shared::Shared::new(router, store, shutdown));
        Ok(Broker {
            shared,
            config,
            tls,
            passwords: None,
            restored: state.sessions,
            handle: BrokerHandle::default(),
        })
    }

    /// The credentials `auth = "password"` listeners check; the caller
    /// keeps them current (see [`Credentials::watch`]).
    pub fn with_passwords(mut self, credentials: Arc<Credentials>) -> Broker {
        self.passwords = Some(credentials);
        self
    }

    /// Add a handler for a family of reserved topics (device shadows,
    /// fleet provisioning). Call before [`Broker::run`].
    pub fn with_service(mut self, service: Arc<dyn TopicService>) -> Broker {
        // Until `run`, the broker holds the only reference to its shared
        // state, so it can still be changed in place.
        Arc::get_mut(&mut self.shared)
            .expect("services are added before the broker runs")
            .services
            .push(service);
        self
    }

    /// Tell `observer` of every message the broker routes. Call before
    /// [`Broker::run`].
    pub fn with_observer(mut self, observer: Arc<dyn MessageObserver>) -> Broker {
        // As in `with_service`: nothing else holds the shared state yet.
        let shared =
            Arc::get_mut(&mut self.shared).expect("observers are added before the broker runs");
        Arc::get_mut(&mut shared.router)
            .expect("observers are added before the broker runs")
            .observers
            .push(observer);
        self
    }

    /// Report security events (connections, refusals, denials) to `log`.
    /// Call before [`Broker::run`].
    pub fn with_security_log(mut self, log: Arc<dyn SecurityLog>) -> Broker {
        // As in `with_service`: nothing else holds the shared state yet.
        Arc::get_mut(&mut self.shared)
            .expect("the security log is set before the broker runs")
            .security_log = Some(log);
        self
    }

    /// A handle to publish into this broker once it runs.
    pub fn handle(&self) -> BrokerHandle {
        self.handle.clone()
    }

    /// Authorize certificate-authenticated connections by the policies
    /// this authority (the device registry) returns. Call before
    /// [`Broker::run`].
    pub fn with_authority(mut self, authority: Arc<dyn Authority>) -> Broker {
        // As in `with_service`: nothing else holds the shared state yet.
        Arc::get_mut(&mut self.shared)
            .expect("the authority is set before the broker runs")
            .authority = Some(authority);
        self
    }

    /// Check every listener's security settings before anything binds.
    pub fn validate_listeners(
        config: &BrokerConfig,
        tls_available: bool,
    ) -> Result<(), BrokerError> {
        if config.listeners.is_empty() {
            return Err(BrokerError::Listener {
                name: "(none)".into(),
                reason: "no listeners are configured".into(),
            });
        }
        let mut names = std::collections::HashSet::new();
        for l in &config.listeners {
            if !names.insert(l.name.as_str()) {
                return Err(BrokerError::Listener {
                    name: l.name.clone(),
                    reason: "two listeners have this name".into(),
                });
            }
            let err = |reason: &str| BrokerError::Listener {
                name: l.name.clone(),
                reason: reason.to_string(),
            };
            if l.auth == AuthMode::Anonymous && !l.bind.ip().is_loopback() {
                return Err(err(
                    "anonymous listeners are allowed on loopback addresses only",
                ));
            }
            if !l.tls && !l.plaintext_acknowledged {
                return Err(err(
                    "tls = false needs plaintext_acknowledged = true: plaintext MQTT exposes device data",
                ));
            }
            if l.auth == AuthMode::Mtls && !l.tls {
                return Err(err("mutual TLS needs tls = true"));
            }
            if l.authorization() == Authorization::Policies && l.auth != AuthMode::Mtls {
                return Err(err(
                    "authorization = \"policies\" needs auth = \"mtls\": policies attach to certificates",
                ));
            }
            if l.auth == AuthMode::Password && !l.tls && !l.bind.ip().is_loopback() {
                return Err(err(
                    "password listeners need tls = true unless bound to a loopback address: passwords would cross the network in clear",
                ));
            }
            if l.transport == Transport::Wss && !l.tls {
                return Err(err(
                    "transport = \"wss\" needs tls = true (plaintext WebSocket is transport = \"ws\")",
                ));
            }
            if l.transport == Transport::Ws && l.tls {
                return Err(err(
                    "transport = \"ws\" is plaintext WebSocket; with tls = true use transport = \"wss\"",
                ));
            }
            if l.tls && !tls_available {
                return Err(err("TLS is on but no certificates are configured"));
            }
        }
        Ok(())
    }

    /// Bind every configured listener.
    pub async fn bind(
        config: &BrokerConfig,
    ) -> Result<Vec<(ListenerConfig, TcpListener)>, BrokerError> {
        let mut out = Vec::new();
        for l in &config.listeners {
            let listener = TcpListener::bind(l.bind)
                .await
                .map_err(|source| BrokerError::Bind {
                    name: l.name.clone(),
                    addr: l.bind,
                    source,
                })?;
            out.push((l.clone(), listener));
        }
        Ok(out)
    }

    /// Counters for logs, tests and benchmarks.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// Serve until the shutdown token is cancelled, then disconnect every
    /// client (reason 0x8B for MQTT 5), settle wills and flush the store.
    pub async fn run(
        self,
        listeners: Vec<(ListenerConfig, TcpListener)>,
    ) -> Result<(), BrokerError> {
        Broker::validate_listeners(&self.config, self.tls.is_some())?;
        if self.passwords.is_none()
            && let Some(l) = self
                .config
                .listeners
                .iter()
                .find(|l| l.auth == AuthMode::Password)
        {
            return Err(BrokerError::Listener {
                name: l.name.clone(),
                reason: "auth = \"password\" but the broker was given no credentials".into(),
            });
        }
        if self.shared.authority.is_none()
            && let Some(l) = self
                .config
                .listeners
                .iter()
                .find(|l| l.authorization() == Authorization::Policies)
        {
            return Err(BrokerError::Listener {
                name: l.name.clone(),
                reason: "authorization by policies but the broker was given no registry".into(),
            });
        }
        let password_check = self
            .passwords
            .clone()
            .map(|c| Arc::new(password::PasswordCheck::new(c)));
        let shared = self.shared.clone();
        self.handle.attach(shared.clone());
        let ops = lifecycle::restore_sessions(&shared, self.restored);
        if !ops.is_empty() {
            shared.store.commit(ops).await?;
        }
        if let Some(authority) = shared.authority.clone() {
            let mutual = self.tls.as_ref().map(|t| t.mutual.clone());
            tokio::spawn(watch_authority(authority, mutual, shared.clone()));
        }
        let connections = TaskTracker::new();
        let mut accept_tasks = Vec::new();
        for (config, listener) in listeners {
            if config.auth == AuthMode::Anonymous {
                tracing::warn!(listener = %config.name, addr = ?listener.local_addr().ok(), "anonymous listener enabled: any local process can connect without credentials");
            }
            if !config.tls {
                tracing::warn!(listener = %config.name, addr = ?listener.local_addr().ok(), "plaintext listener enabled");
            }
            let tls = match (&self.tls, config.tls, config.auth) {
                (_, false, _) => None,
                (Some(t), true, AuthMode::Mtls) => Some(t.mutual.clone()),
                (Some(t), true, AuthMode::Anonymous | AuthMode::Password) => {
                    Some(t.server_only.clone().unwrap_or_else(|| t.mutual.clone()))
                }
                (None, true, _) => None,
            };
            let passwords = match config.auth {
                AuthMode::Password => password_check.clone(),
                AuthMode::Mtls | AuthMode::Anonymous => None,
            };
            tracing::info!(listener = %config.name, addr = ?listener.local_addr().ok(), auth = ?config.auth, transport = ?config.transport, tls = config.tls, "listening");
            let endpoint = listener::Endpoint {
                config: Arc::new(config),
                tls,
                passwords,
            };
            accept_tasks.push(tokio::spawn(listener::accept_loop(
                listener,
                Arc::new(endpoint),
                shared.clone(),
                connections.clone(),
            )));
        }
        shared.shutdown.cancelled().await;
        for t in accept_tasks {
            let _ = t.await;
        }
        connections.close();
        connections.wait().await;
        shared.tasks.close();
        shared.tasks.wait().await;
        shared.store.close()?;
        tracing::info!("broker stopped");
        Ok(())
    }
}

/// How often the authority's generation is compared: a revoked or
/// deactivated certificate's connections end within this time.
const AUTHORITY_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// When the registry changes, reload the TLS configuration (a revocation
/// rewrote the CRL: new handshakes must see it at once) and make every
/// connection resolve its policies again.
async fn watch_authority(
    authority: Arc<dyn Authority>,
    mutual: Option<Arc<ReloadingServerConfig>>,
    shared: Arc<shared::Shared>,
) {
    let mut seen = authority.generation();
    let mut tick = tokio::time::interval(AUTHORITY_POLL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.shutdown.cancelled() => return,
        }
        let now = authority.generation();
        if now == seen {
            continue;
        }
        seen = now;
        if let Some(tls) = &mutual
            && let Err(e) = tls.reload()
        {
            tracing::warn!(error = %e, "TLS reload after a registry change failed");
        }
        shared.authz_changed.send_replace(now);
    }
}
