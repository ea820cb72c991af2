//! Envelope encryption, as AWS KMS does it.
//!
//! Each `encrypt` draws a fresh 256-bit data key, seals the payload with it
//! and wraps it under the newest version of the named master key, both with
//! AES-256-GCM and random nonces. The encryption context's canonical bytes
//! are part of the associated data of both operations, so a blob opens only
//! with the exact context it was sealed with. Callers that seal many small
//! records (telemetry blocks) take a [`DataKey`] from `generate_data_key`
//! instead, store its wrapped form once, and seal each record with a
//! [`RecordCipher`].

use std::fmt;

use zeroize::Zeroizing;

use crate::aead::{Cipher, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::blob::{
    self, BLOB_MAGIC, DATA_KEY_MAGIC, MAX_PLAINTEXT_LEN, WRAPPED_KEY_LEN, parse_blob,
    parse_data_key,
};
use crate::context::EncryptionContext;
use crate::error::{Field, KmsError};
use crate::key_id::KeyId;
use crate::ring::{KeyRing, Version};
use crate::usage::Op;

/// A data key: the plaintext for the caller to use and forget, and the same
/// key wrapped under a master key (a `CVDK` object) to store beside the
/// data.
pub struct DataKey {
    /// The key itself; zeroized on drop.
    pub plaintext: Zeroizing<[u8; KEY_LEN]>,
    /// The wrapped key, for [`KeyRing::decrypt_data_key`].
    pub wrapped: Vec<u8>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &"<redacted>")
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

impl DataKey {
    /// A prepared cipher for sealing or opening many records under this
    /// key.
    pub fn record_cipher(&self) -> Result<RecordCipher, KmsError> {
        Cipher::new(&self.plaintext).map(RecordCipher)
    }
}

/// AES-256-GCM under a data key, for records of the caller's own framing:
/// a record is `nonce (12) || ciphertext || tag (16)`. Nonces are random,
/// so keep to well under 2^32 records per data key (a key per block of
/// readings is far below that).
pub struct RecordCipher(Cipher);

impl fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordCipher(<redacted>)")
    }
}

impl RecordCipher {
    /// Seals `plaintext`, authenticating `aad` (e.g. device and timestamp)
    /// along with it.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KmsError> {
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&[0; NONCE_LEN]);
        out.extend_from_slice(plaintext);
        let (nonce, tag) = self.0.seal(aad, &mut out[NONCE_LEN..])?;
        out[..NONCE_LEN].copy_from_slice(&nonce);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a record from [`RecordCipher::seal`] with the same `aad`.
    pub fn open(&self, record: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let (nonce, sealed) =
            record
                .split_first_chunk::<NONCE_LEN>()
                .ok_or(KmsError::Truncated {
                    field: Field::PayloadNonce,
                })?;
        if sealed.len() < TAG_LEN {
            return Err(KmsError::Truncated {
                field: Field::Payload,
            });
        }
        let mut plain = Zeroizing::new(sealed.to_vec());
        let len = self.0.open(nonce, aad, &mut plain)?;
        plain.truncate(len);
        Ok(plain)
    }
}

impl KeyRing {
    /// A fresh data key, wrapped under the newest version of `key_id` with
    /// `ctx` bound to it.
    pub fn generate_data_key(
        &self,
        key_id: &KeyId,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        let ctx = ctx.canonical_bytes()?;
        let (number, version) = self.current(key_id)?;
        let plaintext = crate::aead::random_key()?;
        let mut wrapped =
            Vec::with_capacity(blob::header_len(key_id) + NONCE_LEN + WRAPPED_KEY_LEN);
        blob::write_header(&mut wrapped, DATA_KEY_MAGIC, key_id, number);
        wrap_into(&mut wrapped, version, &plaintext, &ctx)?;
        version.usage.record(Op::GenerateDataKey);
        Ok(DataKey { plaintext, wrapped })
    }

