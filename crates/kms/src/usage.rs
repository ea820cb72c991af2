//! Per key-version operation counters.
//!
//! Counters are atomics so the cryptographic operations can run on a shared
//! `&KeyRing`. They count since the ring was created or loaded and are not
//! persisted: they are an operational metric, not a record of which sealed
//! data exists (for that, see [`crate::VersionCensus`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::key_id::KeyId;

/// One kind of counted operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Encrypt,
    Decrypt,
    GenerateDataKey,
    DecryptDataKey,
    RewrapDataKey,
    AuthenticationFailure,
}

#[derive(Debug, Default)]
pub(crate) struct UsageCounters {
    encrypt: AtomicU64,
    decrypt: AtomicU64,
    generate_data_key: AtomicU64,
    decrypt_data_key: AtomicU64,
    rewrap_data_key: AtomicU64,
    authentication_failures: AtomicU64,
}

impl UsageCounters {
    pub(crate) fn record(&self, op: Op) {
        let counter = match op {
            Op::Encrypt => &self.encrypt,
            Op::Decrypt => &self.decrypt,
            Op::GenerateDataKey => &self.generate_data_key,
            Op::DecryptDataKey => &self.decrypt_data_key,
            Op::RewrapDataKey => &self.rewrap_data_key,
            Op::AuthenticationFailure => &self.authentication_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> OpCounts {
        OpCounts {
            encrypt: self.encrypt.load(Ordering::Relaxed),
            decrypt: self.decrypt.load(Ordering::Relaxed),
            generate_data_key: self.generate_data_key.load(Ordering::Relaxed),
            decrypt_data_key: self.decrypt_data_key.load(Ordering::Relaxed),
            rewrap_data_key: self.rewrap_data_key.load(Ordering::Relaxed),
            authentication_failures: self.authentication_failures.load(Ordering::Relaxed),
        }
    }
}

/// Operation counts of one key version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Blobs sealed under this version (`encrypt`, and the sealing half of
    /// `re_encrypt`).
    pub encrypt: u64,
    /// Blobs opened (`decrypt`, and the opening half of `re_encrypt`).
    pub decrypt: u64,
    /// Data keys generated and wrapped.
    pub generate_data_key: u64,
    /// Wrapped data keys unwrapped (`decrypt_data_key`, and the unwrapping
    /// half of `rewrap_data_key`).
    pub decrypt_data_key: u64,
    /// Data keys re-wrapped onto this version by `rewrap_data_key`.
    pub rewrap_data_key: u64,
    /// Blobs or wrapped keys naming this version that failed to
    /// authenticate.
    pub authentication_failures: u64,
}

impl OpCounts {
    fn add(&mut self, o: &OpCounts) {
        self.encrypt += o.encrypt;
        self.decrypt += o.decrypt;
        self.generate_data_key += o.generate_data_key;
        self.decrypt_data_key += o.decrypt_data_key;
        self.rewrap_data_key += o.rewrap_data_key;
        self.authentication_failures += o.authentication_failures;
    }
}

/// Counts for every version of every key in the ring (destroyed keys and
/// retired versions included), from [`crate::KeyRing::usage`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageSnapshot {
    /// Keyed by key id and version number.
    pub versions: BTreeMap<(KeyId, u32), OpCounts>,
}

impl UsageSnapshot {
    /// Counts of one version (all zero if unknown).
    pub fn get(&self, key_id: &KeyId, version: u32) -> OpCounts {
        self.versions
            .get(&(key_id.clone(), version))
            .copied()
            .unwrap_or_default()
    }

    /// Counts of all versions of one key, added up.
    pub fn key_total(&self, key_id: &KeyId) -> OpCounts {
        let mut total = OpCounts::default();
        for ((id, _), counts) in &self.versions {
            if id == key_id {
                total.add(counts);
            }
        }
        total
    }
}
