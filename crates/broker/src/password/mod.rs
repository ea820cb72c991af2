//! Username and password credentials for `auth = "password"` listeners.
//!
//! civitas issues the passwords itself (long random strings, never chosen
//! by a person) and keeps only Argon2id hashes, in PHC form, one
//! `username:hash` per line of the credential file `DATA_DIR/passwords`.
//! [`PasswordFile`] edits that file for the command line, atomically and
//! under a lock; [`Credentials`] is the broker's live copy, re-read when
//! the file changes. A file that does not parse never replaces working
//! credentials. Verification costs tens of milliseconds of CPU by design,
//! so the broker runs it on the blocking pool, a bounded number at a time.

mod credentials;
mod file;

use std::path::{Path, PathBuf};

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHasher};
use rand::TryRngCore;
use rand::rngs::OsRng;

pub use credentials::Credentials;
pub(crate) use credentials::{PasswordCheck, Verdict};
pub use file::PasswordFile;

/// The credential file's name inside the data directory.
pub const FILE_NAME: &str = "passwords";

/// Length of a generated password: 32 characters from 62 give about 190
/// bits, far beyond guessing even without the hash's cost.
const PASSWORD_LEN: usize = 32;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("invalid username {0:?}: use 1 to 64 characters from A-Z a-z 0-9 _ . : -")]
    Username(String),
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PasswordError + '_ {
    move |source| PasswordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// 1 to 64 characters from `[A-Za-z0-9_.:-]`.
pub fn validate_username(name: &str) -> Result<(), PasswordError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(PasswordError::Username(name.to_string()))
    }
}

/// A new random password from the operating system's generator.
pub fn generate_password() -> Result<String, PasswordError> {
    let mut out = String::with_capacity(PASSWORD_LEN);
    let mut buf = [0u8; 64];
    while out.len() < PASSWORD_LEN {
        OsRng
            .try_fill_bytes(&mut buf)
            .map_err(|e| PasswordError::Random(e.to_string()))?;
        // Rejection sampling keeps every character equally likely.
        let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
        for &b in buf
            .iter()
            .filter(|&&b| b < limit)
            .take(PASSWORD_LEN - out.len())
        {
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// The Argon2id PHC string for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| PasswordError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["gw-1", "a", "Gate_way.01:north", &"x".repeat(64)] {
            validate_username(ok).unwrap();
        }
        for bad in ["", "a b", "über", "a/b", "a$", &"x".repeat(65)] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_distinct() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), PASSWORD_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
