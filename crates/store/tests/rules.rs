//! The rules table family: rules written through the group commit, read
//! back in name order after a reopen, and the schema step that adds it.

mod common;

use civitas_store::{Op, RuleRecord, SCHEMA_VERSION};
use common::*;
use redb::{Database, TableDefinition};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

fn rule(name: &str, updated_at_ms: u64) -> RuleRecord {
    RuleRecord {
        name: name.into(),
        document: format!(r#"{{"sql":"SELECT * FROM '{name}'"}}"#).into_bytes(),
        created_at_ms: 1,
        updated_at_ms,
    }
}

#[tokio::test]
async fn rules_are_put_replaced_deleted_and_survive_a_reopen() {
    let dir = temp_dir();
    let store = open(&dir);
    assert!(store.load_rules().unwrap().is_empty());
    store
        .commit(vec![
            Op::PutRule(rule("zeta", 1)),
            Op::PutRule(rule("alpha", 1)),
            Op::PutRule(rule("gone", 1)),
        ])
        .await
        .unwrap();
    store
        .commit(vec![
            Op::PutRule(rule("alpha", 2)),
            Op::DeleteRule {
                name: "gone".into(),
            },
        ])
        .await
        .unwrap();
    store.close().unwrap();

    let store = open(&dir);
    assert_eq!(
        store.load_rules().unwrap(),
        vec![rule("alpha", 2), rule("zeta", 1)]
    );
}

#[tokio::test]
async fn a_schema_4_store_is_migrated_and_gains_the_rules_table() {
    let dir = temp_dir();
    {
        let db = Database::create(db_path(&dir)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 4u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = open(&dir);
    assert!(store.load_rules().unwrap().is_empty());
    store.commit(vec![Op::PutRule(rule("r", 1))]).await.unwrap();
    store.close().unwrap();
    let db = Database::create(db_path(&dir)).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let meta = txn.open_table(META).unwrap();
    assert_eq!(
        meta.get("schema_version").unwrap().unwrap().value(),
        SCHEMA_VERSION.to_le_bytes()
    );
    const { assert!(SCHEMA_VERSION >= 5) };
}
