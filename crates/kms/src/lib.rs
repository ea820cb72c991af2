//! civitas' key-management service, in the role AWS KMS plays elsewhere.
//!
//! A [`RootKey`] (from a 0600 key file or an Argon2id-stretched passphrase)
//! seals the [`KeyRing`], which holds named master keys ([`KeyId`]) with
//! numbered versions. Data is protected by envelope encryption: every
//! [`KeyRing::encrypt`] seals the payload under a fresh data key and wraps
//! that key under the newest master-key version, binding an
//! [`EncryptionContext`] to both, into a self-describing sealed blob (format
//! in `docs/sealed-blob.md`). Keys rotate ([`KeyRing::rotate`],
//! [`KeyRing::rotation_due`]), old blobs move forward with
//! [`KeyRing::re_encrypt`], unused versions are retired against a
//! [`VersionCensus`], and [`KeyRing::destroy_key`] crypto-shreds a key.
//! Administrative operations queue [`AdminEvent`]s for the audit log.
//! Callers should depend on the [`KeyProvider`] trait so another service
//! can stand in for the local ring.
//!
//! Typical setup: [`RootKey::create_key_file`] on first run (then
//! [`RootKey::load_key_file`]), [`KeyRing::new`] / [`KeyRing::load`] of
//! [`RING_FILE_NAME`], and [`KeyRing::save`] after every administrative
//! change. Time is always a parameter; nothing here reads a clock.

mod aead;
mod audit;
mod blob;
mod context;
mod envelope;
mod error;
mod files;
mod key_id;
mod provider;
mod ring;
mod ring_file;
mod root_key;
mod rotation;
mod usage;

pub use aead::{KEY_LEN, NONCE_LEN, TAG_LEN};
pub use audit::{AdminAction, AdminEvent};
pub use blob::{
    BLOB_MAGIC, DATA_KEY_MAGIC, FORMAT_VERSION, MAX_PLAINTEXT_LEN, SealedHeader, SealedKind,
    WRAPPED_KEY_LEN, inspect,
};
pub use context::{EncryptionContext, MAX_CONTEXT_BYTES};
pub use envelope::{DataKey, RecordCipher};
pub use error::{Field, KmsError, Magic};
pub use key_id::{KeyId, MAX_KEY_ID_LEN};
pub use provider::KeyProvider;
pub use ring::{KeyInfo, KeyRing, KeyState, VersionInfo, VersionState};
pub use ring_file::{RING_FILE_NAME, RING_MAGIC};
pub use root_key::{Argon2Cost, PassphraseParams, RootKey, RootKeySource};
pub use rotation::{DEFAULT_ROTATION_PERIOD, VersionCensus};
pub use usage::{OpCounts, UsageSnapshot};
