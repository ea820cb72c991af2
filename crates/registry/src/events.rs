//! Security events: every registry change (and every refused attempt)
//! produces one [`SecurityEvent`] for the [`EventSink`] the registry was
//! built with. One event type for everything, so that an audit log can
//! chain them without knowing each operation.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// Who asked for a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor(String);

impl Actor {
    pub fn new(name: impl Into<String>) -> Actor {
        Actor(name.into())
    }

    /// An operator identified by the uid of the process that asked, and
    /// the way the request arrived (`admin-socket`, `local`).
    pub fn operator(uid: u32, via: &str) -> Actor {
        Actor(format!("uid:{uid} via {via}"))
    }

    /// A device acting for itself (enrollment, fleet provisioning).
    pub fn device(client_id: &str) -> Actor {
        Actor(format!("device:{client_id}"))
    }

    /// civitas itself (scheduled maintenance).
    pub fn system() -> Actor {
        Actor("civitas".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the change happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure { reason: String },
}

/// One security-relevant change or refused attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// Unix ms, from the registry's clock.
    pub at_ms: u64,
    pub actor: String,
    /// The operation, AWS-style: `CreateThing`, `RevokeCertificate`, ...
    pub action: String,
    /// What it acted on: `thing:NAME`, `cert:SERIAL`, `policy:NAME`, ...
    pub target: String,
    pub outcome: Outcome,
    /// Operation-specific facts (new serial, version, what was detached).
    /// Never secrets: tokens and keys are not recorded.
    pub details: BTreeMap<String, String>,
}

/// Receives every event; must not block for long (it is called while the
/// registry's write lock is held).
pub trait EventSink: Send + Sync {
    fn record(&self, event: SecurityEvent);
}

/// Logs events with `tracing` under the `civitas::security` target.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn record(&self, event: SecurityEvent) {
        let details = serde_json::to_string(&event.details).unwrap_or_default();
        match &event.outcome {
            Outcome::Success => tracing::info!(
                target: "civitas::security",
                actor = %event.actor,
                action = %event.action,
                target_ = %event.target,
                %details,
                "registry change"
            ),
            Outcome::Failure { reason } => tracing::warn!(
                target: "civitas::security",
                actor = %event.actor,
                action = %event.action,
                target_ = %event.target,
                %reason,
                %details,
                "registry change refused"
            ),
        }
    }
}

/// Keeps events in memory, for tests and for callers that forward them.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<SecurityEvent>>,
}

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// Every event so far, oldest first, leaving the sink empty.
    pub fn take(&self) -> Vec<SecurityEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl EventSink for MemorySink {
    fn record(&self, event: SecurityEvent) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}
