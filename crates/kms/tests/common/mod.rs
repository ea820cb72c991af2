//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use civitas_kms::{KeyId, KeyRing, RootKey};
use zeroize::Zeroizing;

/// `secs` seconds after the epoch.
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub fn id(s: &str) -> KeyId {
    KeyId::new(s).unwrap()
}

pub fn root(byte: u8) -> RootKey {
    RootKey::from_bytes(Zeroizing::new([byte; 32]))
}

/// A ring under a fixed root key holding `keys`, created at t=1000.
pub fn ring_with(keys: &[&str]) -> KeyRing {
    let mut ring = KeyRing::new(root(1));
    for k in keys {
        ring.create_key(&id(k), at(1000)).unwrap();
    }
    ring
}

/// Which field each byte offset of a sealed blob (or, with
/// `with_payload = false`, a wrapped data key) belongs to.
pub fn field_at(offset: usize, key_id_len: usize, with_payload: bool) -> civitas_kms::Field {
    use civitas_kms::Field::*;
    let bounds = [
        (4, Magic),
        (5, FormatVersion),
        (6, KeyIdLength),
        (6 + key_id_len, KeyId),
        (10 + key_id_len, KeyVersion),
        (22 + key_id_len, WrapNonce),
        (70 + key_id_len, WrappedKey),
    ];
    for (end, field) in bounds {
        if offset < end {
            return field;
        }
    }
    assert!(
        with_payload,
        "offset {offset} past the end of a wrapped key"
    );
    if offset < 74 + key_id_len {
        PayloadLength
    } else if offset < 86 + key_id_len {
        PayloadNonce
    } else {
        Payload
    }
}
