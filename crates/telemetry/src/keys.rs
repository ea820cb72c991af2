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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
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
/// after each key creation or destruction (pass `None` only for a ring
/// that is not persisted, e.g. in tests).
pub struct LocalKeys {
    ring: Arc<RwLock<KeyRing>>,
    ring_file: Option<PathBuf>,
    /// Set while the ring in memory holds a change the file does not.
    unsaved: AtomicBool,
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
            unsaved: AtomicBool::new(false),
        }
    }

    fn save(&self, ring: &KeyRing) -> Result<(), KmsError> {
        if let Some(path) = &self.ring_file {
            self.unsaved.store(true, Ordering::Release);
            ring.save(path)?;
        }
        self.unsaved.store(false, Ordering::Release);
        Ok(())
    }
}

impl TelemetryKeys for LocalKeys {
    fn ensure_key(&self, key_id: &KeyId) -> Result<(), KmsError> {
        {
            let ring = self.ring.read().unwrap_or_else(PoisonError::into_inner);
            if let Ok(info) = ring.describe(key_id) {
                if info.state == KeyState::Destroyed {
                    return Err(KmsError::KeyDestroyed(key_id.clone()));
                }
                if !self.unsaved.load(Ordering::Acquire) {
                    return Ok(());
                }
            }
        }
        let mut ring = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        match ring.describe(key_id) {
            Ok(info) if info.state == KeyState::Destroyed => {
                return Err(KmsError::KeyDestroyed(key_id.clone()));
            }
            Ok(_) => {}
            Err(KmsError::UnknownKey(_)) => ring.create_key(key_id, SystemTime::now())?,
            Err(e) => return Err(e),
        }
        // Also retries a save that failed earlier.
        self.save(&ring)
    }

    /// Creates every missing key, then saves the ring once.
    fn ensure_keys(&self, key_ids: &[KeyId]) -> Result<(), KmsError> {
        let mut ring = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        let mut changed = self.unsaved.load(Ordering::Acquire);
        let mut refused = Ok(());
        for key_id in key_ids {
            let step = match ring.describe(key_id) {
                Ok(info) if info.state == KeyState::Destroyed => {
                    Err(KmsError::KeyDestroyed(key_id.clone()))
                }
                Ok(_) => Ok(false),
                Err(KmsError::UnknownKey(_)) => {
                    ring.create_key(key_id, SystemTime::now()).map(|()| true)
                }
                Err(e) => Err(e),
            };
            match step {
                Ok(created) => changed |= created,
                Err(e) => {
                    refused = Err(e);
                    break;
                }
            }
        }
        // Keys created before a refusal are kept, so they are saved too.
        if changed {
            self.save(&ring)?;
        }
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
        match ring.destroy_key(key_id, SystemTime::now()) {
            Ok(()) => self.save(&ring),
            // Destroyed before: make sure the file says so too.
            Err(e @ KmsError::KeyDestroyed(_)) => {
                self.save(&ring)?;
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
