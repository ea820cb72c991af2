//! The key ring: named master keys, each with numbered versions.
//!
//! A key is Enabled or Destroyed; a version is Enabled or Retired. New data
//! is always wrapped under a key's newest version, which is never retired.
//! Destroying a key or retiring a version erases its material but keeps the
//! entry, so later requests get `KeyDestroyed` / `KeyVersionRetired` rather
//! than `UnknownKey`, and a destroyed name is never handed out again.
//! Master-key material never leaves the ring; callers only ever see data
//! keys. Administrative methods take the time as a parameter and queue an
//! [`AdminEvent`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use crate::aead::KEY_LEN;
use crate::audit::{AdminAction, AdminEvent};
use crate::error::KmsError;
use crate::key_id::KeyId;
use crate::root_key::RootKey;
use crate::usage::{UsageCounters, UsageSnapshot};

/// Whether a key can still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Its versions encrypt (newest) and decrypt (all not retired).
    Enabled,
    /// Crypto-shredded: no material is left.
    Destroyed,
}

/// Whether a key version still has material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Decrypts; the newest Enabled version also encrypts.
    Enabled,
    /// Erased once no sealed data used it.
    Retired,
}

/// Public description of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// Version number, from 1.
    pub version: u32,
    /// Enabled or Retired. Versions of a destroyed key keep the state they
    /// had; the key's state decides.
    pub state: VersionState,
    /// When the version was created.
    pub created_at: SystemTime,
    /// When it was retired.
    pub retired_at: Option<SystemTime>,
}

/// Public description of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's name.
    pub key_id: KeyId,
    /// Enabled or Destroyed.
    pub state: KeyState,
    /// When the key was created.
    pub created_at: SystemTime,
    /// When the key was destroyed.
    pub destroyed_at: Option<SystemTime>,
    /// The version new encryptions use (`None` once destroyed).
    pub current_version: Option<u32>,
    /// Every version ever created, oldest first.
    pub versions: Vec<VersionInfo>,
}

pub(crate) struct Version {
    pub(crate) state: VersionState,
    pub(crate) created_at: SystemTime,
    pub(crate) retired_at: Option<SystemTime>,
    /// `None` once retired or destroyed; dropping the old value zeroizes it.
    pub(crate) material: Option<Zeroizing<[u8; KEY_LEN]>>,
    pub(crate) usage: UsageCounters,
}

pub(crate) struct MasterKey {
    pub(crate) created_at: SystemTime,
    pub(crate) destroyed_at: Option<SystemTime>,
    /// Version `n` is at index `n - 1`; never empty.
    pub(crate) versions: Vec<Version>,
}

impl MasterKey {
    pub(crate) fn current_number(&self) -> u32 {
        // At most u32::MAX versions exist (rotate checks), so this is exact.
        self.versions.len() as u32
    }
}

