//! The persisted key ring: the ring serialized and sealed under the root
//! key with AES-256-GCM, as bytes (for a store to keep) or as the file
//! `keyring.sealed` written atomically with mode 0600.
//!
//! Outer format: `"CVKR"`, format version 1, 12-byte nonce, ciphertext and
//! tag, with the magic and version as associated data. The plaintext is a
//! compact binary listing (see `docs/sealed-blob.md`), built in a buffer
//! sized exactly up front and sealed in place so no unencrypted copy of the
//! material is left in freed memory.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use crate::aead::{KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::blob::{FORMAT_VERSION, Reader};
use crate::error::{Field, KmsError, Magic};
use crate::files;
use crate::key_id::KeyId;
use crate::ring::{KeyRing, MasterKey, Version, VersionState};
use crate::root_key::RootKey;
use crate::usage::UsageCounters;

/// Magic of a sealed key ring.
pub const RING_MAGIC: [u8; 4] = *b"CVKR";
/// Conventional file name of the sealed ring in the data directory.
pub const RING_FILE_NAME: &str = "keyring.sealed";

const KEY_ENABLED: u8 = 1;
const KEY_DESTROYED: u8 = 2;
const VERSION_ENABLED: u8 = 1;
const VERSION_RETIRED: u8 = 2;
const TIME_LEN: usize = 8 + 4;

impl KeyRing {
    /// The ring sealed under its root key.
    pub fn to_sealed_bytes(&self) -> Result<Vec<u8>, KmsError> {
        let start = RING_MAGIC.len() + 1 + NONCE_LEN;
        let size = start + self.plaintext_len() + TAG_LEN;
        // Zeroizing until sealed: an early return must not leave the
        // serialized material behind.
        let mut out = Zeroizing::new(Vec::with_capacity(size));
        out.extend_from_slice(&RING_MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&[0; NONCE_LEN]);
        self.serialize(&mut out)?;
        let (aad, body) = out.split_at_mut(start);
        let (nonce, tag) = self
            .root
            .cipher()?
            .seal(&aad[..RING_MAGIC.len() + 1], body)?;
        out[start - NONCE_LEN..start].copy_from_slice(&nonce);
        out.extend_from_slice(&tag);
        debug_assert_eq!(out.len(), size, "capacity was computed exactly");
        Ok(std::mem::take(&mut *out))
    }

    /// Opens a ring sealed by [`KeyRing::to_sealed_bytes`]. A wrong root key
    /// or any altered byte gives [`KmsError::AuthenticationFailed`].
    pub fn from_sealed_bytes(bytes: &[u8], root: RootKey) -> Result<KeyRing, KmsError> {
        let mut r = Reader::new(bytes);
        let magic: [u8; 4] = r.array(Field::Magic)?;
        if magic != RING_MAGIC {
            return Err(KmsError::BadMagic {
                expected: Magic(RING_MAGIC),
                found: Magic(magic),
            });
        }
        let [version] = r.array(Field::FormatVersion)?;
        if version != FORMAT_VERSION {
            return Err(KmsError::UnsupportedFormatVersion(version));
        }
        let aad = r.consumed();
        let nonce: [u8; NONCE_LEN] = r.array(Field::PayloadNonce)?;
        if r.rest().len() < TAG_LEN {
            return Err(KmsError::Truncated {
                field: Field::Payload,
            });
        }
        let mut plain = Zeroizing::new(r.rest().to_vec());
        let len = root.cipher()?.open(&nonce, aad, &mut plain)?;
        let keys = deserialize(&plain[..len])?;
        Ok(KeyRing {
            root,
            keys,
            events: Vec::new(),
        })
    }

    /// Writes the sealed ring to `path` atomically, owner-only.
    pub fn save(&self, path: &Path) -> Result<(), KmsError> {
        files::write_replace(path, &self.to_sealed_bytes()?)
    }

    /// Reads and opens a ring written by [`KeyRing::save`].
    pub fn load(path: &Path, root: RootKey) -> Result<KeyRing, KmsError> {
        let bytes = std::fs::read(path).map_err(|e| KmsError::io(path, e))?;
        KeyRing::from_sealed_bytes(&bytes, root)
    }

    fn plaintext_len(&self) -> usize {
        let mut len = 4;
        for (id, key) in &self.keys {
            len += 1 + id.as_str().len() + 1 + TIME_LEN + 4;
            if key.destroyed_at.is_some() {
                len += TIME_LEN;
            }
            for v in &key.versions {
                len += 1 + TIME_LEN;
                if v.retired_at.is_some() {
                    len += TIME_LEN;
                }
                if v.material.is_some() {
                    len += KEY_LEN;
                }
            }
        }
        len
    }

