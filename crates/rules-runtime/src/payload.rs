//! How payload bytes appear in reports (`rule test`, error documents):
//! as text when they are UTF-8, which JSON payloads are, else as
//! `{"base64": …}`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Serializer;
use serde::ser::SerializeMap;

pub(crate) fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => s.serialize_str(text),
        Err(_) => {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry("base64", &STANDARD.encode(bytes))?;
            map.end()
        }
    }
}

pub(crate) fn serialize_opt<S: Serializer>(bytes: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => serialize(b, s),
        None => s.serialize_none(),
    }
}

/// Standard base64, as AWS writes `base64OriginalPayload`.
pub(crate) fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}
