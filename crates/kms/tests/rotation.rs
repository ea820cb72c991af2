//! Rotation keeps old data readable, re-encryption moves it forward, and a
//! version is retired only once the census says nothing uses it.

mod common;

use std::time::Duration;

use civitas_kms::{
    DEFAULT_ROTATION_PERIOD, EncryptionContext, KmsError, VersionCensus, VersionState, inspect,
};
use common::{at, id, ring_with};

fn ctx() -> EncryptionContext {
    EncryptionContext::from([("stream", "lamp-1")])
}

#[test]
fn new_data_uses_the_newest_version_and_old_blobs_stay_readable() {
    let mut ring = ring_with(&["telemetry"]);
    let k = id("telemetry");
    let v1 = ring.encrypt(&k, b"old", &ctx()).unwrap();
    let dk1 = ring.generate_data_key(&k, &ctx()).unwrap();
    assert_eq!(ring.rotate(&k, at(2000)).unwrap(), 2);
    assert_eq!(ring.rotate(&k, at(3000)).unwrap(), 3);
    let v3 = ring.encrypt(&k, b"new", &ctx()).unwrap();
    assert_eq!(inspect(&v1).unwrap().key_version, 1);
    assert_eq!(inspect(&v3).unwrap().key_version, 3);
    assert_eq!(&ring.decrypt(&v1, &ctx()).unwrap()[..], b"old");
    assert_eq!(&ring.decrypt(&v3, &ctx()).unwrap()[..], b"new");
    let back = ring.decrypt_data_key(&dk1.wrapped, &ctx()).unwrap();
    assert_eq!(*back.plaintext, *dk1.plaintext);
    assert_eq!(ring.describe(&k).unwrap().current_version, Some(3));
}

#[test]
fn re_encrypt_moves_blobs_to_the_newest_version() {
    let mut ring = ring_with(&["telemetry", "archive"]);
    let k = id("telemetry");
    let old = ring.encrypt(&k, b"payload", &ctx()).unwrap();
    ring.rotate(&k, at(2000)).unwrap();
    let moved = ring.re_encrypt(&old, &ctx(), &k).unwrap();
    let header = inspect(&moved).unwrap();
    assert_eq!(
        (header.key_id.as_str(), header.key_version),
        ("telemetry", 2)
    );
    assert_eq!(&ring.decrypt(&moved, &ctx()).unwrap()[..], b"payload");
    // To another key entirely.
    let archived = ring.re_encrypt(&old, &ctx(), &id("archive")).unwrap();
    assert_eq!(inspect(&archived).unwrap().key_id, id("archive"));
    assert_eq!(&ring.decrypt(&archived, &ctx()).unwrap()[..], b"payload");
    // The context still has to match.
    assert!(matches!(
        ring.re_encrypt(&old, &EncryptionContext::new(), &k),
        Err(KmsError::AuthenticationFailed)
    ));
}

#[test]
fn rewrap_moves_a_data_key_without_changing_it() {
    let mut ring = ring_with(&["telemetry"]);
    let k = id("telemetry");
    let dk = ring.generate_data_key(&k, &ctx()).unwrap();
    ring.rotate(&k, at(2000)).unwrap();
    let rewrapped = ring.rewrap_data_key(&dk.wrapped, &ctx(), &k).unwrap();
    assert_eq!(inspect(&rewrapped).unwrap().key_version, 2);
    let back = ring.decrypt_data_key(&rewrapped, &ctx()).unwrap();
    assert_eq!(*back.plaintext, *dk.plaintext);
}

