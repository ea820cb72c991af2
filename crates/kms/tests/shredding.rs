//! Destroying one key erases it and only it.

mod common;

use civitas_kms::{EncryptionContext, KeyState, KmsError, VersionCensus};
use common::{at, id, ring_with};

#[test]
fn destroying_one_device_key_leaves_another_readable() {
    let mut ring = ring_with(&["device/lamp-1", "device/lamp-2"]);
    let ctx1 = EncryptionContext::from([("device", "lamp-1")]);
    let ctx2 = EncryptionContext::from([("device", "lamp-2")]);
    let b1 = ring.encrypt(&id("device/lamp-1"), b"one", &ctx1).unwrap();
    ring.rotate(&id("device/lamp-1"), at(1500)).unwrap();
    let b1v2 = ring
        .encrypt(&id("device/lamp-1"), b"one again", &ctx1)
        .unwrap();
    let dk1 = ring.generate_data_key(&id("device/lamp-1"), &ctx1).unwrap();
    let b2 = ring.encrypt(&id("device/lamp-2"), b"two", &ctx2).unwrap();

    ring.destroy_key(&id("device/lamp-1"), at(2000)).unwrap();

    for blob in [&b1, &b1v2] {
        match ring.decrypt(blob, &ctx1) {
            Err(KmsError::KeyDestroyed(k)) => assert_eq!(k, id("device/lamp-1")),
            r => panic!("{r:?}"),
        }
    }
    assert!(matches!(
        ring.decrypt_data_key(&dk1.wrapped, &ctx1),
        Err(KmsError::KeyDestroyed(_))
    ));
    assert_eq!(&ring.decrypt(&b2, &ctx2).unwrap()[..], b"two");

    // Nothing new under the tombstone, and the name is never reused.
    let k1 = id("device/lamp-1");
    assert!(matches!(
        ring.encrypt(&k1, b"x", &ctx1),
        Err(KmsError::KeyDestroyed(_))
    ));
    assert!(matches!(
        ring.generate_data_key(&k1, &ctx1),
        Err(KmsError::KeyDestroyed(_))
    ));
    assert!(matches!(
        ring.rotate(&k1, at(3000)),
        Err(KmsError::KeyDestroyed(_))
    ));
    assert!(matches!(
        ring.destroy_key(&k1, at(3000)),
        Err(KmsError::KeyDestroyed(_))
    ));
    assert!(matches!(
        ring.retire_version(&k1, 1, &VersionCensus::new(), at(3000)),
        Err(KmsError::KeyDestroyed(_))
    ));
    assert!(matches!(
        ring.create_key(&k1, at(3000)),
        Err(KmsError::KeyExists(_))
    ));
    assert!(matches!(
        ring.re_encrypt(&b2, &ctx2, &k1),
        Err(KmsError::KeyDestroyed(_))
    ));

    let info = ring.describe(&k1).unwrap();
    assert_eq!(info.state, KeyState::Destroyed);
    assert_eq!(info.destroyed_at, Some(at(2000)));
    assert_eq!(info.current_version, None);
    assert_eq!(info.versions.len(), 2);
}

#[test]
fn destruction_survives_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.sealed");
    let mut ring = ring_with(&["device/lamp-1", "device/lamp-2"]);
    let ctx = EncryptionContext::new();
    let b1 = ring.encrypt(&id("device/lamp-1"), b"one", &ctx).unwrap();
    let b2 = ring.encrypt(&id("device/lamp-2"), b"two", &ctx).unwrap();
    let before = ring.to_sealed_bytes().unwrap();
    ring.destroy_key(&id("device/lamp-1"), at(2000)).unwrap();
    ring.save(&path).unwrap();
    let after = std::fs::read(&path).unwrap();
    // One key's material (32 bytes) fewer, plus the destruction time.
    assert_eq!(after.len(), before.len() - 32 + 12);

    let loaded = civitas_kms::KeyRing::load(&path, common::root(1)).unwrap();
    assert!(matches!(
        loaded.decrypt(&b1, &ctx),
        Err(KmsError::KeyDestroyed(_))
    ));
    assert_eq!(&loaded.decrypt(&b2, &ctx).unwrap()[..], b"two");
    assert_eq!(
        loaded.describe(&id("device/lamp-1")).unwrap(),
        ring.describe(&id("device/lamp-1")).unwrap()
    );
}
