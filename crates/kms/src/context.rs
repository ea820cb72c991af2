//! Encryption context: the string-to-string map bound to every data key and
//! payload as additional authenticated data.
//!
//! Two contexts with the same pairs must produce the same bytes whatever
//! order they were built in, and no two different maps may produce the same
//! bytes, so the canonical form sorts pairs by name (byte order) and
//! length-prefixes every string. The context is not secret; it is meant to
//! say what the data is (`device=lamp-1`, `purpose=telemetry`).

use std::collections::BTreeMap;
use std::fmt;

use crate::error::KmsError;

/// Largest canonical encoding accepted, in bytes (the limit AWS KMS puts on
/// its encryption context as well).
pub const MAX_CONTEXT_BYTES: usize = 8192;

/// A set of name/value pairs that must match exactly at decryption.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// An empty context (binds nothing beyond the key).
    pub fn new() -> Self {
        Self::default()
    }

    /// The context with `name` set to `value`.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }

    /// Sets `name` to `value`, returning the previous value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(name.into(), value.into())
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The pairs in canonical (sorted) order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no pair is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The canonical encoding, as bound into the AEAD associated data:
    /// `u32` pair count, then for each pair in ascending byte order of the
    /// name: `u32` name length, name, `u32` value length, value (all
    /// integers big-endian, strings UTF-8).
    ///
    /// Fails for an empty name or an encoding over [`MAX_CONTEXT_BYTES`].
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, KmsError> {
        let mut size = 4usize;
        for (k, v) in &self.0 {
            if k.is_empty() {
                return Err(KmsError::InvalidContext("empty name".into()));
            }
            size = size.saturating_add(8 + k.len() + v.len());
        }
        if size > MAX_CONTEXT_BYTES {
            return Err(KmsError::InvalidContext(format!(
                "encodes to {size} bytes, more than {MAX_CONTEXT_BYTES}"
            )));
        }
        // Every length is below MAX_CONTEXT_BYTES here, so the casts are exact.
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&(self.0.len() as u32).to_be_bytes());
        for (k, v) in &self.0 {
            out.extend_from_slice(&(k.len() as u32).to_be_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        Ok(out)
    }
}

impl fmt::Debug for EncryptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EncryptionContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        EncryptionContext(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> From<[(K, V); N]> for EncryptionContext {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_exact_and_order_independent() {
        let a = EncryptionContext::new().with("b", "2").with("a", "xy");
        let b = EncryptionContext::from([("a", "xy"), ("b", "2")]);
        let expected: &[u8] = &[
            0, 0, 0, 2, // pairs
            0, 0, 0, 1, b'a', 0, 0, 0, 2, b'x', b'y', //
            0, 0, 0, 1, b'b', 0, 0, 0, 1, b'2',
        ];
        assert_eq!(a.canonical_bytes().unwrap(), expected);
        assert_eq!(b.canonical_bytes().unwrap(), expected);
    }

    #[test]
    fn empty_context_is_a_zero_count() {
        assert_eq!(
            EncryptionContext::new().canonical_bytes().unwrap(),
            [0, 0, 0, 0]
        );
    }

    #[test]
    fn boundaries_between_strings_are_unambiguous() {
        let a = EncryptionContext::from([("ab", "c")]);
        let b = EncryptionContext::from([("a", "bc")]);
        assert_ne!(a.canonical_bytes().unwrap(), b.canonical_bytes().unwrap());
    }

    #[test]
    fn sorts_by_bytes_not_by_locale() {
        let ctx = EncryptionContext::from([("a", ""), ("B", ""), ("é", "")]);
        let names: Vec<_> = ctx.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["B", "a", "é"]);
    }

    #[test]
    fn rejects_empty_names_and_oversized_contexts() {
        assert!(matches!(
            EncryptionContext::from([("", "x")]).canonical_bytes(),
            Err(KmsError::InvalidContext(_))
        ));
        let big = EncryptionContext::from([("k", "v".repeat(MAX_CONTEXT_BYTES))]);
        assert!(matches!(
            big.canonical_bytes(),
            Err(KmsError::InvalidContext(_))
        ));
    }
}
