//! The sealed formats, byte by byte (see `docs/sealed-blob.md`).
//!
//! Two formats share one header: a sealed blob (`CVSB`: header, wrapped
//! data key, sealed payload) and a wrapped data key handed to callers
//! (`CVDK`: header, wrapped data key). Parsing checks the whole structure
//! before any key is looked up, so a damaged input is reported by the field
//! that is wrong rather than as a cryptographic failure.

use crate::aead::{KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::error::{Field, KmsError, Magic};
use crate::key_id::KeyId;

/// Magic of a sealed blob.
pub const BLOB_MAGIC: [u8; 4] = *b"CVSB";
/// Magic of a wrapped data key.
pub const DATA_KEY_MAGIC: [u8; 4] = *b"CVDK";
/// The only format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// A wrapped data key: the encrypted 32-byte key followed by its tag.
pub const WRAPPED_KEY_LEN: usize = KEY_LEN + TAG_LEN;
/// Largest payload a blob can carry (its length field is 32 bits and also
/// counts the tag).
pub const MAX_PLAINTEXT_LEN: usize = u32::MAX as usize - TAG_LEN;

/// Which sealed format a byte string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedKind {
    /// A sealed blob (`CVSB`), from `encrypt`.
    Blob,
    /// A wrapped data key (`CVDK`), from `generate_data_key`.
    DataKey,
}

/// What a sealed blob or wrapped data key says about itself, readable
/// without any key (for accounting: see [`crate::VersionCensus`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedHeader {
    /// The format.
    pub kind: SealedKind,
    /// The master key that wrapped the data key.
    pub key_id: KeyId,
    /// The version of that master key.
    pub key_version: u32,
}

/// Parses `bytes` as either format, checking the complete structure.
pub fn inspect(bytes: &[u8]) -> Result<SealedHeader, KmsError> {
    let (kind, wrap) = if bytes.starts_with(&DATA_KEY_MAGIC) {
        (SealedKind::DataKey, parse_data_key(bytes)?)
    } else {
        (SealedKind::Blob, parse_blob(bytes)?.wrap)
    };
    Ok(SealedHeader {
        kind,
        key_id: wrap.key_id,
        key_version: wrap.key_version,
    })
}

/// The header and wrapped data key, common to both formats.
pub(crate) struct ParsedWrap<'a> {
    /// Magic through key version: the start of the data key's AAD.
    pub(crate) header: &'a [u8],
    pub(crate) key_id: KeyId,
    pub(crate) key_version: u32,
    pub(crate) wrap_nonce: [u8; NONCE_LEN],
    pub(crate) wrapped_key: [u8; WRAPPED_KEY_LEN],
}

pub(crate) struct ParsedBlob<'a> {
    pub(crate) wrap: ParsedWrap<'a>,
    /// Everything before the payload nonce: the start of the payload's AAD.
    pub(crate) payload_prefix: &'a [u8],
    pub(crate) payload_nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the tag.
    pub(crate) payload: &'a [u8],
}

pub(crate) fn parse_blob(bytes: &[u8]) -> Result<ParsedBlob<'_>, KmsError> {
    let mut r = Reader::new(bytes);
    let wrap = read_wrap(&mut r, BLOB_MAGIC)?;
    let len = u32::from_be_bytes(r.array(Field::PayloadLength)?) as usize;
    if len < TAG_LEN {
        return Err(KmsError::Malformed {
            field: Field::PayloadLength,
            reason: "shorter than the authentication tag",
        });
    }
    let payload_prefix = r.consumed();
    let payload_nonce = r.array(Field::PayloadNonce)?;
    let payload = r.take(len, Field::Payload)?;
    r.finish()?;
    Ok(ParsedBlob {
        wrap,
        payload_prefix,
        payload_nonce,
        payload,
    })
}

pub(crate) fn parse_data_key(bytes: &[u8]) -> Result<ParsedWrap<'_>, KmsError> {
    let mut r = Reader::new(bytes);
    let wrap = read_wrap(&mut r, DATA_KEY_MAGIC)?;
    r.finish()?;
    Ok(wrap)
}

fn read_wrap<'a>(r: &mut Reader<'a>, magic: [u8; 4]) -> Result<ParsedWrap<'a>, KmsError> {
    let found: [u8; 4] = r.array(Field::Magic)?;
    if found != magic {
        return Err(KmsError::BadMagic {
            expected: Magic(magic),
            found: Magic(found),
        });
    }
    let [version] = r.array(Field::FormatVersion)?;
    if version != FORMAT_VERSION {
        return Err(KmsError::UnsupportedFormatVersion(version));
    }
    let [id_len] = r.array(Field::KeyIdLength)?;
    if id_len == 0 || usize::from(id_len) > crate::key_id::MAX_KEY_ID_LEN {
        return Err(KmsError::Malformed {
            field: Field::KeyIdLength,
            reason: "must be 1 to 128",
        });
    }
    let id = r.take(usize::from(id_len), Field::KeyId)?;
    let key_id = KeyId::from_wire(id).map_err(|reason| KmsError::Malformed {
        field: Field::KeyId,
        reason,
    })?;
    let key_version = u32::from_be_bytes(r.array(Field::KeyVersion)?);
    let header = r.consumed();
    let wrap_nonce = r.array(Field::WrapNonce)?;
    let wrapped_key = r.array(Field::WrappedKey)?;
    Ok(ParsedWrap {
        header,
        key_id,
        key_version,
        wrap_nonce,
        wrapped_key,
    })
}

/// Appends magic, format version, key id and key version.
pub(crate) fn write_header(out: &mut Vec<u8>, magic: [u8; 4], key_id: &KeyId, version: u32) {
    out.extend_from_slice(&magic);
    out.push(FORMAT_VERSION);
    // KeyId guarantees 1..=128 bytes.
    out.push(key_id.as_str().len() as u8);
    out.extend_from_slice(key_id.as_str().as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
}

/// Length of the header for `key_id`.
pub(crate) fn header_len(key_id: &KeyId) -> usize {
    4 + 1 + 1 + key_id.as_str().len() + 4
}

/// Length of a whole blob for `key_id` and a plaintext of `plaintext_len`.
pub(crate) fn blob_len(key_id: &KeyId, plaintext_len: usize) -> usize {
    header_len(key_id) + NONCE_LEN + WRAPPED_KEY_LEN + 4 + NONCE_LEN + plaintext_len + TAG_LEN
}

/// A cursor that names the field it was reading when the input ran out.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn take(&mut self, n: usize, field: Field) -> Result<&'a [u8], KmsError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < n {
            return Err(KmsError::Truncated { field });
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    pub(crate) fn array<const N: usize>(&mut self, field: Field) -> Result<[u8; N], KmsError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// The bytes read so far.
    pub(crate) fn consumed(&self) -> &'a [u8] {
        &self.buf[..self.pos]
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn finish(&self) -> Result<(), KmsError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            extra => Err(KmsError::TrailingBytes { extra }),
        }
    }
}
