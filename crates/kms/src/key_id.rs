//! Names of master keys.
//!
//! A key id is written into every sealed blob and may later name a file or
//! a database key, so the alphabet is small and path-safe: one or more
//! `/`-separated segments of ASCII letters, digits, `-`, `_`, `.` and `:`,
//! with no empty, `.` or `..` segment, at most 128 bytes in all.

use std::fmt;
use std::str::FromStr;

use crate::error::KmsError;

/// Longest key id, in bytes; it must fit the one-byte length prefix of the
/// sealed formats.
pub const MAX_KEY_ID_LEN: usize = 128;

/// The name of a master key, e.g. `telemetry` or `device/lamp-1`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// Validates `id` against the naming rules.
    pub fn new(id: impl Into<String>) -> Result<KeyId, KmsError> {
        let id = id.into();
        match check(&id) {
            Ok(()) => Ok(KeyId(id)),
            Err(reason) => Err(KmsError::InvalidKeyId { id, reason }),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses a key id read from sealed bytes; the reason names the rule
    /// broken.
    pub(crate) fn from_wire(bytes: &[u8]) -> Result<KeyId, &'static str> {
        let s = std::str::from_utf8(bytes).map_err(|_| "not UTF-8")?;
        check(s)?;
        Ok(KeyId(s.to_owned()))
    }
}

fn check(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("empty");
    }
    if id.len() > MAX_KEY_ID_LEN {
        return Err("longer than 128 bytes");
    }
    for segment in id.split('/') {
        if segment.is_empty() {
            return Err("empty path segment");
        }
        if segment == "." || segment == ".." {
            return Err("`.` and `..` segments are not allowed");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err("only ASCII letters, digits, `-`, `_`, `.`, `:` and `/` are allowed");
        }
    }
    Ok(())
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:?})", self.0)
    }
}

impl FromStr for KeyId {
    type Err = KmsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyId::new(s)
    }
}

impl AsRef<str> for KeyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_nested_names() {
        for ok in [
            "telemetry",
            "device/lamp-1",
            "a",
            "x.y:z_1/B-2",
            &"k".repeat(128),
        ] {
            assert!(KeyId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_names_outside_the_rules() {
        for bad in [
            "",
            "/lead",
            "trail/",
            "a//b",
            "a/../b",
            ".",
            "sp ace",
            "ümlaut",
            "nul\0",
            &"k".repeat(129),
        ] {
            assert!(
                matches!(KeyId::new(bad), Err(KmsError::InvalidKeyId { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn wire_form_rejects_invalid_utf8() {
        assert_eq!(KeyId::from_wire(&[0xff]), Err("not UTF-8"));
        assert_eq!(KeyId::from_wire(b"ok").map(|k| k.0), Ok("ok".to_owned()));
    }
}
