//! The per-device keys telemetry is sealed under.
//!
//! Every device's telemetry is sealed under its own master key
//! `device/{thing}`, created on first use, so destroying that key shreds
//! exactly that device's data. [`TelemetryKeys`] is what the store needs
//! from key management: the envelope operations of `KeyProvider` plus
//! creating and destroying keys. [`LocalKeys`] implements it over the local
//! ring and saves the ring file after every change *before* reporting
//! success, because a key that exists only in memory would make every
//! block sealed under it unreadable after a restart.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use civitas_kms::{DataKey, EncryptionContext, KeyId, KeyRing, KeyState, KmsError};

use crate::error::TelemetryError;

/// Key management as the telemetry store uses it. Calls may block on file
/// I/O (the store runs them off the async threads).
pub trait TelemetryKeys: Send + Sync {
    /// Makes sure `key_id` exists and is durably recorded; fails with
    /// `KeyDestroyed` for a destroyed key.
    fn ensure_key(&self, key_id: &KeyId) -> Result<(), KmsError>;

    /// [`TelemetryKeys::ensure_key`] for several keys at once (a burst of
    /// new devices), stopping at the first refusal. The default asks one
    /// by one; a provider can make them durable together.
    fn ensure_keys(&self, key_ids: &[KeyId]) -> Result<(), KmsError> {
        key_ids.iter().try_for_each(|k| self.ensure_key(k))
    }

    /// A fresh data key wrapped under the current version of `key_id`.
    fn generate_data_key(
        &self,
        key_id: &KeyId,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError>;

    /// The plaintext of a wrapped data key; `ctx` must match exactly.
    fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError>;

    /// Crypto-shreds `key_id`, durably; `KeyDestroyed` if it already was.
    fn destroy_key(&self, key_id: &KeyId) -> Result<(), KmsError>;
}

/// [`TelemetryKeys`] over a shared local [`KeyRing`], saved to `ring_file`
/// after each key creation or destruction, before the caller hears of it
/// (pass `None` only for a ring that is not persisted, e.g. in tests).
///
/// A save writes the whole ring, so saves are shared: a burst of new
/// devices creates its keys in memory while one save runs, and the next
/// save makes them all durable at once, instead of one save (of a ring
/// ever larger) per device.
pub struct LocalKeys {
    ring: Arc<RwLock<KeyRing>>,
    ring_file: Option<PathBuf>,
    /// Changes made to the ring through these keys, counted under the
    /// ring's write lock.
    changes: AtomicU64,
    /// How many of those changes the file holds; written only under
    /// `saving`, read without waiting for a save in progress.
    saved: AtomicU64,
    /// One save at a time, so a caller whose change a save covered
    /// returns without saving again.
    saving: Mutex<()>,
}

impl std::fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeys")
            .field("ring_file", &self.ring_file)
            .finish_non_exhaustive()
    }
}

impl LocalKeys {
    /// Keys from `ring`, persisted to `ring_file`.
    pub fn new(ring: Arc<RwLock<KeyRing>>, ring_file: Option<PathBuf>) -> LocalKeys {
        LocalKeys {
            ring,
            ring_file,
            changes: AtomicU64::new(0),
            saved: AtomicU64::new(0),
            saving: Mutex::new(()),
        }
    }

    /// Counts a change; call with the ring's write lock held.
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// True when every change so far is in the file.
    fn all_saved(&self) -> bool {
        self.saved.load(Ordering::Acquire) >= self.changes.load(Ordering::Acquire)
    }

    /// Makes the changes up to `upto` durable, unless a save since has.
    fn persist(&self, upto: u64) -> Result<(), KmsError> {
        let _one_at_a_time = self.saving.lock().unwrap_or_else(PoisonError::into_inner);
        if self.saved.load(Ordering::Acquire) >= upto {
            return Ok(());
        }
        // The read lock lets data keys be made meanwhile, and keeps any
        // writer (a key creation, a rotation that saves the ring itself)
        // from changing the ring between this snapshot and the file.
        let ring = self.ring.read().unwrap_or_else(PoisonError::into_inner);
        let now = self.changes.load(Ordering::Acquire);
        if let Some(path) = &self.ring_file {
            ring.save(path)?;
        }
        self.saved.store(now, Ordering::Release);
        Ok(())
    }
}

impl TelemetryKeys for LocalKeys {
    fn ensure_key(&self, key_id: &KeyId) -> Result<(), KmsError> {
        self.ensure_keys(std::slice::from_ref(key_id))
    }

    /// Creates every missing key, then saves the ring once, or finds that
    /// a save since already holds them.
    fn ensure_keys(&self, key_ids: &[KeyId]) -> Result<(), KmsError> {
        {
            let ring = self.ring.read().unwrap_or_else(PoisonError::into_inner);
            let mut all_there = true;
            for key_id in key_ids {
                match ring.describe(key_id) {
                    Ok(info) if info.state == KeyState::Destroyed => {
                        return Err(KmsError::KeyDestroyed(key_id.clone()));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        all_there = false;
                        break;
                    }
                }
            }
            if all_there && self.all_saved() {
                return Ok(());
            }
        }
        let mut ring = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        let mut refused = Ok(());
        for key_id in key_ids {
            let step = match ring.describe(key_id) {
                Ok(info) if info.state == KeyState::Destroyed => {
                    Err(KmsError::KeyDestroyed(key_id.clone()))
                }
                Ok(_) => Ok(()),
                Err(KmsError::UnknownKey(_)) => ring
                    .create_key(key_id, SystemTime::now())
                    .map(|()| self.changed()),
                Err(e) => Err(e),
            };
            if let Err(e) = step {
                refused = Err(e);
                break;
            }
        }
        let upto = self.changes.load(Ordering::Acquire);
        drop(ring);
        // Keys created before a refusal are kept, so they are saved too;
        // this also retries a save that failed earlier.
        self.persist(upto)?;
        refused
    }

    fn generate_data_key(
        &self,
        key_id: &KeyId,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        let ring = self.ring.read().unwrap_or_else(PoisonError::into_inner);
        ring.generate_data_key(key_id, ctx)
    }

    fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        let ring = self.ring.read().unwrap_or_else(PoisonError::into_inner);
        ring.decrypt_data_key(wrapped, ctx)
    }

    fn destroy_key(&self, key_id: &KeyId) -> Result<(), KmsError> {
        let mut ring = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        let result = ring.destroy_key(key_id, SystemTime::now());
        if result.is_ok() {
            self.changed();
        }
        let upto = self.changes.load(Ordering::Acquire);
        drop(ring);
        match result {
            Ok(()) => self.persist(upto),
            // Destroyed before: make sure the file says so too.
            Err(e @ KmsError::KeyDestroyed(_)) => {
                self.persist(upto)?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

/// The key a device's telemetry is sealed under: `device/{thing}`.
pub fn device_key_id(thing: &str) -> Result<KeyId, TelemetryError> {
    KeyId::new(format!("device/{thing}")).map_err(|e| TelemetryError::InvalidReading {
        thing: thing.to_owned(),
        reason: match e {
            KmsError::InvalidKeyId { reason, .. } => {
                format!("the thing name cannot name a key: {reason}")
            }
            other => other.to_string(),
        },
    })
}
