//! The root key: the one secret that seals the key ring.
//!
//! It comes either from a key file (32 random bytes, created once with mode
//! 0600; refused at load when group or others have any access) or from an
//! operator passphrase stretched with Argon2id, whose salt and cost are kept
//! in a small JSON parameters file together with a check value, so a wrong
//! passphrase is reported as such instead of as a ring that fails to
//! authenticate. The material lives in a zeroizing buffer and is never
//! printed.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::aead::{Cipher, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::error::KmsError;
use crate::files;

/// Associated data of the passphrase check value; it never seals anything
/// else, so the check cannot be confused with a ring.
const CHECK_AAD: &[u8] = b"civitas-kms root key check v1";
const KDF_NAME: &str = "argon2id";
const SALT_LEN: usize = 16;

/// Where a root key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKeySource {
    /// A key file.
    KeyFile,
    /// An operator passphrase through Argon2id.
    Passphrase,
    /// Bytes handed over by the caller (e.g. fetched from an external KMS).
    Supplied,
}

/// The key that seals the key ring.
pub struct RootKey {
    material: Zeroizing<[u8; KEY_LEN]>,
    source: RootKeySource,
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootKey")
            .field("source", &self.source)
            .field("material", &"<redacted>")
            .finish()
    }
}

impl RootKey {
    /// Creates a new key file of 32 random bytes at `path`, owner-only
    /// (0600) from the start, appearing atomically. Refuses to replace an
    /// existing file: losing a root key loses every key in the ring.
    pub fn create_key_file(path: &Path) -> Result<RootKey, KmsError> {
        let material = crate::aead::random_key()?;
        files::write_new(path, &material[..])?;
        Ok(RootKey {
            material,
            source: RootKeySource::KeyFile,
        })
    }

