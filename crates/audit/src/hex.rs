//! Lowercase hexadecimal, the only form digests, keys and signatures take
//! in the log and in exported checkpoints.

/// Lowercase digits, as the workspace's one hex encoder writes them.
pub(crate) fn encode(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// Exactly `N` bytes from `2N` lowercase hex digits; anything else
/// (uppercase included) is refused, so every value has one spelling.
pub(crate) fn decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    let digits = s.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Serde helpers for fixed-size byte arrays as hex strings.
pub(crate) mod serde_array {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        super::decode(&s)
            .ok_or_else(|| D::Error::custom(format!("expected {} lowercase hex digits", 2 * N)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_spellings() {
        let bytes = [0x00, 0xab, 0xff, 0x10];
        assert_eq!(encode(&bytes), "00abff10");
        assert_eq!(decode::<4>("00abff10"), Some(bytes));
        assert_eq!(decode::<4>("00ABFF10"), None);
        assert_eq!(decode::<4>("00abff1"), None);
        assert_eq!(decode::<4>("00abff1g"), None);
    }
}
