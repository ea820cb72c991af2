//! Every way a sealed blob or wrapped data key can be wrong fails with the
//! error that names it.

mod common;

use civitas_kms::{EncryptionContext, Field, KmsError, inspect};
use common::{field_at, id, ring_with};

fn ctx() -> EncryptionContext {
    EncryptionContext::from([("device", "lamp-1"), ("purpose", "telemetry")])
}

#[test]
fn round_trip_and_header_inspection() {
    let ring = ring_with(&["telemetry"]);
    let blob = ring.encrypt(&id("telemetry"), b"21.5C", &ctx()).unwrap();
    assert_eq!(&blob[..4], b"CVSB");
    assert_eq!(blob.len(), 86 + 9 + 5 + 16);
    let header = inspect(&blob).unwrap();
    assert_eq!(header.key_id, id("telemetry"));
    assert_eq!(header.key_version, 1);
    assert_eq!(&ring.decrypt(&blob, &ctx()).unwrap()[..], b"21.5C");
}

#[test]
fn blob_layout_matches_the_documented_offsets() {
    let ring = ring_with(&["telemetry"]);
    let blob = ring.encrypt(&id("telemetry"), b"21.5C", &ctx()).unwrap();
    assert_eq!(&blob[0..4], b"CVSB");
    assert_eq!(blob[4], 1, "format version");
    assert_eq!(blob[5], 9, "key id length");
    assert_eq!(&blob[6..15], b"telemetry");
    assert_eq!(&blob[15..19], &[0, 0, 0, 1], "key version");
    // 19..31 wrap nonce, 31..79 wrapped data key and tag.
    assert_eq!(&blob[79..83], &[0, 0, 0, 5 + 16], "payload length");
    // 83..95 payload nonce, then ciphertext and tag.
    assert_eq!(blob.len(), 95 + 5 + 16);
    assert_ne!(&blob[95..100], b"21.5C");
}

#[test]
fn wrong_context_fails_authentication() {
    let ring = ring_with(&["telemetry"]);
    let blob = ring.encrypt(&id("telemetry"), b"x", &ctx()).unwrap();
    for wrong in [
        EncryptionContext::new(),
        ctx().with("device", "lamp-2"),
        ctx().with("extra", ""),
        EncryptionContext::from([("device", "lamp-1")]),
    ] {
        assert!(
            matches!(
                ring.decrypt(&blob, &wrong),
                Err(KmsError::AuthenticationFailed)
            ),
            "{wrong:?}"
        );
    }
}

#[test]
fn wrong_key_material_fails_authentication() {
    let ring = ring_with(&["telemetry"]);
    // Same name, same version number, different material.
    let other = ring_with(&["telemetry"]);
    let blob = ring.encrypt(&id("telemetry"), b"x", &ctx()).unwrap();
    assert!(matches!(
        other.decrypt(&blob, &ctx()),
        Err(KmsError::AuthenticationFailed)
    ));
    let dk = ring.generate_data_key(&id("telemetry"), &ctx()).unwrap();
    assert!(matches!(
        other.decrypt_data_key(&dk.wrapped, &ctx()),
        Err(KmsError::AuthenticationFailed)
    ));
}

#[test]
fn unknown_key_in_blob() {
    let ring = ring_with(&["telemetry"]);
    let other = ring_with(&["billing"]);
    let blob = ring.encrypt(&id("telemetry"), b"x", &ctx()).unwrap();
    match other.decrypt(&blob, &ctx()) {
        Err(KmsError::UnknownKey(k)) => assert_eq!(k, id("telemetry")),
        r => panic!("{r:?}"),
    }
}

