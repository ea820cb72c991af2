//! The sealed telemetry store in civitas: opened over the data directory's
//! store and shared key ring, and administered on the admin socket as the
//! `telemetry` service (crypto-shredding a device's readings).

use std::sync::Arc;

use anyhow::Context;
use civitas_registry::{Actor, AdminService, Problem};
use civitas_store::Store;
use civitas_telemetry::{LocalKeys, TelemetryOptions, TelemetryStore};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use crate::security_wiring::SharedRing;

/// The service's name on the admin socket.
pub const ADMIN_SERVICE: &str = "telemetry";

/// A request to the `telemetry` service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TelemetryRequest {
    /// Destroy the key `device/{thing}`: the device's stored readings
    /// become unreadable for good, and no new ones are accepted.
    Shred { thing: String },
}

/// The outcome of a shred.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shredded {
    pub thing: String,
    /// False when there was no key to destroy: the device never had
    /// telemetry stored, or it was shredded before. Either way nothing of
    /// it is readable.
    pub key_destroyed: bool,
}

/// The telemetry store over `store`, its device keys in `ring` (saved to
/// the ring's file as they change).
pub async fn open(store: Store, ring: &SharedRing) -> anyhow::Result<TelemetryStore> {
    TelemetryStore::open(
        store,
        Arc::new(LocalKeys::new(ring.ring.clone(), Some(ring.file.clone()))),
        TelemetryOptions::default(),
    )
    .await
    .context("telemetry store")
}

/// Crypto-shreds `thing`'s telemetry.
pub async fn shred(telemetry: &TelemetryStore, thing: &str) -> anyhow::Result<Shredded> {
    let key_destroyed = telemetry
        .shred(thing)
        .await
        .with_context(|| format!("shredding the telemetry of {thing}"))?;
    Ok(Shredded {
        thing: thing.to_owned(),
        key_destroyed,
    })
}

/// The telemetry store's administration on the admin socket.
pub struct TelemetryAdmin {
    telemetry: TelemetryStore,
    runtime: Handle,
}

impl TelemetryAdmin {
    /// Runs requests on the runtime `new` is called on (the server's).
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn new(telemetry: TelemetryStore) -> TelemetryAdmin {
        TelemetryAdmin {
            telemetry,
            runtime: Handle::current(),
        }
    }
}

impl AdminService for TelemetryAdmin {
    fn execute(
        &self,
        _actor: &Actor,
        request: serde_json::Value,
    ) -> Result<serde_json::Value, Problem> {
        let request: TelemetryRequest = serde_json::from_value(request)
            .map_err(|e| Problem::new("bad_request", e.to_string()))?;
        match request {
            TelemetryRequest::Shred { thing } => {
                // The admin server calls services from `spawn_blocking`: a
                // blocking-pool thread, not a runtime worker, so blocking
                // it on the server's runtime is allowed and starves no
                // other task (`block_on` would panic on a worker thread).
                let shredded = self
                    .runtime
                    .block_on(shred(&self.telemetry, &thing))
                    .map_err(|e| Problem::new("internal", format!("{e:#}")))?;
                serde_json::to_value(shredded).map_err(|e| Problem::new("internal", e.to_string()))
            }
        }
    }
}
