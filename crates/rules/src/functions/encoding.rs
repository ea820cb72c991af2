//! Encoding and hashing: `encode(value, 'base64')` (with `*`, the raw
//! payload bytes), `decode(value, 'base64')`, and the hashes `md5`, `sha1`,
//! `sha224`, `sha256`, `sha384`, `sha512` as lowercase hex of the UTF-8
//! string form. SHA digests come from aws-lc-rs, the tree's one crypto
//! library; MD5, which it does not offer, from `md-5`.

use crate::value::Value;
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::Digest as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashAlg {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// `name` is one the resolver matched.
    pub(crate) fn from_name(name: &str) -> HashAlg {
        match name {
            "md5" => HashAlg::Md5,
            "sha1" => HashAlg::Sha1,
            "sha224" => HashAlg::Sha224,
            "sha384" => HashAlg::Sha384,
            "sha512" => HashAlg::Sha512,
            _ => HashAlg::Sha256,
        }
    }
}

pub(super) fn base64(bytes: &[u8]) -> Value {
    Value::String(STANDARD.encode(bytes))
}

pub(super) fn encode(v: &Value) -> Value {
    v.to_sql_string()
        .map_or(Value::Undefined, |s| base64(s.as_bytes()))
}

/// A decoded JSON document becomes a value that paths can read; other
/// decoded text stays a string; what does not decode is `Null`, as AWS
/// documents.
pub(super) fn decode(v: &Value) -> Value {
    let Some(text) = v.to_sql_string() else {
        return Value::Undefined;
    };
    let Ok(bytes) = STANDARD.decode(text.trim()) else {
        return Value::Null;
    };
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        return Value::from_json_owned(json);
    }
    String::from_utf8(bytes).map_or(Value::Null, Value::String)
}

pub(super) fn hash(alg: HashAlg, v: &Value) -> Value {
    let Some(s) = v.to_sql_string() else {
        return Value::Undefined;
    };
    let data = s.as_bytes();
    let sha = |a: &'static digest::Algorithm| hex(digest::digest(a, data).as_ref());
    Value::String(match alg {
        HashAlg::Md5 => hex(&md5::Md5::digest(data)),
        HashAlg::Sha1 => sha(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        HashAlg::Sha224 => sha(&digest::SHA224),
        HashAlg::Sha256 => sha(&digest::SHA256),
        HashAlg::Sha384 => sha(&digest::SHA384),
        HashAlg::Sha512 => sha(&digest::SHA512),
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}
