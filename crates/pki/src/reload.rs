//! A server configuration that follows its files.
//!
//! The listener asks for [`ReloadingServerConfig::current`] on every accepted
//! connection: new connections get the newest certificate, key, client CA
//! and CRL, while established ones keep the configuration they started
//! with. A file that fails to parse never replaces a working configuration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

use crate::error::PkiError;
use crate::server_tls::{self, Material, TlsFiles};

/// A rustls server configuration rebuilt when its files change.
pub struct ReloadingServerConfig {
    files: TlsFiles,
    alpn: Vec<Vec<u8>>,
    current: ArcSwap<ServerConfig>,
    state: Mutex<ReloadState>,
}

struct ReloadState {
    /// What the current configuration was built from.
    loaded: Material,
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
        let config = server_tls::build(&files, &loaded, alpn)?;
        Ok(ReloadingServerConfig {
            files,
            alpn: alpn.to_vec(),
            current: ArcSwap::from_pointee(config),
            state: Mutex::new(ReloadState {
                loaded,
                last_error: None,
            }),
        })
    }

    /// The configuration for a connection being accepted now.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
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
            let config = server_tls::build(&self.files, &material, &self.alpn)?;
            Ok(Some((material, config)))
        });
        match attempt {
            Ok(None) => {
                state.last_error = None;
                Ok(false)
            }
            Ok(Some((material, config))) => {
                self.current.store(Arc::new(config));
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