#[test]
fn rotation_due_follows_the_newest_version_age() {
    let mut ring = ring_with(&["a", "b"]);
    let year = DEFAULT_ROTATION_PERIOD;
    assert_eq!(year, Duration::from_secs(365 * 86_400));
    let created = at(1000);
    assert!(
        ring.rotation_due(created + year - Duration::from_secs(1), year)
            .is_empty()
    );
    assert_eq!(
        ring.rotation_due(created + year, year),
        vec![id("a"), id("b")]
    );
    ring.rotate(&id("a"), created + year).unwrap();
    assert_eq!(ring.rotation_due(created + year, year), vec![id("b")]);
    // A clock that went backwards makes nothing due.
    assert!(ring.rotation_due(at(0), Duration::ZERO).is_empty());
    ring.destroy_key(&id("b"), created + year).unwrap();
    assert!(ring.rotation_due(created + year, year).is_empty());
}

#[test]
fn retire_refuses_while_blobs_use_the_version() {
    let mut ring = ring_with(&["telemetry"]);
    let k = id("telemetry");
    let stored: Vec<Vec<u8>> = (0..3)
        .map(|i| ring.encrypt(&k, &[i], &ctx()).unwrap())
        .collect();
    ring.rotate(&k, at(2000)).unwrap();

    let mut census = VersionCensus::new();
    for blob in &stored {
        census.record(blob).unwrap();
    }
    assert_eq!(census.count(&k, 1), 3);
    match ring.retire_version(&k, 1, &census, at(3000)) {
        Err(KmsError::VersionInUse {
            version: 1,
            blobs: 3,
            ..
        }) => {}
        r => panic!("{r:?}"),
    }
    assert!(ring.retirable_versions(&k, &census).unwrap().is_empty());

    // Move everything forward, count again, then retire.
    let moved: Vec<Vec<u8>> = stored
        .iter()
        .map(|b| ring.re_encrypt(b, &ctx(), &k).unwrap())
        .collect();
    let mut census = VersionCensus::new();
    for blob in &moved {
        census.record(blob).unwrap();
    }
    assert_eq!(census.count(&k, 1), 0);
    assert_eq!(ring.retirable_versions(&k, &census).unwrap(), vec![1]);
    ring.retire_version(&k, 1, &census, at(3000)).unwrap();

    let info = ring.describe(&k).unwrap();
    assert_eq!(info.versions[0].state, VersionState::Retired);
    assert_eq!(info.versions[0].retired_at, Some(at(3000)));
    for (blob, i) in moved.iter().zip(0u8..) {
        assert_eq!(&ring.decrypt(blob, &ctx()).unwrap()[..], &[i]);
    }
    // A blob the census missed is now unreadable, and says why.
    assert!(matches!(
        ring.decrypt(&stored[0], &ctx()),
        Err(KmsError::KeyVersionRetired { version: 1, .. })
    ));
    assert!(matches!(
        ring.retire_version(&k, 1, &census, at(3000)),
        Err(KmsError::KeyVersionRetired { .. })
    ));
}

#[test]
fn retire_refuses_the_current_and_unknown_versions() {
    let mut ring = ring_with(&["telemetry"]);
    let k = id("telemetry");
    let empty = VersionCensus::new();
    assert!(matches!(
        ring.retire_version(&k, 1, &empty, at(2000)),
        Err(KmsError::CurrentVersion { version: 1, .. })
    ));
    for v in [0, 2, u32::MAX] {
        assert!(matches!(
            ring.retire_version(&k, v, &empty, at(2000)),
            Err(KmsError::UnknownKeyVersion { .. })
        ));
    }
    assert!(matches!(
        ring.retire_version(&id("nope"), 1, &empty, at(2000)),
        Err(KmsError::UnknownKey(_))
    ));
}

#[test]
fn census_counts_wrapped_data_keys_too() {
    let ring = ring_with(&["telemetry"]);
    let k = id("telemetry");
    let dk = ring.generate_data_key(&k, &ctx()).unwrap();
    let mut census = VersionCensus::new();
    census.record(&dk.wrapped).unwrap();
    census.add(&k, 1, 10);
    assert_eq!(census.count(&k, 1), 11);
    assert_eq!(census.iter().collect::<Vec<_>>(), vec![(&k, 1, 11)]);
    assert!(census.record(b"junk").is_err());
}
