//! Registry tables: records kept across reopen, the certificate-by-thing
//! and attachment indexes kept in step, a failed change leaving nothing
//! behind, and a schema 2 store gaining the registry on open.

mod common;

use std::collections::BTreeMap;

use civitas_store::{
    CertificateRecord, CertificateStatus, PolicyRecord, PolicyTarget, PolicyVersionRecord,
    RegistryView, SCHEMA_VERSION, StoreError, ThingGroupRecord, ThingRecord,
};
use common::*;
use redb::{Database, TableDefinition};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

fn thing(name: &str) -> ThingRecord {
    ThingRecord {
        name: name.into(),
        thing_type: None,
        attributes: BTreeMap::from([("district".into(), "north".into())]),
        groups: vec!["north".into()],
        created_ms: 1,
        updated_ms: 1,
        version: 1,
    }
}

fn cert(serial: &str, thing: Option<&str>) -> CertificateRecord {
    CertificateRecord {
        serial_hex: serial.into(),
        thing: thing.map(Into::into),
        status: CertificateStatus::Active,
        common_name: thing.unwrap_or("x").into(),
        certificate_pem: "pem".into(),
        not_before_ms: 0,
        not_after_ms: 10,
        created_ms: 1,
        updated_ms: 1,
        replaced_by: None,
        overlap_until_ms: None,
    }
}

fn policy(name: &str) -> PolicyRecord {
    PolicyRecord {
        name: name.into(),
        versions: BTreeMap::from([(
            1,
            PolicyVersionRecord {
                document: "{}".into(),
                created_ms: 1,
            },
        )]),
        default_version: 1,
        next_version: 2,
        created_ms: 1,
        updated_ms: 1,
    }
}

#[test]
fn records_and_indexes_survive_reopen() {
    let dir = temp_dir();
    let store = open(&dir);
    store
        .registry_write(|w| {
            w.put_thing(&thing("lamp-1"))?;
            w.put_thing_group(&ThingGroupRecord {
                name: "north".into(),
                parent: None,
                description: None,
                attributes: BTreeMap::new(),
                created_ms: 1,
                updated_ms: 1,
                version: 1,
            })?;
            w.put_certificate(&cert("0a", Some("lamp-1")))?;
            w.put_certificate(&cert("0b", Some("lamp-1")))?;
            w.put_policy(&policy("p1"))?;
            w.put_policy(&policy("p2"))?;
            assert!(w.attach("p1", &PolicyTarget::Certificate("0a".into()))?);
            assert!(!w.attach("p1", &PolicyTarget::Certificate("0a".into()))?);
            w.attach("p1", &PolicyTarget::Group("north".into()))?;
            w.attach("p2", &PolicyTarget::Certificate("0a".into()))?;
            // A write transaction sees its own changes.
            assert_eq!(w.certificates_of_thing("lamp-1")?.len(), 2);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    store.close().unwrap();

    let store = open(&dir);
    let read = store.registry_read().unwrap();
    assert_eq!(read.thing("lamp-1").unwrap(), Some(thing("lamp-1")));
    assert_eq!(read.things().unwrap().len(), 1);
    assert_eq!(
        read.target_policies(&PolicyTarget::Certificate("0a".into()))
            .unwrap(),
        ["p1", "p2"]
    );
    assert_eq!(
        read.policy_targets("p1").unwrap(),
        [
            PolicyTarget::Certificate("0a".into()),
            PolicyTarget::Group("north".into())
        ]
    );
    drop(read);

    // Moving a certificate to another thing moves its index entry;
    // deleting a policy removes its attachments both ways.
    store
        .registry_write(|w| {
            w.put_certificate(&cert("0b", Some("lamp-2")))?;
            w.delete_policy("p1")?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let read = store.registry_read().unwrap();
    let serials = |t: &str| -> Vec<String> {
        read.certificates_of_thing(t)
            .unwrap()
            .into_iter()
            .map(|c| c.serial_hex)
            .collect()
    };
    assert_eq!(serials("lamp-1"), ["0a"]);
    assert_eq!(serials("lamp-2"), ["0b"]);
    assert_eq!(
        read.target_policies(&PolicyTarget::Certificate("0a".into()))
            .unwrap(),
        ["p2"]
    );
    assert!(
        read.target_policies(&PolicyTarget::Group("north".into()))
            .unwrap()
            .is_empty()
    );
    assert!(read.policy_targets("p1").unwrap().is_empty());
}

#[test]
fn a_failed_change_writes_nothing() {
    let dir = temp_dir();
    let store = open(&dir);
    let result: Result<(), StoreError> = store.registry_write(|w| {
        w.put_thing(&thing("lamp-1"))?;
        Err(StoreError::Closed)
    });
    assert!(result.is_err());
    assert_eq!(
        store.registry_read().unwrap().thing("lamp-1").unwrap(),
        None
    );
}

#[test]
fn a_schema_2_store_is_migrated_and_gains_the_registry() {
    let dir = temp_dir();
    {
        let db = Database::create(db_path(&dir)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 2u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = open(&dir);
    assert!(store.registry_read().unwrap().things().unwrap().is_empty());
    store.registry_write(|w| w.put_thing(&thing("t"))).unwrap();
    store.close().unwrap();
    let store = open(&dir);
    assert!(store.registry_read().unwrap().thing("t").unwrap().is_some());
    const { assert!(SCHEMA_VERSION >= 3) };
}
