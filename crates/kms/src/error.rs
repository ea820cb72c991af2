//! The crate's single error type.
//!
//! Parse errors name the field that was wrong so an operator can tell a
//! truncated upload from a file of another format. Authentication failures
//! are one variant on purpose: AES-GCM cannot tell a wrong encryption
//! context from wrong key material or altered bytes, and the error must not
//! pretend it can.

use std::fmt;
use std::path::PathBuf;

use crate::key_id::KeyId;

/// A field of one of the sealed formats (blob, wrapped data key, data-key
/// record, key-ring file), as named in parse errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The four magic bytes that identify the format.
    Magic,
    /// The format version byte.
    FormatVersion,
    /// The one-byte length of the key id.
    KeyIdLength,
    /// The key id itself.
    KeyId,
    /// The 32-bit master-key version.
    KeyVersion,
    /// The nonce used to wrap the data key.
    WrapNonce,
    /// The wrapped data key and its tag.
    WrappedKey,
    /// The 32-bit length of the sealed payload.
    PayloadLength,
    /// The nonce used to seal the payload.
    PayloadNonce,
    /// The payload ciphertext and its tag.
    Payload,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Magic => "magic",
            Field::FormatVersion => "format version",
            Field::KeyIdLength => "key id length",
            Field::KeyId => "key id",
            Field::KeyVersion => "key version",
            Field::WrapNonce => "wrap nonce",
            Field::WrappedKey => "wrapped data key",
            Field::PayloadLength => "payload length",
            Field::PayloadNonce => "payload nonce",
            Field::Payload => "payload",
        })
    }
}

/// Four magic bytes, shown with non-printable bytes escaped.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Magic(pub [u8; 4]);

impl fmt::Display for Magic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for b in self.0 {
            write!(f, "{}", std::ascii::escape_default(b))?;
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for Magic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Everything that can go wrong in the key-management service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    /// The bytes do not start with the magic of the expected format.
    #[error("bad magic: expected {expected}, found {found}")]
    BadMagic { expected: Magic, found: Magic },

    /// The format version byte names a version this build cannot read.
    #[error("unsupported sealed format version {0}")]
    UnsupportedFormatVersion(u8),

    /// The input ends inside `field`.
    #[error("truncated: input ends inside the {field}")]
    Truncated { field: Field },

    /// Bytes follow the last field of the format.
    #[error("{extra} unexpected byte(s) after the end of the sealed data")]
    TrailingBytes { extra: usize },

    /// A field is complete but holds an impossible value.
    #[error("malformed {field}: {reason}")]
    Malformed { field: Field, reason: &'static str },

    /// A key id given by the caller breaks the naming rules.
    #[error("invalid key id {id:?}: {reason}")]
    InvalidKeyId { id: String, reason: &'static str },

    /// No key of that name was ever in the ring.
    #[error("unknown key {0}")]
    UnknownKey(KeyId),

    /// The key exists but never had that version.
    #[error("key {key_id} has no version {version}")]
    UnknownKeyVersion { key_id: KeyId, version: u32 },

    /// The version was retired: its material is gone.
    #[error("key {key_id} version {version} is retired")]
    KeyVersionRetired { key_id: KeyId, version: u32 },

    /// The key was crypto-shredded: every version's material is gone.
    #[error("key {0} was destroyed")]
    KeyDestroyed(KeyId),

    /// AES-GCM rejected the input. The cause is one of: the encryption
    /// context differs from the one used to seal, the key material differs
    /// (another ring or root key), or the sealed bytes were altered. The
    /// cipher cannot tell these apart.
    #[error("authentication failed: wrong encryption context, wrong key material, or altered data")]
    AuthenticationFailed,

    /// `create_key` for a name already in the ring (destroyed keys included:
    /// a tombstone is never reused).
    #[error("key {0} already exists")]
    KeyExists(KeyId),

    /// `retire_version` while sealed data still uses the version.
    #[error("key {key_id} version {version} is still used by {blobs} sealed object(s)")]
    VersionInUse {
        key_id: KeyId,
        version: u32,
        blobs: u64,
    },

    /// `retire_version` on the version new encryptions use.
    #[error("key {key_id} version {version} is the current version; rotate before retiring it")]
    CurrentVersion { key_id: KeyId, version: u32 },

    /// The key has used every version number.
    #[error("key {0} has no version numbers left")]
    VersionLimit(KeyId),

    /// The encryption context breaks a rule (empty name, too large).
    #[error("invalid encryption context: {0}")]
    InvalidContext(String),

    /// A payload too large for the sealed formats' 32-bit length field.
    #[error("payload of {len} bytes exceeds the maximum of {max}")]
    PayloadTooLarge { len: usize, max: usize },

    /// A root key file that group or others may read or write.
    #[error(
        "root key file {} has mode {mode:04o}; it must not be accessible to group or others (chmod 600)",
        path.display()
    )]
    InsecureKeyFile { path: PathBuf, mode: u32 },

    /// A root key file that is not what `create_key_file` writes.
    #[error("root key file {}: {reason}", path.display())]
    BadKeyFile { path: PathBuf, reason: &'static str },

    /// Creating a file that must not be overwritten.
    #[error("{} already exists; refusing to overwrite it", path.display())]
    AlreadyExists { path: PathBuf },

    /// An I/O error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The passphrase does not derive the root key the parameters were made
    /// with.
    #[error("wrong passphrase")]
    WrongPassphrase,

    /// Stored or requested passphrase parameters are unusable.
    #[error("passphrase parameters: {0}")]
    PassphraseParams(String),

    /// A key ring that authenticated but does not parse. Only a bug in the
    /// writer can cause this.
    #[error("key ring content is corrupt: {0}")]
    RingCorrupt(&'static str),

    /// A timestamp before 1970 or too far in the future to store.
    #[error("timestamp out of range")]
    InvalidTime,

    /// The cryptographic library failed (random source, key setup).
    #[error("cryptographic library failure")]
    Crypto,
}

impl KmsError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        KmsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
