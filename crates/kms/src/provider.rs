//! The key-provider abstraction.
//!
//! Everything that needs keys talks to a [`KeyProvider`], so the local ring
//! can later be replaced by AWS KMS or Vault's transit engine without the
//! callers changing. Wrapped data keys and blobs are opaque to callers;
//! each provider defines their bytes (the local ring's are in
//! `docs/sealed-blob.md`).

use zeroize::Zeroizing;

use crate::context::EncryptionContext;
use crate::envelope::DataKey;
use crate::error::KmsError;
use crate::key_id::KeyId;
use crate::ring::KeyRing;

/// Envelope-encryption operations of a key-management service.
pub trait KeyProvider: Send + Sync {
    /// A fresh data key, wrapped under the current version of `key_id`
    /// with `ctx` bound to it.
    fn generate_data_key(
        &self,
        key_id: &KeyId,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError>;

    /// The plaintext of a wrapped data key; `ctx` must match exactly.
    fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError>;

    /// The same data key wrapped under the current version of `to_key_id`.
    fn rewrap_data_key(
        &self,
        wrapped: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &KeyId,
    ) -> Result<Vec<u8>, KmsError>;

    /// `plaintext` sealed under a fresh data key wrapped by `key_id`.
    fn encrypt(
        &self,
        key_id: &KeyId,
        plaintext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<Vec<u8>, KmsError>;

    /// The plaintext of a sealed blob; `ctx` must match exactly.
    fn decrypt(&self, blob: &[u8], ctx: &EncryptionContext)
    -> Result<Zeroizing<Vec<u8>>, KmsError>;

    /// A sealed blob moved to the current version of `to_key_id`.
    fn re_encrypt(
        &self,
        blob: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &KeyId,
    ) -> Result<Vec<u8>, KmsError>;
}

impl KeyProvider for KeyRing {
    fn generate_data_key(
        &self,
        key_id: &KeyId,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        KeyRing::generate_data_key(self, key_id, ctx)
    }

    fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        KeyRing::decrypt_data_key(self, wrapped, ctx)
    }

    fn rewrap_data_key(
        &self,
        wrapped: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &KeyId,
    ) -> Result<Vec<u8>, KmsError> {
        KeyRing::rewrap_data_key(self, wrapped, ctx, to_key_id)
    }

    fn encrypt(
        &self,
        key_id: &KeyId,
        plaintext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<Vec<u8>, KmsError> {
        KeyRing::encrypt(self, key_id, plaintext, ctx)
    }

    fn decrypt(
        &self,
        blob: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        KeyRing::decrypt(self, blob, ctx)
    }

    fn re_encrypt(
        &self,
        blob: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &KeyId,
    ) -> Result<Vec<u8>, KmsError> {
        KeyRing::re_encrypt(self, blob, ctx, to_key_id)
    }
}