/// Named master keys sealed under a root key.
///
/// Cryptographic operations take `&self` and may run concurrently;
/// administrative ones take `&mut self` (put the ring behind an `RwLock`).
pub struct KeyRing {
    pub(crate) root: RootKey,
    pub(crate) keys: BTreeMap<KeyId, MasterKey>,
    pub(crate) events: Vec<AdminEvent>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("root", &self.root)
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// An empty ring sealed under `root`.
    pub fn new(root: RootKey) -> KeyRing {
        KeyRing {
            root,
            keys: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// Creates `key_id` with version 1. A name already used, even by a
    /// destroyed key, is refused.
    pub fn create_key(&mut self, key_id: &KeyId, now: SystemTime) -> Result<(), KmsError> {
        let now = check_time(now)?;
        if self.keys.contains_key(key_id) {
            return Err(KmsError::KeyExists(key_id.clone()));
        }
        let version = Version::new(now)?;
        self.keys.insert(
            key_id.clone(),
            MasterKey {
                created_at: now,
                destroyed_at: None,
                versions: vec![version],
            },
        );
        self.emit(AdminAction::CreateKey, Some(key_id), Some(1), now);
        Ok(())
    }

    /// Crypto-shreds `key_id`: every version's material is zeroized and
    /// dropped. A tombstone stays, so decryption reports
    /// [`KmsError::KeyDestroyed`]. The sealed ring on disk still holds the
    /// material until the next [`KeyRing::save`].
    pub fn destroy_key(&mut self, key_id: &KeyId, now: SystemTime) -> Result<(), KmsError> {
        let now = check_time(now)?;
        let key = self.key_mut(key_id)?;
        for version in &mut key.versions {
            version.material = None;
        }
        key.destroyed_at = Some(now);
        self.emit(AdminAction::DestroyKey, Some(key_id), None, now);
        Ok(())
    }

    /// Seals the ring under `root` from now on (the next save writes it so);
    /// the previous root key is dropped.
    pub fn change_root_key(&mut self, root: RootKey, now: SystemTime) -> Result<(), KmsError> {
        let now = check_time(now)?;
        self.root = root;
        self.emit(AdminAction::ChangeRootKey, None, None, now);
        Ok(())
    }

    /// Description of one key.
    pub fn describe(&self, key_id: &KeyId) -> Result<KeyInfo, KmsError> {
        self.keys
            .get_key_value(key_id)
            .map(|(id, key)| info(id, key))
            .ok_or_else(|| KmsError::UnknownKey(key_id.clone()))
    }

    /// Descriptions of every key, destroyed ones included, by name.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.keys.iter().map(|(id, key)| info(id, key)).collect()
    }

    /// Operation counters of every version since the ring was created or
    /// loaded.
    pub fn usage(&self) -> UsageSnapshot {
        let mut snapshot = UsageSnapshot::default();
        for (id, key) in &self.keys {
            for (n, version) in (1u32..).zip(&key.versions) {
                snapshot
                    .versions
                    .insert((id.clone(), n), version.usage.snapshot());
            }
        }
        snapshot
    }

    /// Administrative events not yet drained, oldest first.
    pub fn pending_events(&self) -> &[AdminEvent] {
        &self.events
    }

    /// Takes the administrative events queued so far, oldest first, for the
    /// audit log.
    pub fn drain_events(&mut self) -> Vec<AdminEvent> {
        std::mem::take(&mut self.events)
    }

    pub(crate) fn emit(
        &mut self,
        action: AdminAction,
        key_id: Option<&KeyId>,
        version: Option<u32>,
        at: SystemTime,
    ) {
        self.events
            .push(AdminEvent::new(action, key_id, version, at));
    }

    /// The enabled key `key_id`, for changes.
    pub(crate) fn key_mut(&mut self, key_id: &KeyId) -> Result<&mut MasterKey, KmsError> {
        let key = self
            .keys
            .get_mut(key_id)
            .ok_or_else(|| KmsError::UnknownKey(key_id.clone()))?;
        if key.destroyed_at.is_some() {
            return Err(KmsError::KeyDestroyed(key_id.clone()));
        }
        Ok(key)
    }

    /// The version new data under `key_id` is wrapped with.
    pub(crate) fn current(&self, key_id: &KeyId) -> Result<(u32, &Version), KmsError> {
        let key = self.enabled_key(key_id)?;
        let n = key.current_number();
        key.versions
            .last()
            .map(|v| (n, v))
            .ok_or(KmsError::RingCorrupt("key without versions"))
    }

    /// Version `version` of `key_id`, whatever its state (for counting).
    pub(crate) fn version(&self, key_id: &KeyId, version: u32) -> Option<&Version> {
        let index = usize::try_from(version.checked_sub(1)?).ok()?;
        self.keys.get(key_id)?.versions.get(index)
    }

    /// The material of `key_id` version `version`, for unwrapping.
    pub(crate) fn material(
        &self,
        key_id: &KeyId,
        version: u32,
    ) -> Result<(&Version, &[u8; KEY_LEN]), KmsError> {
        self.enabled_key(key_id)?;
        let v = self
            .version(key_id, version)
            .ok_or_else(|| KmsError::UnknownKeyVersion {
                key_id: key_id.clone(),
                version,
            })?;
        match &v.material {
            Some(m) => Ok((v, m)),
            None => Err(KmsError::KeyVersionRetired {
                key_id: key_id.clone(),
                version,
            }),
        }
    }

    fn enabled_key(&self, key_id: &KeyId) -> Result<&MasterKey, KmsError> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| KmsError::UnknownKey(key_id.clone()))?;
        if key.destroyed_at.is_some() {
            return Err(KmsError::KeyDestroyed(key_id.clone()));
        }
        Ok(key)
    }
}

impl Version {
    pub(crate) fn new(now: SystemTime) -> Result<Version, KmsError> {
        Ok(Version {
            state: VersionState::Enabled,
            created_at: now,
            retired_at: None,
            material: Some(crate::aead::random_key()?),
            usage: UsageCounters::default(),
        })
    }
}

fn info(key_id: &KeyId, key: &MasterKey) -> KeyInfo {
    let destroyed = key.destroyed_at.is_some();
    KeyInfo {
        key_id: key_id.clone(),
        state: if destroyed {
            KeyState::Destroyed
        } else {
            KeyState::Enabled
        },
        created_at: key.created_at,
        destroyed_at: key.destroyed_at,
        current_version: (!destroyed).then(|| key.current_number()),
        versions: (1u32..)
            .zip(&key.versions)
            .map(|(n, v)| VersionInfo {
                version: n,
                state: v.state,
                created_at: v.created_at,
                retired_at: v.retired_at,
            })
            .collect(),
    }
}

/// Accepts times the ring file can store: from 1970 on, whole seconds
/// within `u64`.
pub(crate) fn check_time(t: SystemTime) -> Result<SystemTime, KmsError> {
    t.duration_since(UNIX_EPOCH)
        .map(|_| t)
        .map_err(|_| KmsError::InvalidTime)
}
