//! Secret tokens (enrollment, ownership): generated from the system's
//! secure random source, shown to the caller once, stored only as their
//! SHA-256 so that a copy of the store cannot be used to redeem them.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::RegistryError;

/// 256 bits: not guessable, whatever the number of attempts.
const TOKEN_BYTES: usize = 32;

/// A fresh token: `prefix` (naming its kind, so a leaked token is
/// recognisable) followed by 43 URL-safe base64 characters.
pub(crate) fn generate(prefix: &str) -> Result<String, RegistryError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RegistryError::Corrupt("no secure random bytes available".into()))?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The lower-case hex SHA-256 of a token: its key in the store.
pub(crate) fn hash(token: &str) -> String {
    hex::encode(digest(&SHA256, token.trim().as_bytes()))
}

/// What events show of a token: a prefix of its hash, enough to tell
/// tokens apart, useless for redeeming one.
pub(crate) fn label(hash_hex: &str) -> String {
    format!("token:{}", &hash_hex[..hash_hex.len().min(16)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hashed() {
        let a = generate("cve_").unwrap();
        let b = generate("cve_").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("cve_") && a.len() == 4 + 43);
        assert_eq!(hash(&a).len(), 64);
        assert_eq!(hash(&a), hash(&format!(" {a}\n")));
        assert_ne!(hash(&a), hash(&b));
        // SHA-256("abc")
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
