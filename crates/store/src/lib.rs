//! Durable broker state for civitas.
//!
//! Persistent sessions (subscriptions, queued and in-flight messages,
//! incoming QoS 2 ids), retained messages and device shadows live in a
//! redb file. Every write goes through a group commit: one thread folds the
//! ops of many callers into one transaction and one fsync, and a caller's
//! `commit` returns only once its ops are on disk, so the broker can
//! acknowledge a PUBLISH as soon as it does. Device shadows are read one at
//! a time (`load_shadow`) and written with the same ops.
//!
//! ```
//! # async fn demo() -> Result<(), civitas_store::StoreError> {
//! use civitas_store::{Op, SessionRecord, Store, StoreOptions};
//!
//! let dir = tempfile::tempdir().expect("temp dir");
//! let store = Store::open(&dir.path().join("state.redb"), StoreOptions::default())?;
//! // At start: restore sessions and retained messages.
//! let state = store.load_broker_state()?;
//! assert!(state.sessions.is_empty());
//! // Per packet: wait for durability before acknowledging.
//! store
//!     .commit(vec![Op::PutSession(SessionRecord {
//!         client_id: "sensor-1".into(),
//!         protocol_level: 5,
//!         session_expiry_interval: 3600,
//!         disconnected_at_ms: None,
//!         subscriptions: Vec::new(),
//!         will: None,
//!     })])
//!     .await?;
//! // Bookkeeping nobody waits for (e.g. a PUBACK received) can be submitted.
//! store.submit(vec![Op::DeleteOutbound { client_id: "sensor-1".into(), seq: 0 }]);
//! store.close()?;
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().expect("runtime").block_on(demo()).expect("demo");
//! ```
//!
//! `load_broker_state` and `close` do blocking file I/O; call them at start
//! and shutdown, or from `spawn_blocking`.
//!
//! The device registry (things, groups, certificates, policies, tokens) lives
//! in the same file but is written differently: each change is one
//! synchronous, durable transaction (`Store::registry_write`) that reads,
//! checks and writes atomically; reads use `Store::registry_read`.
//!
//! Telemetry blocks (sealed and framed by civitas-telemetry, opaque here)
//! are written through the group commit too and read with
//! `Store::telemetry_read`; see `telemetry` for their life cycle.
//!
//! Rules engine rules (name and document, the document opaque JSON here)
//! are written with `Op::PutRule`/`Op::DeleteRule` and read with
//! `Store::load_rules`.
//!
//! Layout: `records` holds the public data types (`registry` those of the
//! device registry and its `Store` methods), `codec` their versioned
//! binary encoding, `tables` one module per table family plus the schema
//! version in `meta`, `commit` the commit thread, `store` the handle.

mod codec;
mod commit;
mod error;
mod records;
mod registry;
mod store;
mod tables;
mod telemetry;

pub use codec::DecodeError;
pub use commit::{StoreOptions, StoreStats};
pub use error::StoreError;
pub use records::{
    BrokerState, Op, OutboundMessage, OutboundState, PersistedSession, RuleRecord, SessionRecord,
    ShadowRecord, StoredMessage, StoredSubscription, StoredWill,
};
pub use registry::{
    CertificateRecord, CertificateStatus, EnrollmentTokenRecord, OwnershipTokenRecord,
    PolicyRecord, PolicyTarget, PolicyVersionRecord, ProvisioningTemplateRecord, ThingGroupRecord,
    ThingRecord, ThingTypeRecord,
};
pub use store::Store;
pub use tables::meta::SCHEMA_VERSION;
pub use tables::registry::{RegistryRead, RegistryView, RegistryWrite};
pub use telemetry::{BlockOrder, TelemetryBlock, TelemetryBlockKey, TelemetryChunk, TelemetryRead};

// The broker shares one handle across its tasks.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
    send_sync::<StoreError>();
};
