//! Per-version operation counters.

mod common;

use civitas_kms::{EncryptionContext, KeyProvider, OpCounts};
use common::{at, id, ring_with};

#[test]
fn counts_each_operation_against_its_version() {
    let mut ring = ring_with(&["telemetry", "archive"]);
    let k = id("telemetry");
    let ctx = EncryptionContext::from([("x", "y")]);
    let b1 = ring.encrypt(&k, b"a", &ctx).unwrap();
    ring.encrypt(&k, b"b", &ctx).unwrap();
    ring.decrypt(&b1, &ctx).unwrap();
    let _ = ring.decrypt(&b1, &EncryptionContext::new()).unwrap_err();
    let dk = ring.generate_data_key(&k, &ctx).unwrap();
    ring.decrypt_data_key(&dk.wrapped, &ctx).unwrap();
    ring.rotate(&k, at(2000)).unwrap();
    ring.re_encrypt(&b1, &ctx, &k).unwrap();
    ring.rewrap_data_key(&dk.wrapped, &ctx, &id("archive"))
        .unwrap();

    let usage = ring.usage();
    assert_eq!(
        usage.get(&k, 1),
        OpCounts {
            encrypt: 2,
            decrypt: 2,
            generate_data_key: 1,
            decrypt_data_key: 2,
            rewrap_data_key: 0,
            authentication_failures: 1,
        }
    );
    assert_eq!(
        usage.get(&k, 2),
        OpCounts {
            encrypt: 1,
            ..OpCounts::default()
        }
    );
    assert_eq!(
        usage.get(&id("archive"), 1),
        OpCounts {
            rewrap_data_key: 1,
            ..OpCounts::default()
        }
    );
    assert_eq!(usage.key_total(&k).encrypt, 3);
    assert_eq!(usage.versions.len(), 3);
}

#[test]
fn the_ring_serves_through_the_provider_trait() {
    let ring = ring_with(&["telemetry"]);
    let provider: &dyn KeyProvider = &ring;
    let ctx = EncryptionContext::from([("device", "lamp-1")]);
    let blob = provider.encrypt(&id("telemetry"), b"hello", &ctx).unwrap();
    assert_eq!(&provider.decrypt(&blob, &ctx).unwrap()[..], b"hello");
    let moved = provider.re_encrypt(&blob, &ctx, &id("telemetry")).unwrap();
    assert_eq!(&provider.decrypt(&moved, &ctx).unwrap()[..], b"hello");
    let dk = provider.generate_data_key(&id("telemetry"), &ctx).unwrap();
    let rewrapped = provider
        .rewrap_data_key(&dk.wrapped, &ctx, &id("telemetry"))
        .unwrap();
    let back = provider.decrypt_data_key(&rewrapped, &ctx).unwrap();
    assert_eq!(*back.plaintext, *dk.plaintext);
}
