//! A server configuration that follows its files.
//!
//! The listener asks for [`ReloadingServerConfig::current`] on every accepted
//! connection: new connections get the newest certificate, key, client CA
//! and CRL, while established ones keep the configuration they started
//! with. A file that fails to parse never replaces a working configuration.
//!
//! Session resumption is on: TLS 1.3 tickets, sealed with keys that
//! rotate every few hours and that outlive CRL reloads (a new server
//! certificate or client CA bundle starts a new ticket key, so no ticket
//! crosses a change of identity or trust). A resumed handshake skips certificate verification, so the
//! listener hands the resumed client's chain to
//! [`ReloadingServerConfig::verify_resumed`], which checks it against the
//! current CRL and its validity: a device revoked after its last full
//! handshake cannot come back on an old ticket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::ProducesTickets;
use rustls_pki_types::CertificateDer;
use tokio_util::sync::CancellationToken;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::PkiError;
use crate::revocation::Revocations;
use crate::server_tls::{self, Material, TlsFiles};

/// A rustls server configuration rebuilt when its files change.
pub struct ReloadingServerConfig {
    files: TlsFiles,
    alpn: Vec<Vec<u8>>,
    current: ArcSwap<Active>,
    state: Mutex<ReloadState>,
}

/// The configuration in use, and what resumed sessions are checked
/// against.
struct Active {
    config: Arc<ServerConfig>,
    client_auth: bool,
    revocations: Option<Arc<Revocations>>,
}

/// Tickets are one per handshake: a device reconnects with one, and every
/// resumption is handed a fresh one.
const TICKETS_PER_HANDSHAKE: usize = 1;

struct ReloadState {
    /// What the current configuration was built from.
    loaded: Material,
    /// Seals session tickets; replaced when the client CA bundle changes.
    ticketer: Arc<dyn ProducesTickets>,
    /// The last reload failure, so a file that stays broken is logged once
    /// rather than on every poll.
    last_error: Option<String>,
}

impl std::fmt::Debug for ReloadingServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingServerConfig")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadingServerConfig {
    /// Loads the files once; fails like [`server_tls::server_config`].
    pub fn new(files: TlsFiles, alpn: &[Vec<u8>]) -> Result<Self, PkiError> {
        let loaded = Material::read(&files)?;
        let ticketer = new_ticketer()?;
        let active = activate(server_tls::build(&files, &loaded, alpn)?, &ticketer);
        Ok(ReloadingServerConfig {
            files,
            alpn: alpn.to_vec(),
            current: ArcSwap::from_pointee(active),
            state: Mutex::new(ReloadState {
                loaded,
                ticketer,
                last_error: None,
            }),
        })
    }

    /// The configuration for a connection being accepted now.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load().config.clone()
    }

    /// Checks the client of a resumed TLS session (its chain, end-entity
    /// certificate first) against the current CRL and the certificate's
    /// validity. Resumption skips certificate verification; call this for
    /// every resumed handshake before trusting the identity. The chain
    /// itself was verified at the session's full handshake, under the
    /// same CA bundle: a new bundle starts a new ticket key.
    pub fn verify_resumed(&self, chain: &[CertificateDer<'_>]) -> Result<(), PkiError> {
        let active = self.current.load();
        if !active.client_auth {
            return Ok(());
        }
        let end_entity = chain.first().ok_or_else(|| {
            PkiError::ResumedClientRefused("the session carries no client certificate".into())
        })?;
        let (_, cert) = X509Certificate::from_der(end_entity.as_ref())
            .map_err(|e| PkiError::ResumedClientRefused(format!("unreadable certificate: {e}")))?;
        if !cert.validity().is_valid() {
            return Err(PkiError::ResumedClientRefused(format!(
                "the certificate is outside its validity ({} to {})",
                cert.validity().not_before,
                cert.validity().not_after
            )));
        }
        if let Some(revocations) = &active.revocations {
            revocations
                .check_parsed(&cert)
                .map_err(|e| PkiError::ResumedClientRefused(format!("{e:?}")))?;
        }
        Ok(())
    }

    /// For a connection that has completed its handshake: a resumed one is
    /// checked with [`verify_resumed`](Self::verify_resumed); a full one
    /// was verified in the handshake.
    pub fn check_resumption(&self, conn: &rustls::ServerConnection) -> Result<(), PkiError> {
        if conn.handshake_kind() != Some(rustls::HandshakeKind::Resumed) {
            return Ok(());
        }
        self.verify_resumed(conn.peer_certificates().unwrap_or(&[]))
    }

    /// The files this configuration is built from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Re-reads the files; if their content changed and parses, swaps the
    /// configuration in and returns `Ok(true)`. Unchanged content returns
    /// `Ok(false)`. On failure the previous configuration stays in use, a
    /// warning is logged and the error returned.
    pub fn reload(&self) -> Result<bool, PkiError> {
        // Serializes concurrent reloads; a panic elsewhere while holding the
        // lock leaves the state consistent, so poisoning is ignored.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let attempt = Material::read(&self.files).and_then(|material| {
            if material == state.loaded {
                return Ok(None);
            }
            let built = server_tls::build(&self.files, &material, &self.alpn)?;
            // A new server certificate or trust bundle starts a new ticket
            // key: tickets issued before cannot resume. A new CRL keeps
            // it (resumed chains are verified against the CRL anyway).
            let ticketer = if material.same_identity_and_trust(&state.loaded) {
                None
            } else {
                Some(new_ticketer()?)
            };
            Ok(Some((material, built, ticketer)))
        });
        match attempt {
            Ok(None) => {
                state.last_error = None;
                Ok(false)
            }
            Ok(Some((material, built, ticketer))) => {
                if let Some(ticketer) = ticketer {
                    state.ticketer = ticketer;
                }
                self.current
                    .store(Arc::new(activate(built, &state.ticketer)));
                state.loaded = material;
                state.last_error = None;
                tracing::info!(files = %self.files.describe(), "TLS configuration reloaded");
                Ok(true)
            }
            Err(e) => {
                let message = e.to_string();
                if state.last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(error = %message, "TLS files not reloaded; keeping the previous configuration");
                    state.last_error = Some(message);
                }
                Err(e)
            }
        }
    }

    /// Calls [`reload`](Self::reload) every `interval` until `shutdown` is
    /// cancelled. Failures are logged by `reload` and retried on the next
    /// tick.
    pub async fn watch(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick fires at once; the configuration was just loaded.
        ticker.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    // The files are a few kilobytes: reading them inline is
                    // cheaper than a trip to the blocking pool.
                    let _ = self.reload();
                }
            }
        }
    }
}

fn new_ticketer() -> Result<Arc<dyn ProducesTickets>, PkiError> {
    rustls::crypto::aws_lc_rs::Ticketer::new()
        .map_err(|e| PkiError::Crypto(format!("session ticket key: {e}")))
}

fn activate(built: server_tls::Built, ticketer: &Arc<dyn ProducesTickets>) -> Active {
    let mut config = built.config;
    config.ticketer = ticketer.clone();
    config.send_tls13_tickets = TICKETS_PER_HANDSHAKE;
    Active {
        config: Arc::new(config),
        client_auth: built.client_auth,
        revocations: built.revocations,
    }
}
