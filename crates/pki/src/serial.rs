//! Certificate serial numbers: generation and the one hex spelling used
//! everywhere (CA state, CRL, peer identity), so a serial read from a TLS
//! peer compares equal to the one recorded at issuance or revocation.

use crate::error::PkiError;

/// RFC 5280 caps serials at 20 octets.
const MAX_SERIAL_LEN: usize = 20;

/// A fresh positive 16-byte serial number.
///
/// The top bit is cleared so the DER INTEGER stays positive without a padding
/// byte, and the next bit is set so the value always has exactly 16 octets
/// (126 random bits): its hex form is then always 32 digits.
pub(crate) fn random_serial() -> Result<[u8; 16], PkiError> {
    let mut bytes = [0u8; 16];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| PkiError::Crypto("no secure random bytes available".into()))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(bytes)
}

/// Lower-case hex of the serial's magnitude, without leading zero octets.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let trimmed = &bytes[start..];
    if trimmed.is_empty() {
        return "00".to_owned();
    }
    hex::encode(trimmed)
}

/// Parses a serial written by us or by common tools: hex digits, optionally
/// separated by `:` (openssl style), any case, leading zeros allowed.
/// Returns the canonical octets (no leading zero octets).
pub(crate) fn parse_hex(serial: &str) -> Result<Vec<u8>, PkiError> {
    let invalid = |reason: &str| PkiError::InvalidSerial {
        serial: serial.to_owned(),
        reason: reason.to_owned(),
    };
    let digits: String = serial.trim().chars().filter(|&c| c != ':').collect();
    if digits.is_empty() {
        return Err(invalid("empty"));
    }
    if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid("not hexadecimal"));
    }
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Err(invalid("serial numbers must be positive"));
    }
    let padded = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits.to_owned()
    };
    let bytes = (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid("not hexadecimal"))?;
    if bytes.len() > MAX_SERIAL_LEN {
        return Err(invalid("longer than 20 octets"));
    }
    Ok(bytes)
}

/// The canonical hex spelling of a serial given in any accepted spelling.
pub fn normalize_serial_hex(serial: &str) -> Result<String, PkiError> {
    Ok(to_hex(&parse_hex(serial)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_and_full_length() {
        for _ in 0..64 {
            let s = random_serial().unwrap();
            assert_eq!(s[0] & 0xc0, 0x40);
            assert_eq!(to_hex(&s).len(), 32);
        }
    }

    #[test]
    fn hex_spellings_normalize_to_one_form() {
        assert_eq!(normalize_serial_hex("0A:bc:01").unwrap(), "0abc01");
        assert_eq!(normalize_serial_hex("00ABC01").unwrap(), "0abc01");
        assert_eq!(normalize_serial_hex("7f").unwrap(), "7f");
        assert!(normalize_serial_hex("").is_err());
        assert!(normalize_serial_hex("00").is_err());
        assert!(normalize_serial_hex("xyz").is_err());
        assert!(normalize_serial_hex(&"ff".repeat(21)).is_err());
    }
}
