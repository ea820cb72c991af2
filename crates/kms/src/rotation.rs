//! Rotation and retirement of key versions.
//!
//! `rotate` adds a version that new data is wrapped under; old versions keep
//! opening what they sealed until `re_encrypt` / `rewrap_data_key` has moved
//! that data forward. Only then may a version be retired, which erases its
//! material. The ring cannot know which sealed objects exist (they live in
//! other stores), so the caller proves it with a [`VersionCensus`] built
//! from every sealed object it keeps; `retire_version` refuses while the
//! census counts any object under the version.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::audit::AdminAction;
use crate::blob::{SealedHeader, inspect};
use crate::error::KmsError;
use crate::key_id::KeyId;
use crate::ring::{KeyRing, Version, VersionState, check_time};

/// Rotation period used when the configuration names none: 365 days.
pub const DEFAULT_ROTATION_PERIOD: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How many sealed objects (blobs and wrapped data keys) each key version
/// wraps, as counted by the caller over everything it stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionCensus {
    counts: BTreeMap<(KeyId, u32), u64>,
}

impl VersionCensus {
    /// An empty census.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one sealed blob or wrapped data key by reading its header
    /// (no key needed); returns the header.
    pub fn record(&mut self, sealed: &[u8]) -> Result<SealedHeader, KmsError> {
        let header = inspect(sealed)?;
        self.add(&header.key_id, header.key_version, 1);
        Ok(header)
    }

    /// Adds `n` objects under `key_id` version `version` (for callers that
    /// keep their own per-version counts).
    pub fn add(&mut self, key_id: &KeyId, version: u32, n: u64) {
        let entry = self.counts.entry((key_id.clone(), version)).or_default();
        *entry = entry.saturating_add(n);
    }

    /// Objects counted under `key_id` version `version`.
    pub fn count(&self, key_id: &KeyId, version: u32) -> u64 {
        self.counts
            .get(&(key_id.clone(), version))
            .copied()
            .unwrap_or(0)
    }

    /// Every (key, version) with its count.
    pub fn iter(&self) -> impl Iterator<Item = (&KeyId, u32, u64)> {
        self.counts.iter().map(|((k, v), n)| (k, *v, *n))
    }
}

impl KeyRing {
    /// Adds a version to `key_id`; new data is wrapped under it from now
    /// on. Returns the new version number.
    pub fn rotate(&mut self, key_id: &KeyId, now: SystemTime) -> Result<u32, KmsError> {
        let now = check_time(now)?;
        let key = self.key_mut(key_id)?;
        let number = key
            .current_number()
            .checked_add(1)
            .ok_or_else(|| KmsError::VersionLimit(key_id.clone()))?;
        key.versions.push(Version::new(now)?);
        self.emit(AdminAction::RotateKey, Some(key_id), Some(number), now);
        Ok(number)
    }

    /// Enabled keys whose newest version is at least `period` old at `now`,
    /// by name. A version created after `now` (clock moved back) is not due.
    pub fn rotation_due(&self, now: SystemTime, period: Duration) -> Vec<KeyId> {
        self.keys
            .iter()
            .filter(|(_, key)| key.destroyed_at.is_none())
            .filter(|(_, key)| {
                key.versions.last().is_some_and(|v| {
                    now.duration_since(v.created_at)
                        .is_ok_and(|age| age >= period)
                })
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Enabled versions of `key_id`, other than the current one, that
    /// `census` counts no object under: the ones [`KeyRing::retire_version`]
    /// would accept.
    pub fn retirable_versions(
        &self,
        key_id: &KeyId,
        census: &VersionCensus,
    ) -> Result<Vec<u32>, KmsError> {
        let (current, _) = self.current(key_id)?;
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| KmsError::UnknownKey(key_id.clone()))?;
        Ok((1u32..)
            .zip(&key.versions)
            .filter(|(n, v)| {
                *n != current && v.state == VersionState::Enabled && census.count(key_id, *n) == 0
            })
            .map(|(n, _)| n)
            .collect())
    }

    /// Erases the material of `key_id` version `version`. Refused for the
    /// current version, and while `census` counts any sealed object under
    /// it ([`KmsError::VersionInUse`]). Objects the census missed become
    /// unreadable ([`KmsError::KeyVersionRetired`]), so build it from
    /// everything stored.
    pub fn retire_version(
        &mut self,
        key_id: &KeyId,
        version: u32,
        census: &VersionCensus,
        now: SystemTime,
    ) -> Result<(), KmsError> {
        let now = check_time(now)?;
        let key = self.key_mut(key_id)?;
        let current = key.current_number();
        let slot = version
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| key.versions.get_mut(i));
        let Some(v) = slot else {
            return Err(KmsError::UnknownKeyVersion {
                key_id: key_id.clone(),
                version,
            });
        };
        if v.state == VersionState::Retired {
            return Err(KmsError::KeyVersionRetired {
                key_id: key_id.clone(),
                version,
            });
        }
        if version == current {
            return Err(KmsError::CurrentVersion {
                key_id: key_id.clone(),
                version,
            });
        }
        let blobs = census.count(key_id, version);
        if blobs > 0 {
            return Err(KmsError::VersionInUse {
                key_id: key_id.clone(),
                version,
                blobs,
            });
        }
        v.material = None;
        v.state = VersionState::Retired;
        v.retired_at = Some(now);
        self.emit(AdminAction::RetireVersion, Some(key_id), Some(version), now);
        Ok(())
    }
}