#[test]
fn flipping_any_bit_fails_with_the_error_of_its_field() {
    let ring = ring_with(&["telemetry"]);
    let blob = ring
        .encrypt(&id("telemetry"), b"reading 42", &ctx())
        .unwrap();
    for pos in 0..blob.len() {
        for bit in 0..8 {
            let mut bad = blob.clone();
            bad[pos] ^= 1 << bit;
            let err = ring.decrypt(&bad, &ctx()).unwrap_err();
            let field = field_at(pos, 9, true);
            let ok = match field {
                Field::Magic => matches!(err, KmsError::BadMagic { .. }),
                Field::FormatVersion => {
                    matches!(err, KmsError::UnsupportedFormatVersion(v) if v == 1 ^ (1 << bit))
                }
                // A different length re-frames everything after it.
                Field::KeyIdLength => matches!(
                    err,
                    KmsError::Malformed { .. }
                        | KmsError::Truncated { .. }
                        | KmsError::TrailingBytes { .. }
                        | KmsError::UnknownKey(_)
                ),
                Field::KeyId => matches!(
                    err,
                    KmsError::UnknownKey(_)
                        | KmsError::Malformed {
                            field: Field::KeyId,
                            ..
                        }
                ),
                Field::KeyVersion => matches!(
                    err,
                    KmsError::UnknownKeyVersion { version, .. } if version == 1 ^ (1 << (bit + 8 * (18 - pos)))
                ),
                Field::PayloadLength => matches!(
                    err,
                    KmsError::Truncated {
                        field: Field::Payload
                    } | KmsError::TrailingBytes { .. }
                        | KmsError::Malformed {
                            field: Field::PayloadLength,
                            ..
                        }
                ),
                Field::WrapNonce | Field::WrappedKey | Field::PayloadNonce | Field::Payload => {
                    matches!(err, KmsError::AuthenticationFailed)
                }
            };
            assert!(ok, "byte {pos} ({field}) bit {bit}: {err:?}");
        }
    }
}