    fn serialize(&self, out: &mut Vec<u8>) -> Result<(), KmsError> {
        out.extend_from_slice(&count(self.keys.len())?.to_be_bytes());
        for (id, key) in &self.keys {
            // KeyId guarantees 1..=128 bytes.
            out.push(id.as_str().len() as u8);
            out.extend_from_slice(id.as_str().as_bytes());
            out.push(match key.destroyed_at {
                None => KEY_ENABLED,
                Some(_) => KEY_DESTROYED,
            });
            put_time(out, key.created_at)?;
            if let Some(t) = key.destroyed_at {
                put_time(out, t)?;
            }
            out.extend_from_slice(&count(key.versions.len())?.to_be_bytes());
            for v in &key.versions {
                out.push(match v.state {
                    VersionState::Enabled => VERSION_ENABLED,
                    VersionState::Retired => VERSION_RETIRED,
                });
                put_time(out, v.created_at)?;
                if let Some(t) = v.retired_at {
                    put_time(out, t)?;
                }
                // Present exactly when the key is enabled and the version
                // is not retired; the reader relies on that.
                if let Some(m) = &v.material {
                    out.extend_from_slice(&m[..]);
                }
            }
        }
        Ok(())
    }
}

fn count(n: usize) -> Result<u32, KmsError> {
    u32::try_from(n).map_err(|_| KmsError::RingCorrupt("too many entries"))
}

fn put_time(out: &mut Vec<u8>, t: SystemTime) -> Result<(), KmsError> {
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| KmsError::InvalidTime)?;
    out.extend_from_slice(&d.as_secs().to_be_bytes());
    out.extend_from_slice(&d.subsec_nanos().to_be_bytes());
    Ok(())
}

/// Parses the authenticated plaintext. Only a writer bug can make it fail,
/// so every failure is [`KmsError::RingCorrupt`].
fn deserialize(plain: &[u8]) -> Result<std::collections::BTreeMap<KeyId, MasterKey>, KmsError> {
    const SHORT: KmsError = KmsError::RingCorrupt("ends early");
    let mut r = Reader::new(plain);
    let mut keys = std::collections::BTreeMap::new();
    let key_count = u32::from_be_bytes(r.array(Field::Payload).map_err(|_| SHORT)?);
    for _ in 0..key_count {
        let [id_len] = r.array(Field::Payload).map_err(|_| SHORT)?;
        let id = r
            .take(usize::from(id_len), Field::Payload)
            .map_err(|_| SHORT)?;
        let id = KeyId::from_wire(id).map_err(|_| KmsError::RingCorrupt("invalid key id"))?;
        let [state] = r.array(Field::Payload).map_err(|_| SHORT)?;
        let created_at = get_time(&mut r)?;
        let destroyed_at = match state {
            KEY_ENABLED => None,
            KEY_DESTROYED => Some(get_time(&mut r)?),
            _ => return Err(KmsError::RingCorrupt("unknown key state")),
        };
        let version_count = u32::from_be_bytes(r.array(Field::Payload).map_err(|_| SHORT)?);
        if version_count == 0 {
            return Err(KmsError::RingCorrupt("key without versions"));
        }
        let mut versions = Vec::new();
        for _ in 0..version_count {
            let [vstate] = r.array(Field::Payload).map_err(|_| SHORT)?;
            let created_at = get_time(&mut r)?;
            let (state, retired_at) = match vstate {
                VERSION_ENABLED => (VersionState::Enabled, None),
                VERSION_RETIRED => (VersionState::Retired, Some(get_time(&mut r)?)),
                _ => return Err(KmsError::RingCorrupt("unknown version state")),
            };
            let material = if destroyed_at.is_none() && state == VersionState::Enabled {
                let mut m = Zeroizing::new([0u8; KEY_LEN]);
                m.copy_from_slice(r.take(KEY_LEN, Field::Payload).map_err(|_| SHORT)?);
                Some(m)
            } else {
                None
            };
            versions.push(Version {
                state,
                created_at,
                retired_at,
                material,
                usage: UsageCounters::default(),
            });
        }
        if destroyed_at.is_none() && versions.last().is_some_and(|v| v.material.is_none()) {
            return Err(KmsError::RingCorrupt("current version is retired"));
        }
        let key = MasterKey {
            created_at,
            destroyed_at,
            versions,
        };
        if keys.insert(id, key).is_some() {
            return Err(KmsError::RingCorrupt("duplicate key id"));
        }
    }
    r.finish()
        .map_err(|_| KmsError::RingCorrupt("trailing bytes"))?;
    Ok(keys)
}

fn get_time(r: &mut Reader<'_>) -> Result<SystemTime, KmsError> {
    const SHORT: KmsError = KmsError::RingCorrupt("ends early");
    let secs = u64::from_be_bytes(r.array(Field::Payload).map_err(|_| SHORT)?);
    let nanos = u32::from_be_bytes(r.array(Field::Payload).map_err(|_| SHORT)?);
    if nanos >= 1_000_000_000 {
        return Err(KmsError::RingCorrupt("invalid timestamp"));
    }
    UNIX_EPOCH
        .checked_add(Duration::new(secs, nanos))
        .ok_or(KmsError::RingCorrupt("timestamp out of range"))
}
