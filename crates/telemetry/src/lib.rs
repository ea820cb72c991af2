//! Encrypted telemetry storage for civitas, in the role AWS IoT puts
//! readings into S3 or DynamoDB under KMS keys.
//!
//! Readings ([`NewReading`]) are grouped into blocks per device and period
//! (one hour by default). Each block is sealed with AES-256-GCM under its
//! own data key from the KMS, wrapped under the device's master key
//! `device/{thing}` (created on first use) and bound to the device and
//! period by the encryption context; every chunk of readings and the
//! block's footer are bound to their exact place by associated data. So:
//!
//! - **durable before acknowledged**: [`TelemetryStore::append`] resolves
//!   once its sealed chunks are fsynced through the store's group commit;
//!   a crash loses nothing acknowledged, and the next open seals what was
//!   left unsealed;
//! - **tamper-evident**: a block altered, truncated or moved fails
//!   authentication and is reported with its location
//!   ([`Unreadable::Corrupt`]), never returned as data;
//! - **crypto-shredding**: [`TelemetryStore::shred`] destroys one device's
//!   key; its data reads as [`Unreadable::Shredded`], everyone else's is
//!   untouched;
//! - **queries** by device, metric and time range, newest first with a
//!   limit ([`TelemetryStore::query`]), per-bucket statistics
//!   ([`TelemetryStore::aggregate`]) and shape-keeping downsampling for
//!   charts ([`TelemetryStore::chart`]);
//! - **retention** per thing type drops whole blocks by range
//!   ([`TelemetryStore::retention`]).
//!
//! Device signatures ([`signature`]) are detached JWS (ES256, unencoded
//! payload) over the raw message; only a reading appended with a
//! [`VerifiedSignature`] is stored as verified.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::{Arc, RwLock};
//! use civitas_kms::{KeyRing, RootKey};
//! use civitas_store::{Store, StoreOptions};
//! use civitas_telemetry::{LocalKeys, NewReading, Query, TelemetryOptions, TelemetryStore};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(&dir.path().join("state.redb"), StoreOptions::default())?;
//! let ring = KeyRing::new(RootKey::from_bytes(zeroize::Zeroizing::new([7; 32])));
//! let keys = Arc::new(LocalKeys::new(Arc::new(RwLock::new(ring)), None));
//! let telemetry = TelemetryStore::open(store, keys, TelemetryOptions::default()).await?;
//!
//! telemetry
//!     .append(vec![NewReading::new("lamp-1", "temperature", 1_700_000_000_000, 21.5)])
//!     .await?;
//! let latest = telemetry.query(Query::thing("lamp-1").newest_first().limit(10)).await?;
//! assert_eq!(latest.readings[0].value, 21.5);
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().expect("runtime").block_on(demo()).expect("demo");
//! ```
//!
//! Layout: `store` holds the handle, options and recovery at open,
//! `append` writing and sealing, `read` queries, `retention` retention and
//! shredding, `block` the cryptography of one block, `format` its bytes,
//! `query` query types and their arithmetic, `keys` the per-device keys,
//! `reading` the data model. Formats are in `docs/telemetry-storage.md`
//! and `docs/telemetry-signatures.md`.

mod append;
mod block;
mod error;
mod format;
mod keys;
mod query;
mod read;
mod reading;
mod retention;
pub mod signature;
mod store;

pub use error::{BlockLocation, TelemetryError, Unreadable};
pub use keys::{LocalKeys, TelemetryKeys, device_key_id};
pub use query::{
    AggregateQuery, Aggregation, Bucket, Bucketing, Chart, MAX_BUCKETS, Order, Query, QueryResult,
    downsample,
};
pub use reading::{MAX_METRIC_LEN, MAX_RAW_LEN, NewReading, Reading};
pub use retention::{RetentionPolicy, RetentionReport};
pub use signature::{SignatureError, VerifiedSignature};
pub use store::{TelemetryOptions, TelemetryStore};

/// The system clock as unix ms (for `seal_due` and retention runs).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

// The rules engine shares one handle across its tasks.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<TelemetryStore>();
    send_sync::<TelemetryError>();
};