    /// Unwraps a data key from [`KeyRing::generate_data_key`]; `ctx` must be
    /// the context it was generated with.
    pub fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        let ctx = ctx.canonical_bytes()?;
        let parsed = parse_data_key(wrapped)?;
        let plaintext = self.unwrap_key(&parsed, &ctx, Op::DecryptDataKey)?;
        Ok(DataKey {
            plaintext,
            wrapped: wrapped.to_vec(),
        })
    }

    /// Re-wraps a data key under the newest version of `to_key_id` (same
    /// context); the data it sealed stays as it is.
    pub fn rewrap_data_key(
        &self,
        wrapped: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &KeyId,
    ) -> Result<Vec<u8>, KmsError> {
        let ctx = ctx.canonical_bytes()?;
        let parsed = parse_data_key(wrapped)?;
        let (number, version) = self.current(to_key_id)?;
        let plaintext = self.unwrap_key(&parsed, &ctx, Op::DecryptDataKey)?;
        let mut out = Vec::with_capacity(blob::header_len(to_key_id) + NONCE_LEN + WRAPPED_KEY_LEN);
        blob::write_header(&mut out, DATA_KEY_MAGIC, to_key_id, number);
        wrap_into(&mut out, version, &plaintext, &ctx)?;
        version.usage.record(Op::RewrapDataKey);
        Ok(out)
    }

    /// Seals `plaintext` into a blob under a fresh data key wrapped by the
    /// newest version of `key_id`.
    pub fn encrypt(
        &self,
        key_id: &KeyId,
        plaintext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<Vec<u8>, KmsError> {
        let ctx = ctx.canonical_bytes()?;
        self.encrypt_canonical(key_id, plaintext, &ctx)
    }

    /// Opens a blob from [`KeyRing::encrypt`]; `ctx` must be the context it
    /// was sealed with.
    pub fn decrypt(
        &self,
        blob: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let ctx = ctx.canonical_bytes()?;
        self.decrypt_canonical(blob, &ctx)
    }

    /// Opens `blob` and seals its plaintext again under the newest version
    /// of `to_key_id` (which may be the blob's own key, to move it forward
    /// after a rotation), with the same context and a new data key.
    pub fn re_encrypt(
        &self,
        blob: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &KeyId,
    ) -> Result<Vec<u8>, KmsError> {
        let ctx = ctx.canonical_bytes()?;
        // Fail before opening if the destination cannot take new data.
        self.current(to_key_id)?;
        let plaintext = self.decrypt_canonical(blob, &ctx)?;
        self.encrypt_canonical(to_key_id, &plaintext, &ctx)
    }

    fn encrypt_canonical(
        &self,
        key_id: &KeyId,
        plaintext: &[u8],
        ctx: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(KmsError::PayloadTooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        let (number, version) = self.current(key_id)?;
        let data_key = crate::aead::random_key()?;
        let mut out = Vec::with_capacity(blob::blob_len(key_id, plaintext.len()));
        blob::write_header(&mut out, BLOB_MAGIC, key_id, number);
        wrap_into(&mut out, version, &data_key, ctx)?;
        // Checked against MAX_PLAINTEXT_LEN above.
        out.extend_from_slice(&((plaintext.len() + TAG_LEN) as u32).to_be_bytes());
        let aad = concat(&out, ctx);
        let nonce_at = out.len();
        out.extend_from_slice(&[0; NONCE_LEN]);
        out.extend_from_slice(plaintext);
        let (nonce, tag) = Cipher::new(&data_key)?.seal(&aad, &mut out[nonce_at + NONCE_LEN..])?;
        out[nonce_at..nonce_at + NONCE_LEN].copy_from_slice(&nonce);
        out.extend_from_slice(&tag);
        version.usage.record(Op::Encrypt);
        Ok(out)
    }

    fn decrypt_canonical(&self, blob: &[u8], ctx: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let parsed = parse_blob(blob)?;
        let data_key = self.unwrap_key(&parsed.wrap, ctx, Op::Decrypt)?;
        let aad = concat(parsed.payload_prefix, ctx);
        let mut plain = Zeroizing::new(parsed.payload.to_vec());
        let opened = Cipher::new(&data_key)?.open(&parsed.payload_nonce, &aad, &mut plain);
        let len = self.count_auth(&parsed.wrap.key_id, parsed.wrap.key_version, opened)?;
        plain.truncate(len);
        Ok(plain)
    }

    /// Unwraps the data key of a parsed header, counting `op` on success.
    fn unwrap_key(
        &self,
        wrap: &blob::ParsedWrap<'_>,
        ctx: &[u8],
        op: Op,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, KmsError> {
        let (version, material) = self.material(&wrap.key_id, wrap.key_version)?;
        let aad = concat(wrap.header, ctx);
        let mut key = Zeroizing::new(wrap.wrapped_key);
        let opened = Cipher::new(material)?.open(&wrap.wrap_nonce, &aad, &mut key[..]);
        let len = self.count_auth(&wrap.key_id, wrap.key_version, opened)?;
        if len != KEY_LEN {
            return Err(KmsError::Crypto);
        }
        let mut plaintext = Zeroizing::new([0u8; KEY_LEN]);
        plaintext.copy_from_slice(&key[..KEY_LEN]);
        version.usage.record(op);
        Ok(plaintext)
    }

    /// Counts an authentication failure against the version the input
    /// named, and passes the result on.
    fn count_auth<T>(
        &self,
        key_id: &KeyId,
        version: u32,
        result: Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        if let Err(KmsError::AuthenticationFailed) = &result
            && let Some(v) = self.version(key_id, version)
        {
            v.usage.record(Op::AuthenticationFailure);
        }
        result
    }
}

/// Appends wrap nonce and wrapped key: `data_key` sealed under `version`
/// with the header written so far plus the context as associated data.
fn wrap_into(
    out: &mut Vec<u8>,
    version: &Version,
    data_key: &[u8; KEY_LEN],
    ctx: &[u8],
) -> Result<(), KmsError> {
    let material = version
        .material
        .as_ref()
        .ok_or(KmsError::RingCorrupt("current version has no material"))?;
    let aad = concat(out, ctx);
    let mut buf = Zeroizing::new([0u8; WRAPPED_KEY_LEN]);
    buf[..KEY_LEN].copy_from_slice(data_key);
    let (nonce, tag) = Cipher::new(material)?.seal(&aad, &mut buf[..KEY_LEN])?;
    buf[KEY_LEN..].copy_from_slice(&tag);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf[..]);
    Ok(())
}

fn concat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out
}
