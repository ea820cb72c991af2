//! Broker-wide context handed to every connection task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use civitas_store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::router::Router;

#[derive(Debug)]
pub struct Shared {
    pub router: Arc<Router>,
    pub store: Store,
    /// Serializes the attach phase of CONNECT so that two connections
    /// with one client id cannot both take the session.
    pub connect_lock: tokio::sync::Mutex<()>,
    next_connection_id: AtomicU64,
    /// Presence events' version numbers: increasing for every connection.
    pub presence_version: AtomicU64,
    /// Cancelled when the broker shuts down.
    pub shutdown: CancellationToken,
    /// Will and session-expiry timers, so that shutdown can wait for them.
    pub tasks: TaskTracker,
    pub stats: Arc<Stats>,
    /// Handlers for reserved topics (shadows, provisioning).
    pub services: Vec<Arc<dyn crate::services::TopicService>>,
    /// Where policies come from, for listeners authorized by policies.
    pub authority: Option<Arc<dyn crate::authority::Authority>>,
    /// The authority's generation as last seen; connections resolve their
    /// policies again when it changes.
    pub authz_changed: tokio::sync::watch::Sender<u64>,
    /// Where security events go (the audit log).
    pub security_log: Option<Arc<dyn crate::security::SecurityLog>>,
}

impl Shared {
    pub fn new(router: Arc<Router>, store: Store, shutdown: CancellationToken) -> Self {
        Shared {
            router,
            store,
            connect_lock: tokio::sync::Mutex::new(()),
            next_connection_id: AtomicU64::new(1),
            presence_version: AtomicU64::new(0),
            shutdown,
            tasks: TaskTracker::new(),
            stats: Arc::new(Stats::default()),
            services: Vec::new(),
            authority: None,
            authz_changed: tokio::sync::watch::Sender::new(0),
            security_log: None,
        }
    }

    pub fn connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Counters kept by the broker; read by logs, tests and the bench.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections_accepted: AtomicU64,
    pub connections_active: AtomicU64,
    pub tls_failures: AtomicU64,
    pub auth_failures: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub publish_denied: AtomicU64,
    pub subscribe_denied: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub dropped_oversize: AtomicU64,
}

impl Stats {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
