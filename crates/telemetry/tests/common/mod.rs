//! Fixtures shared by the telemetry tests: a store on the target's disk, a
//! key ring persisted beside it, and reopening both as a restart would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use civitas_kms::{KeyRing, RootKey};
use civitas_store::{Store, StoreOptions};
use civitas_telemetry::{
    LocalKeys, NewReading, Query, Reading, TelemetryOptions, TelemetryStore, Unreadable,
};
use tempfile::TempDir;
use zeroize::Zeroizing;

/// 2023-11-14T22:13:20Z, on an hour boundary.
pub const T0: u64 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000;
pub const HOUR: u64 = 3_600_000;

/// A directory on the target's disk (not a tmpfs), so fsync is real.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("telemetry-test")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

pub fn root() -> RootKey {
    RootKey::from_bytes(Zeroizing::new([7; 32]))
}

pub fn ring_path(dir: &Path) -> PathBuf {
    dir.join("keyring.sealed")
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("state.redb")
}

/// An open telemetry store with everything needed to close and reopen it.
pub struct Fixture {
    pub store: Store,
    pub ring: Arc<RwLock<KeyRing>>,
    pub telemetry: TelemetryStore,
}

impl Fixture {
    /// Opens (or reopens) the store and ring in `dir`.
    pub async fn open(dir: &Path, options: TelemetryOptions) -> Fixture {
        Fixture::try_open(dir, options)
            .await
            .expect("open telemetry")
    }

    pub async fn try_open(
        dir: &Path,
        options: TelemetryOptions,
    ) -> Result<Fixture, civitas_telemetry::TelemetryError> {
        let ring_file = ring_path(dir);
        let ring = if ring_file.exists() {
            KeyRing::load(&ring_file, root()).expect("load ring")
        } else {
            KeyRing::new(root())
        };
        let ring = Arc::new(RwLock::new(ring));
        let keys = Arc::new(LocalKeys::new(Arc::clone(&ring), Some(ring_file)));
        let store = Store::open(&db_path(dir), StoreOptions::default()).expect("open store");
        let telemetry = TelemetryStore::open(store.clone(), keys, options).await?;
        Ok(Fixture {
            store,
            ring,
            telemetry,
        })
    }

    /// Closes the store as a clean shutdown would (without flushing the
    /// telemetry: open blocks stay unsealed, as after a crash).
    pub fn close(self) {
        drop(self.telemetry);
        self.store.close().expect("close store");
    }

    pub async fn all(&self, thing: &str) -> (Vec<Reading>, Vec<Unreadable>) {
        let r = self
            .telemetry
            .query(Query::thing(thing))
            .await
            .expect("query");
        (r.readings, r.unreadable)
    }
}

pub fn hourly() -> TelemetryOptions {
    TelemetryOptions {
        period: Duration::from_secs(3600),
        seal_grace: Duration::ZERO,
        ..TelemetryOptions::default()
    }
}

/// `n` readings of `metric`, one a second from `from`, value = index.
pub fn series(thing: &str, metric: &str, from: u64, n: u64) -> Vec<NewReading> {
    (0..n)
        .map(|i| NewReading::new(thing, metric, from + i * 1000, i as f64))
        .collect()
}

pub fn values(readings: &[Reading]) -> Vec<f64> {
    readings.iter().map(|r| r.value).collect()
}

pub fn times(readings: &[Reading]) -> Vec<u64> {
    readings.iter().map(|r| r.timestamp_ms).collect()
}
