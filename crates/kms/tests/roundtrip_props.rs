//! Arbitrary plaintexts and contexts round-trip, and any other context is
//! refused.

mod common;

use civitas_kms::{EncryptionContext, KmsError};
use common::{id, ring_with};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

fn contexts() -> impl Strategy<Value = EncryptionContext> {
    btree_map("\\PC{1,12}", "\\PC{0,12}", 0..6).prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn encrypt_decrypt_round_trip(
        plaintext in vec(any::<u8>(), 0..2048),
        ctx in contexts(),
        other in contexts(),
    ) {
        let ring = ring_with(&["telemetry"]);
        let blob = ring.encrypt(&id("telemetry"), &plaintext, &ctx).unwrap();
        prop_assert_eq!(&ring.decrypt(&blob, &ctx).unwrap()[..], &plaintext[..]);
        // Rebuilding the context in another order changes nothing.
        let mut pairs: Vec<_> = ctx.iter().collect();
        pairs.reverse();
        let reordered: EncryptionContext = pairs.into_iter().collect();
        prop_assert_eq!(&ring.decrypt(&blob, &reordered).unwrap()[..], &plaintext[..]);
        if other != ctx {
            prop_assert!(matches!(
                ring.decrypt(&blob, &other),
                Err(KmsError::AuthenticationFailed)
            ));
        }
    }

    #[test]
    fn data_key_round_trip(ctx in contexts(), record in vec(any::<u8>(), 0..512)) {
        let ring = ring_with(&["telemetry"]);
        let dk = ring.generate_data_key(&id("telemetry"), &ctx).unwrap();
        let sealed = dk.record_cipher().unwrap().seal(&record, b"aad").unwrap();
        let back = ring.decrypt_data_key(&dk.wrapped, &ctx).unwrap();
        prop_assert_eq!(*back.plaintext, *dk.plaintext);
        prop_assert_eq!(&back.record_cipher().unwrap().open(&sealed, b"aad").unwrap()[..], &record[..]);
    }

    #[test]
    fn arbitrary_bytes_never_decrypt(bytes in vec(any::<u8>(), 0..256)) {
        let ring = ring_with(&["telemetry"]);
        prop_assert!(ring.decrypt(&bytes, &EncryptionContext::new()).is_err());
        prop_assert!(ring.decrypt_data_key(&bytes, &EncryptionContext::new()).is_err());
        prop_assert!(civitas_kms::KeyRing::from_sealed_bytes(&bytes, common::root(1)).is_err());
    }
}
