//! The sealed key ring: persistence, tamper detection, root-key change and
//! the audit events of administrative operations.

mod common;

use civitas_kms::{AdminAction, AdminEvent, EncryptionContext, Field, KeyRing, KmsError, RootKey};
use common::{at, id, ring_with, root};

#[test]
fn save_and_load_keeps_every_key_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(civitas_kms::RING_FILE_NAME);
    let mut ring = ring_with(&["telemetry", "device/lamp-1"]);
    let ctx = EncryptionContext::from([("a", "b")]);
    let old = ring.encrypt(&id("telemetry"), b"v1", &ctx).unwrap();
    ring.rotate(&id("telemetry"), at(2000)).unwrap();
    let new = ring.encrypt(&id("telemetry"), b"v2", &ctx).unwrap();
    ring.save(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let loaded = KeyRing::load(&path, root(1)).unwrap();
    assert_eq!(loaded.keys(), ring.keys());
    assert_eq!(&loaded.decrypt(&old, &ctx).unwrap()[..], b"v1");
    assert_eq!(&loaded.decrypt(&new, &ctx).unwrap()[..], b"v2");
    assert!(loaded.pending_events().is_empty());

    // Saving again replaces the file atomically, leaving no temporaries.
    loaded.save(&path).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn sealed_bytes_differ_each_time_and_start_with_the_ring_magic() {
    let ring = ring_with(&["k"]);
    let a = ring.to_sealed_bytes().unwrap();
    let b = ring.to_sealed_bytes().unwrap();
    assert_ne!(a, b, "a fresh nonce per seal");
    assert_eq!(&a[..5], b"CVKR\x01");
    assert_eq!(
        KeyRing::new(root(1)).to_sealed_bytes().unwrap().len(),
        5 + 12 + 4 + 16
    );
}

#[test]
fn any_tampering_with_the_ring_file_is_detected() {
    let ring = ring_with(&["telemetry", "device/lamp-1"]);
    let sealed = ring.to_sealed_bytes().unwrap();
    for pos in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[pos] ^= 0x04;
        let err = KeyRing::from_sealed_bytes(&bad, root(1)).unwrap_err();
        let expected = match pos {
            0..4 => matches!(err, KmsError::BadMagic { .. }),
            4 => matches!(err, KmsError::UnsupportedFormatVersion(5)),
            _ => matches!(err, KmsError::AuthenticationFailed),
        };
        assert!(expected, "byte {pos}: {err:?}");
    }
    for len in 0..sealed.len() {
        let err = KeyRing::from_sealed_bytes(&sealed[..len], root(1)).unwrap_err();
        let expected = match len {
            0..4 => matches!(
                err,
                KmsError::Truncated {
                    field: Field::Magic
                }
            ),
            4 => matches!(
                err,
                KmsError::Truncated {
                    field: Field::FormatVersion
                }
            ),
            5..17 => matches!(
                err,
                KmsError::Truncated {
                    field: Field::PayloadNonce
                }
            ),
            17..33 => matches!(
                err,
                KmsError::Truncated {
                    field: Field::Payload
                }
            ),
            _ => matches!(err, KmsError::AuthenticationFailed),
        };
        assert!(expected, "cut at {len}: {err:?}");
    }
}

#[test]
fn a_different_root_key_cannot_open_the_ring() {
    let sealed = ring_with(&["k"]).to_sealed_bytes().unwrap();
    assert!(matches!(
        KeyRing::from_sealed_bytes(&sealed, root(2)),
        Err(KmsError::AuthenticationFailed)
    ));
}

#[test]
fn changing_the_root_key_reseals_under_the_new_one() {
    let mut ring = ring_with(&["k"]);
    let blob = ring
        .encrypt(&id("k"), b"data", &EncryptionContext::new())
        .unwrap();
    ring.change_root_key(root(9), at(5000)).unwrap();
    let sealed = ring.to_sealed_bytes().unwrap();
    assert!(matches!(
        KeyRing::from_sealed_bytes(&sealed, root(1)),
        Err(KmsError::AuthenticationFailed)
    ));
    let reopened = KeyRing::from_sealed_bytes(&sealed, root(9)).unwrap();
    assert_eq!(
        &reopened.decrypt(&blob, &EncryptionContext::new()).unwrap()[..],
        b"data"
    );
}

#[test]
fn administrative_operations_queue_audit_events() {
    let mut ring = KeyRing::new(root(1));
    let k = id("device/lamp-1");
    ring.create_key(&k, at(10)).unwrap();
    ring.rotate(&k, at(20)).unwrap();
    ring.retire_version(&k, 1, &civitas_kms::VersionCensus::new(), at(30))
        .unwrap();
    ring.destroy_key(&k, at(40)).unwrap();
    ring.change_root_key(root(2), at(50)).unwrap();
    // Failed operations record nothing.
    assert!(ring.rotate(&k, at(60)).is_err());

    let ev = |action, key: Option<&str>, version, t| AdminEvent {
        action,
        key_id: key.map(id),
        version,
        at: at(t),
    };
    let expected = vec![
        ev(AdminAction::CreateKey, Some("device/lamp-1"), Some(1), 10),
        ev(AdminAction::RotateKey, Some("device/lamp-1"), Some(2), 20),
        ev(
            AdminAction::RetireVersion,
            Some("device/lamp-1"),
            Some(1),
            30,
        ),
        ev(AdminAction::DestroyKey, Some("device/lamp-1"), None, 40),
        ev(AdminAction::ChangeRootKey, None, None, 50),
    ];
    assert_eq!(ring.pending_events(), &expected[..]);
    assert_eq!(ring.drain_events(), expected);
    assert!(ring.drain_events().is_empty());
}

#[test]
fn times_before_the_epoch_are_refused() {
    let mut ring = KeyRing::new(root(1));
    let before = std::time::UNIX_EPOCH - std::time::Duration::from_secs(1);
    assert!(matches!(
        ring.create_key(&id("k"), before),
        Err(KmsError::InvalidTime)
    ));
    assert!(ring.keys().is_empty());
    assert!(ring.drain_events().is_empty());
}

#[test]
fn a_ring_under_a_key_file_root_reopens_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("root.key");
    let ring_path = dir.path().join("keyring.sealed");
    let mut ring = KeyRing::new(RootKey::create_key_file(&key_path).unwrap());
    ring.create_key(&id("telemetry"), at(1)).unwrap();
    let blob = ring
        .encrypt(&id("telemetry"), b"x", &EncryptionContext::new())
        .unwrap();
    ring.save(&ring_path).unwrap();
    drop(ring);

    let ring = KeyRing::load(&ring_path, RootKey::load_key_file(&key_path).unwrap()).unwrap();
    assert_eq!(
        &ring.decrypt(&blob, &EncryptionContext::new()).unwrap()[..],
        b"x"
    );
}