#[test]
fn truncating_at_every_length_names_the_field_cut() {
    let ring = ring_with(&["telemetry"]);
    let blob = ring
        .encrypt(&id("telemetry"), b"reading 42", &ctx())
        .unwrap();
    for len in 0..blob.len() {
        match ring.decrypt(&blob[..len], &ctx()) {
            Err(KmsError::Truncated { field }) => {
                assert_eq!(field, field_at(len, 9, true), "cut at {len}")
            }
            r => panic!("cut at {len}: {r:?}"),
        }
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let ring = ring_with(&["telemetry"]);
    let mut blob = ring.encrypt(&id("telemetry"), b"x", &ctx()).unwrap();
    blob.extend_from_slice(b"??");
    assert!(matches!(
        ring.decrypt(&blob, &ctx()),
        Err(KmsError::TrailingBytes { extra: 2 })
    ));
}

#[test]
fn unknown_format_version_is_named() {
    let ring = ring_with(&["telemetry"]);
    let mut blob = ring.encrypt(&id("telemetry"), b"x", &ctx()).unwrap();
    blob[4] = 2;
    assert!(matches!(
        ring.decrypt(&blob, &ctx()),
        Err(KmsError::UnsupportedFormatVersion(2))
    ));
    let mut dk = ring
        .generate_data_key(&id("telemetry"), &ctx())
        .unwrap()
        .wrapped;
    dk[4] = 9;
    assert!(matches!(
        ring.decrypt_data_key(&dk, &ctx()),
        Err(KmsError::UnsupportedFormatVersion(9))
    ));
}

#[test]
fn a_wrapped_data_key_is_not_a_blob_and_vice_versa() {
    let ring = ring_with(&["telemetry"]);
    let dk = ring.generate_data_key(&id("telemetry"), &ctx()).unwrap();
    let blob = ring.encrypt(&id("telemetry"), b"x", &ctx()).unwrap();
    match ring.decrypt(&dk.wrapped, &ctx()) {
        Err(e @ KmsError::BadMagic { .. }) => {
            assert_eq!(e.to_string(), r#"bad magic: expected "CVSB", found "CVDK""#)
        }
        r => panic!("{r:?}"),
    }
    assert!(matches!(
        ring.decrypt_data_key(&blob, &ctx()),
        Err(KmsError::BadMagic { .. })
    ));
    // Splicing the blob's wrapped key into a CVDK header does not yield
    // the blob's data key: the magic is part of the wrapping's AAD.
    let mut spliced = b"CVDK".to_vec();
    spliced.extend_from_slice(&blob[4..dk.wrapped.len()]);
    assert!(matches!(
        ring.decrypt_data_key(&spliced, &ctx()),
        Err(KmsError::AuthenticationFailed)
    ));
}

#[test]
fn wrapped_data_key_bit_flips_and_truncations() {
    let ring = ring_with(&["telemetry"]);
    let dk = ring.generate_data_key(&id("telemetry"), &ctx()).unwrap();
    assert_eq!(dk.wrapped.len(), 70 + 9);
    let back = ring.decrypt_data_key(&dk.wrapped, &ctx()).unwrap();
    assert_eq!(*back.plaintext, *dk.plaintext);
    for pos in 0..dk.wrapped.len() {
        let mut bad = dk.wrapped.clone();
        bad[pos] ^= 0x01;
        assert!(ring.decrypt_data_key(&bad, &ctx()).is_err(), "byte {pos}");
        if matches!(
            field_at(pos, 9, false),
            Field::WrapNonce | Field::WrappedKey
        ) {
            assert!(matches!(
                ring.decrypt_data_key(&bad, &ctx()),
                Err(KmsError::AuthenticationFailed)
            ));
        }
    }
    for len in 0..dk.wrapped.len() {
        match ring.decrypt_data_key(&dk.wrapped[..len], &ctx()) {
            Err(KmsError::Truncated { field }) => assert_eq!(field, field_at(len, 9, false)),
            r => panic!("cut at {len}: {r:?}"),
        }
    }
}

#[test]
fn record_cipher_round_trip_and_tamper() {
    let ring = ring_with(&["telemetry"]);
    let dk = ring.generate_data_key(&id("telemetry"), &ctx()).unwrap();
    let cipher = dk.record_cipher().unwrap();
    let record = cipher.seal(b"21.5", b"lamp-1@1700000000").unwrap();
    assert_eq!(record.len(), 12 + 4 + 16);
    let reopened = ring
        .decrypt_data_key(&dk.wrapped, &ctx())
        .unwrap()
        .record_cipher()
        .unwrap();
    assert_eq!(
        &reopened.open(&record, b"lamp-1@1700000000").unwrap()[..],
        b"21.5"
    );
    assert!(matches!(
        reopened.open(&record, b"lamp-1@1700000001"),
        Err(KmsError::AuthenticationFailed)
    ));
    for pos in 0..record.len() {
        let mut bad = record.clone();
        bad[pos] ^= 0x80;
        assert!(matches!(
            reopened.open(&bad, b"lamp-1@1700000000"),
            Err(KmsError::AuthenticationFailed)
        ));
    }
    // Records carry no length of their own: a cut that leaves a nonce and
    // a tag's worth of bytes can only fail authentication.
    for len in 0..record.len() {
        let r = reopened.open(&record[..len], b"lamp-1@1700000000");
        match len {
            0..12 => assert!(matches!(
                r,
                Err(KmsError::Truncated {
                    field: Field::PayloadNonce
                })
            )),
            12..28 => assert!(matches!(
                r,
                Err(KmsError::Truncated {
                    field: Field::Payload
                })
            )),
            _ => assert!(matches!(r, Err(KmsError::AuthenticationFailed))),
        }
    }
}

#[test]
fn debug_output_never_shows_data_key_bytes() {
    let ring = ring_with(&["telemetry"]);
    let dk = ring.generate_data_key(&id("telemetry"), &ctx()).unwrap();
    let shown = format!("{dk:?} {:?}", dk.record_cipher().unwrap());
    assert!(shown.contains("redacted"));
    assert!(!shown.contains(&format!("{:?}", &dk.plaintext[..4])));
    // The ring's root key is 32 bytes of 0x01 (see common::root).
    let ring_shown = format!("{ring:?}");
    assert!(ring_shown.contains("telemetry") && ring_shown.contains("redacted"));
    assert!(!ring_shown.contains("1, 1, 1"), "{ring_shown}");
}
