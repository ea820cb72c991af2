//! Signed checkpoints: what they sign, who signs them, and the form they
//! are exported in for off-site keeping.
//!
//! A checkpoint vouches for every record up to `head_seq` through the hash
//! of that record. The signed message is
//! `b"civitas-audit-checkpoint-v1" || head_seq (u64 big-endian) ||
//! head_hash (32 bytes)`, signed with Ed25519.

use std::fmt;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::AuditError;
use crate::hex;
use crate::record::{Digest, Seq};

/// The action of checkpoint records.
pub const CHECKPOINT_ACTION: &str = "audit.checkpoint";

/// The domain-separation prefix of every signed checkpoint message.
pub const SIGNATURE_DOMAIN: &[u8] = b"civitas-audit-checkpoint-v1";

/// Signs checkpoints with Ed25519.
pub trait CheckpointSigner: Send + Sync {
    /// The raw 32-byte Ed25519 public key.
    fn public_key(&self) -> [u8; 32];

    /// The 64-byte Ed25519 signature of `message`.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], AuditError>;
}

/// The name a public key goes by: the first 8 bytes of its SHA-256, as 16
/// hex digits.
pub fn key_id(public_key: &[u8; 32]) -> String {
    hex::encode(&Digest::of(public_key).0[..8])
}

/// The bytes a checkpoint's signature covers.
pub fn checkpoint_message(head_seq: Seq, head_hash: &Digest) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 8 + 32);
    m.extend_from_slice(SIGNATURE_DOMAIN);
    m.extend_from_slice(&head_seq.to_be_bytes());
    m.extend_from_slice(&head_hash.0);
    m
}

/// An Ed25519 key pair held in memory.
pub struct Ed25519Signer {
    pair: Ed25519KeyPair,
    public: [u8; 32],
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Signer")
            .field("key_id", &key_id(&self.public))
            .finish_non_exhaustive()
    }
}

impl Ed25519Signer {
    /// A new random key pair and its PKCS#8 (v2) encoding, to be sealed.
    pub fn generate() -> Result<(Ed25519Signer, Zeroizing<Vec<u8>>), AuditError> {
        let pair = Ed25519KeyPair::generate()
            .map_err(|_| AuditError::Key("generating an Ed25519 key failed".into()))?;
        let pkcs8 = pair
            .to_pkcs8()
            .map_err(|_| AuditError::Key("encoding the Ed25519 key failed".into()))?;
        let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
        Ok((Ed25519Signer::from_pkcs8(&pkcs8)?, pkcs8))
    }

    /// The key pair in a PKCS#8 (v1 or v2) document.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Ed25519Signer, AuditError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|e| AuditError::Key(format!("not an Ed25519 PKCS#8 key: {e}")))?;
        let public = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| AuditError::Key("Ed25519 public key is not 32 bytes".into()))?;
        Ok(Ed25519Signer { pair, public })
    }
}

impl CheckpointSigner for Ed25519Signer {
    fn public_key(&self) -> [u8; 32] {
        self.public
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], AuditError> {
        self.pair
            .sign(message)
            .as_ref()
            .try_into()
            .map_err(|_| AuditError::Key("Ed25519 signature is not 64 bytes".into()))
    }
}

/// A checkpoint as exported for keeping off-site, and as carried in the
/// `details` of a checkpoint record (the same members).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedCheckpoint {
    /// [`key_id`] of `public_key`.
    pub key_id: String,
    /// The raw Ed25519 public key (hex).
    #[serde(with = "hex::serde_array")]
    pub public_key: [u8; 32],
    /// The last record the checkpoint vouches for.
    pub head_seq: Seq,
    /// That record's hash.
    pub head_hash: Digest,
    /// Ed25519 signature of [`checkpoint_message`] (hex).
    #[serde(with = "hex::serde_array")]
    pub signature: [u8; 64],
}

impl ExportedCheckpoint {
    /// Signs the head `head_seq` / `head_hash`.
    pub(crate) fn sign(
        signer: &dyn CheckpointSigner,
        head_seq: Seq,
        head_hash: Digest,
    ) -> Result<ExportedCheckpoint, AuditError> {
        let public_key = signer.public_key();
        let signature = signer.sign(&checkpoint_message(head_seq, &head_hash))?;
        Ok(ExportedCheckpoint {
            key_id: key_id(&public_key),
            public_key,
            head_seq,
            head_hash,
            signature,
        })
    }

    /// Checks that `key_id` names `public_key` and that the signature is
    /// valid under it.
    pub fn verify_signature(&self) -> Result<(), String> {
        if self.key_id != key_id(&self.public_key) {
            return Err(format!(
                "key_id {} does not name public key {}",
                self.key_id,
                hex::encode(&self.public_key)
            ));
        }
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(
                &checkpoint_message(self.head_seq, &self.head_hash),
                &self.signature,
            )
            .map_err(|_| "the signature does not verify".to_string())
    }

    /// Pretty JSON, as written by `civitas audit export-checkpoint`.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Reads an exported checkpoint; its signature is not checked here.
    pub fn from_json(text: &str) -> Result<ExportedCheckpoint, AuditError> {
        serde_json::from_str(text).map_err(|e| AuditError::BadCheckpoint(e.to_string()))
    }

    pub(crate) fn to_details(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    pub(crate) fn from_details(details: &Map<String, Value>) -> Result<ExportedCheckpoint, String> {
        serde_json::from_value(Value::Object(details.clone())).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout_is_as_documented() {
        let m = checkpoint_message(0x0102, &Digest([7; 32]));
        assert_eq!(&m[..27], b"civitas-audit-checkpoint-v1");
        assert_eq!(&m[27..35], &[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(&m[35..], &[7; 32]);
    }

    #[test]
    fn signs_verifies_and_round_trips() {
        let (signer, pkcs8) = Ed25519Signer::generate().unwrap();
        let again = Ed25519Signer::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(signer.public_key(), again.public_key());
        let cp = ExportedCheckpoint::sign(&signer, 42, Digest([1; 32])).unwrap();
        cp.verify_signature().unwrap();
        let back = ExportedCheckpoint::from_json(&cp.to_json()).unwrap();
        assert_eq!(back, cp);
        assert_eq!(
            ExportedCheckpoint::from_details(&cp.to_details()).unwrap(),
            cp
        );

        let mut forged = cp.clone();
        forged.head_seq = 43;
        assert!(forged.verify_signature().is_err());
        let mut renamed = cp.clone();
        renamed.key_id = "0000000000000000".into();
        assert!(renamed.verify_signature().is_err());
    }
}
