//! Durable broker state for civitas.
//!
//! Persistent sessions (subscriptions, queued and in-flight messages,
//! incoming QoS 2 ids) and retained messages live in a redb file. Every
//! write goes through a group commit: one thread folds the ops of many
//! callers into one transaction and one fsync, and a caller's `commit`
//! returns only once its ops are on disk, so the broker can acknowledge a
//! PUBLISH as soon as it does.
//!
//! Layout: `records` holds the public data types, `codec` their versioned
//! binary encoding, `tables` one module per table family plus the schema
//! version in `meta`, `commit` the commit thread, `store` the handle.

mod codec;
mod commit;
mod error;
mod records;
mod store;
mod tables;

pub use codec::DecodeError;
pub use commit::{StoreOptions, StoreStats};
pub use error::StoreError;
pub use records::{
    BrokerState, Op, OutboundMessage, OutboundState, PersistedSession, SessionRecord,
    StoredMessage, StoredSubscription, StoredWill,
};
pub use store::Store;
pub use tables::meta::SCHEMA_VERSION;
