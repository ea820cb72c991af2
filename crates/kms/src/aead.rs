//! AES-256-GCM with library-generated random 96-bit nonces, the one cipher
//! every sealed format uses.
//!
//! Nonces come from aws-lc's randomized-nonce AEAD, so no caller can reuse
//! one by mistake. Any open failure is reported as
//! [`KmsError::AuthenticationFailed`]; key-setup and random-source failures
//! as [`KmsError::Crypto`].

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use zeroize::Zeroizing;

use crate::error::KmsError;

/// Bytes in every key: data keys, master-key versions, the root key.
pub const KEY_LEN: usize = 32;
/// Bytes in every nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes in every authentication tag.
pub const TAG_LEN: usize = 16;

/// A prepared AES-256-GCM key. aws-lc cleanses its key schedule when the
/// context is freed.
pub(crate) struct Cipher(RandomizedNonceKey);

impl Cipher {
    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Result<Self, KmsError> {
        RandomizedNonceKey::new(&AES_256_GCM, key)
            .map(Cipher)
            .map_err(|_| KmsError::Crypto)
    }

    /// Encrypts `in_out` in place and returns the fresh nonce and the tag.
    pub(crate) fn seal(
        &self,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<([u8; NONCE_LEN], [u8; TAG_LEN]), KmsError> {
        let (nonce, tag) = self
            .0
            .seal_in_place_separate_tag(Aad::from(aad), in_out)
            .map_err(|_| KmsError::Crypto)?;
        let tag: [u8; TAG_LEN] = tag.as_ref().try_into().map_err(|_| KmsError::Crypto)?;
        Ok((*nonce.as_ref(), tag))
    }

    /// Decrypts `ciphertext || tag` in place; returns the plaintext length.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, KmsError> {
        self.0
            .open_in_place(Nonce::from(nonce), Aad::from(aad), in_out)
            .map(|plain| plain.len())
            .map_err(|_| KmsError::AuthenticationFailed)
    }
}

/// A fresh key from the system random source.
pub(crate) fn random_key() -> Result<Zeroizing<[u8; KEY_LEN]>, KmsError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    aws_lc_rs::rand::fill(&mut key[..]).map_err(|_| KmsError::Crypto)?;
    Ok(key)
}

/// Random bytes for salts.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], KmsError> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| KmsError::Crypto)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_nonces_differ() {
        let c = Cipher::new(&[7; KEY_LEN]).unwrap();
        let mut a = b"hello".to_vec();
        let (n1, t1) = c.seal(b"aad", &mut a).unwrap();
        let mut b = b"hello".to_vec();
        let (n2, _) = c.seal(b"aad", &mut b).unwrap();
        assert_ne!(n1, n2);
        a.extend_from_slice(&t1);
        let mut wrong = a.clone();
        assert!(matches!(
            c.open(&n1, b"other", &mut wrong),
            Err(KmsError::AuthenticationFailed)
        ));
        let n = c.open(&n1, b"aad", &mut a).unwrap();
        assert_eq!(&a[..n], b"hello");
    }
}
