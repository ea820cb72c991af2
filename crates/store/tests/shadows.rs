//! Device shadow records: written through the group commit, read back one
//! at a time, listed per thing, kept across reopen; a schema 1 store gains
//! the table on open.

mod common;

use civitas_store::{DecodeError, Op, SCHEMA_VERSION, ShadowRecord, Store, StoreError};
use common::*;
use redb::{Database, ReadableDatabase, TableDefinition};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SHADOWS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("shadows");

fn record(thing: &str, shadow: &str, version: u64, document: Option<&str>) -> ShadowRecord {
    ShadowRecord {
        thing: thing.into(),
        shadow: shadow.into(),
        version,
        updated_at_ms: 1_700_000_000_000 + version,
        document: document.map(|d| d.as_bytes().to_vec()),
    }
}

async fn put(store: &Store, records: Vec<ShadowRecord>) {
    store
        .commit(records.into_iter().map(Op::PutShadow).collect())
        .await
        .unwrap();
}

#[tokio::test]
async fn shadows_survive_reopen_and_list_per_thing() {
    let dir = temp_dir();
    let store = open(&dir);
    let classic = record("lamp", "", 7, Some(r#"{"state":{}}"#));
    let named = record(
        "lamp",
        "config",
        2,
        Some(r#"{"state":{"desired":{"a":1}}}"#),
    );
    let tombstone = record("lamp", "old", 9, None);
    let reserved = record("lamp", "$package", 1, Some("{}"));
    // A thing whose name extends another's must not show up in its listing.
    let other = record("lamp2", "x", 1, Some("{}"));
    put(
        &store,
        vec![
            classic.clone(),
            named.clone(),
            tombstone.clone(),
            reserved.clone(),
            other.clone(),
        ],
    )
    .await;
    store.close().unwrap();

    let store = open(&dir);
    assert_eq!(store.load_shadow("lamp", "").unwrap(), Some(classic));
    assert_eq!(store.load_shadow("lamp", "config").unwrap(), Some(named));
    assert_eq!(store.load_shadow("lamp", "old").unwrap(), Some(tombstone));
    assert_eq!(store.load_shadow("lamp2", "x").unwrap(), Some(other));
    assert_eq!(store.load_shadow("lamp", "nope").unwrap(), None);
    assert_eq!(store.load_shadow("nothing", "").unwrap(), None);
    assert_eq!(
        store.shadow_names("lamp").unwrap(),
        vec!["$package".to_owned(), "config".to_owned()]
    );
    assert_eq!(store.shadow_names("lamp2").unwrap(), vec!["x".to_owned()]);
    assert!(store.shadow_names("lam").unwrap().is_empty());
}

#[tokio::test]
async fn put_replaces_and_delete_forgets() {
    let dir = temp_dir();
    let store = open(&dir);
    put(&store, vec![record("t", "s", 1, Some("{}"))]).await;
    let deleted = record("t", "s", 1, None);
    put(&store, vec![deleted.clone()]).await;
    assert_eq!(store.load_shadow("t", "s").unwrap(), Some(deleted));
    assert!(store.shadow_names("t").unwrap().is_empty());

    store
        .commit(vec![Op::DeleteShadow {
            thing: "t".into(),
            shadow: "s".into(),
        }])
        .await
        .unwrap();
    assert_eq!(store.load_shadow("t", "s").unwrap(), None);
    store.close().unwrap();
    assert!(matches!(
        store.load_shadow("t", "s"),
        Err(StoreError::Closed)
    ));
    let store = open(&dir);
    assert_eq!(store.load_shadow("t", "s").unwrap(), None);
}

#[tokio::test]
async fn a_schema_1_store_is_migrated_and_gains_the_shadow_table() {
    let dir = temp_dir();
    {
        // What a build before shadows left behind: the meta table at 1.
        let db = Database::create(db_path(&dir)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 1u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = open(&dir);
    assert_eq!(store.load_shadow("t", "").unwrap(), None);
    put(&store, vec![record("t", "", 1, Some("{}"))]).await;
    store.close().unwrap();

    let db = Database::create(db_path(&dir)).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    let stored = meta.get("schema_version").unwrap().unwrap();
    assert_eq!(stored.value(), SCHEMA_VERSION.to_le_bytes());
    const { assert!(SCHEMA_VERSION >= 2) };
    assert!(
        txn.open_table(SHADOWS)
            .unwrap()
            .get(("t", ""))
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_corrupt_shadow_record_is_reported_with_its_key() {
    let dir = temp_dir();
    open(&dir).close().unwrap();
    {
        let db = Database::create(db_path(&dir)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(SHADOWS)
            .unwrap()
            .insert(("t", "s"), [1u8, 0xff].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = open(&dir);
    match store.load_shadow("t", "s") {
        Err(StoreError::Corrupt { table, key, source }) => {
            assert_eq!(table, "shadows");
            assert_eq!(key, r#"("t", "s")"#);
            assert!(
                matches!(source, DecodeError::Truncated { .. }),
                "{source:?}"
            );
        }
        other => panic!("expected a corrupt record, got {other:?}"),
    }
    assert!(matches!(
        store.shadow_names("t"),
        Err(StoreError::Corrupt { .. })
    ));
}