    /// Loads a key file written by [`RootKey::create_key_file`]. A file
    /// that group or others can access in any way is refused with
    /// [`KmsError::InsecureKeyFile`], naming the file and its mode.
    pub fn load_key_file(path: &Path) -> Result<RootKey, KmsError> {
        let mut file = File::open(path).map_err(|e| KmsError::io(path, e))?;
        let meta = file.metadata().map_err(|e| KmsError::io(path, e))?;
        if !meta.is_file() {
            return Err(KmsError::BadKeyFile {
                path: path.to_path_buf(),
                reason: "not a regular file",
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(KmsError::InsecureKeyFile {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let wrong_size = || KmsError::BadKeyFile {
            path: path.to_path_buf(),
            reason: "must hold exactly 32 bytes",
        };
        if meta.len() != KEY_LEN as u64 {
            return Err(wrong_size());
        }
        let mut material = Zeroizing::new([0u8; KEY_LEN]);
        file.read_exact(&mut material[..])
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => wrong_size(),
                _ => KmsError::io(path, e),
            })?;
        // The file may have grown between the size check and the read.
        let mut extra = [0u8; 1];
        if file.read(&mut extra).map_err(|e| KmsError::io(path, e))? != 0 {
            return Err(wrong_size());
        }
        Ok(RootKey {
            material,
            source: RootKeySource::KeyFile,
        })
    }

    /// A root key from bytes the caller obtained elsewhere.
    pub fn from_bytes(material: Zeroizing<[u8; KEY_LEN]>) -> RootKey {
        RootKey {
            material,
            source: RootKeySource::Supplied,
        }
    }

    /// Derives a root key from a new passphrase with a fresh random salt;
    /// returns the parameters to store (they are not secret) for
    /// [`RootKey::from_passphrase`].
    pub fn new_passphrase(
        passphrase: &[u8],
        cost: Argon2Cost,
    ) -> Result<(RootKey, PassphraseParams), KmsError> {
        if passphrase.is_empty() {
            return Err(KmsError::PassphraseParams("the passphrase is empty".into()));
        }
        cost.validate()?;
        let salt: [u8; SALT_LEN] = crate::aead::random_bytes()?;
        let material = derive(passphrase, &salt, cost)?;
        let (nonce, tag) = Cipher::new(&material)?.seal(CHECK_AAD, &mut [])?;
        let mut check = nonce.to_vec();
        check.extend_from_slice(&tag);
        let params = PassphraseParams {
            kdf: KDF_NAME.to_owned(),
            argon2_version: 0x13,
            memory_kib: cost.memory_kib,
            iterations: cost.iterations,
            parallelism: cost.parallelism,
            salt: hex::encode(salt),
            check: hex::encode(check),
        };
        let key = RootKey {
            material,
            source: RootKeySource::Passphrase,
        };
        Ok((key, params))
    }

    /// Re-derives the root key from the operator's passphrase and the stored
    /// parameters; [`KmsError::WrongPassphrase`] if it is not the passphrase
    /// the parameters were made with.
    pub fn from_passphrase(
        passphrase: &[u8],
        params: &PassphraseParams,
    ) -> Result<RootKey, KmsError> {
        if params.kdf != KDF_NAME || params.argon2_version != 0x13 {
            return Err(KmsError::PassphraseParams(format!(
                "unsupported key derivation {} version {}",
                params.kdf, params.argon2_version
            )));
        }
        let cost = params.cost();
        cost.validate()?;
        let salt = hex::decode(&params.salt)
            .ok()
            .filter(|s| s.len() == SALT_LEN)
            .ok_or_else(|| KmsError::PassphraseParams("salt must be 16 hex bytes".into()))?;
        let check = hex::decode(&params.check)
            .ok()
            .filter(|c| c.len() == NONCE_LEN + TAG_LEN)
            .ok_or_else(|| KmsError::PassphraseParams("check must be 28 hex bytes".into()))?;
        let material = derive(passphrase, &salt, cost)?;
        let (nonce, tag) = check.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KmsError::Crypto)?;
        let mut tag = tag.to_vec();
        Cipher::new(&material)?
            .open(&nonce, CHECK_AAD, &mut tag)
            .map_err(|_| KmsError::WrongPassphrase)?;
        Ok(RootKey {
            material,
            source: RootKeySource::Passphrase,
        })
    }

    /// Where this key came from.
    pub fn source(&self) -> RootKeySource {
        self.source
    }

    pub(crate) fn cipher(&self) -> Result<Cipher, KmsError> {
        Cipher::new(&self.material)
    }
}

fn derive(
    passphrase: &[u8],
    salt: &[u8],
    cost: Argon2Cost,
) -> Result<Zeroizing<[u8; KEY_LEN]>, KmsError> {
    let params = Params::new(
        cost.memory_kib,
        cost.iterations,
        cost.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|e| KmsError::PassphraseParams(e.to_string()))?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut out[..])
        .map_err(|e| KmsError::PassphraseParams(e.to_string()))?;
    Ok(out)
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Argon2Cost {
    /// 64 MiB, 3 passes, 1 lane (RFC 9106's memory-constrained choice).
    pub const RECOMMENDED: Argon2Cost = Argon2Cost {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };
    /// The weakest cost accepted: 19 MiB, 2 passes, 1 lane (OWASP's minimum
    /// for Argon2id).
    pub const MINIMUM: Argon2Cost = Argon2Cost {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    fn validate(&self) -> Result<(), KmsError> {
        // The upper bounds stop an edited parameters file from making a
        // derivation exhaust memory or run for hours.
        if !(Self::MINIMUM.memory_kib..=4 * 1024 * 1024).contains(&self.memory_kib)
            || !(Self::MINIMUM.iterations..=64).contains(&self.iterations)
            || !(1..=16).contains(&self.parallelism)
        {
            return Err(KmsError::PassphraseParams(format!(
                "cost {}KiB/{} passes/{} lanes is outside 19456..=4194304 KiB, 2..=64 passes, 1..=16 lanes",
                self.memory_kib, self.iterations, self.parallelism
            )));
        }
        Ok(())
    }
}

impl Default for Argon2Cost {
    fn default() -> Self {
        Self::RECOMMENDED
    }
}

/// What is stored to re-derive a passphrase root key: algorithm, cost,
/// salt and a check value (an AES-GCM tag over nothing, under the derived
/// key). None of it is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassphraseParams {
    kdf: String,
    argon2_version: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: String,
    check: String,
}

impl PassphraseParams {
    /// The Argon2id cost these parameters ask for.
    pub fn cost(&self) -> Argon2Cost {
        Argon2Cost {
            memory_kib: self.memory_kib,
            iterations: self.iterations,
            parallelism: self.parallelism,
        }
    }

    /// The parameters as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses parameters written by [`PassphraseParams::to_json`].
    pub fn from_json(json: &str) -> Result<PassphraseParams, KmsError> {
        serde_json::from_str(json).map_err(|e| KmsError::PassphraseParams(e.to_string()))
    }

    /// Writes the parameters to `path` atomically.
    pub fn write(&self, path: &Path) -> Result<(), KmsError> {
        files::write_replace(path, self.to_json().as_bytes())
    }

    /// Reads parameters from `path`.
    pub fn read(path: &Path) -> Result<PassphraseParams, KmsError> {
        let json = std::fs::read_to_string(path).map_err(|e| KmsError::io(path, e))?;
        Self::from_json(&json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        // The passphrase parameters' salt and check, as written and read.
        let hex_decode = |s: &str| hex::decode(s).ok();
        assert_eq!(hex::encode([0, 0xab, 0x10]), "00ab10");
        assert_eq!(hex_decode("00ab10"), Some(vec![0, 0xab, 0x10]));
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_decode("é0"), None);
    }

    #[test]
    fn debug_hides_material() {
        let key = RootKey::from_bytes(Zeroizing::new([0xAB; KEY_LEN]));
        let shown = format!("{key:?}");
        assert!(!shown.to_lowercase().contains("ab, "), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn weak_costs_are_refused() {
        let weak = Argon2Cost {
            memory_kib: 1024,
            ..Argon2Cost::MINIMUM
        };
        assert!(matches!(
            RootKey::new_passphrase(b"pw", weak),
            Err(KmsError::PassphraseParams(_))
        ));
    }
}
