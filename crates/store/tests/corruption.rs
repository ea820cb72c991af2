//! Bad bytes and foreign schema versions are reported precisely, never
//! as a panic. The tests write to the tables with redb directly, bypassing
//! the store's encoder.

mod common;

use std::path::Path;

use civitas_store::{
    DecodeError, Op, OutboundState, SCHEMA_VERSION, Store, StoreError, StoreOptions,
};
use common::*;
use redb::{Database, ReadableDatabase, TableDefinition};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
const OUTBOUND: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbound");

/// Writes one raw value with redb, the store being closed.
fn write_raw<K: redb::Key + 'static>(
    path: &Path,
    table: TableDefinition<K, &'static [u8]>,
    key: K::SelfType<'_>,
    value: &[u8],
) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(table).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

async fn store_with_one_of_each(dir: &tempfile::TempDir) {
    let store = open(dir);
    store
        .commit(vec![
            Op::PutRetained {
                topic: "ok".into(),
                message: full_message("ok"),
            },
            Op::PutSession(full_session("ok")),
            Op::PutOutbound {
                client_id: "ok".into(),
                seq: 1,
                message: outbound("t", OutboundState::Queued, None),
            },
        ])
        .await
        .unwrap();
    store.close().unwrap();
}

fn load_error(dir: &tempfile::TempDir) -> StoreError {
    let store = open(dir);
    store.load_broker_state().unwrap_err()
}

#[tokio::test]
async fn garbage_session_names_table_and_key() {
    let dir = temp_dir();
    store_with_one_of_each(&dir).await;
    // Version byte right, then a client id length far past the end.
    write_raw(
        &db_path(&dir),
        SESSIONS,
        "broken",
        &[1, 0xff, 0xff, 0xff, 0x7f, b'x'],
    );

    let err = load_error(&dir);
    match &err {
        StoreError::Corrupt { table, key, source } => {
            assert_eq!(*table, "sessions");
            assert_eq!(key, "\"broken\"");
            assert_eq!(
                *source,
                DecodeError::Truncated {
                    field: "client_id",
                    offset: 5,
                    needed: 0x7fff_ffff,
                    available: 1,
                }
            );
        }
        other => panic!("expected a corrupt record error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("sessions") && text.contains("\"broken\""),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_record_version_in_retained() {
    let dir = temp_dir();
    store_with_one_of_each(&dir).await;
    write_raw(&db_path(&dir), RETAINED, "future/topic", &[200, 1, 2, 3]);

    match load_error(&dir) {
        StoreError::Corrupt { table, key, source } => {
            assert_eq!(table, "retained");
            assert_eq!(key, "\"future/topic\"");
            assert_eq!(source, DecodeError::UnknownVersion(200));
        }
        other => panic!("expected a corrupt record error, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_outbound_names_the_composite_key() {
    let dir = temp_dir();
    store_with_one_of_each(&dir).await;
    write_raw(&db_path(&dir), OUTBOUND, ("ok", 42), &[]);

    match load_error(&dir) {
        StoreError::Corrupt { table, key, source } => {
            assert_eq!(table, "outbound");
            assert_eq!(key, "(\"ok\", 42)");
            assert_eq!(source, DecodeError::Empty);
        }
        other => panic!("expected a corrupt record error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_corrupt_record_does_not_stop_writes() {
    let dir = temp_dir();
    store_with_one_of_each(&dir).await;
    write_raw(&db_path(&dir), SESSIONS, "broken", b"\x01garbage");

    // The broker can still repair the damage through the ordinary ops.
    let store = open(&dir);
    assert!(store.load_broker_state().is_err());
    store
        .commit(vec![Op::DeleteSession {
            client_id: "broken".into(),
        }])
        .await
        .unwrap();
    let state = store.load_broker_state().unwrap();
    assert_eq!(state.sessions.len(), 1);
    assert_eq!(state.sessions[0].record, full_session("ok"));
}

#[tokio::test]
async fn newer_schema_version_is_refused() {
    let dir = temp_dir();
    store_with_one_of_each(&dir).await;
    let newer = SCHEMA_VERSION + 1;
    write_raw(&db_path(&dir), META, "schema_version", &newer.to_le_bytes());

    let err = Store::open(&db_path(&dir), StoreOptions::default()).unwrap_err();
    match &err {
        StoreError::SchemaTooNew { found, supported } => {
            assert_eq!(*found, newer);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("expected a schema version error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&format!("schema version {newer}")), "{text}");

    // The refusal changed nothing: the version is still the newer one.
    let db = Database::create(db_path(&dir)).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    let stored = meta.get("schema_version").unwrap().unwrap();
    assert_eq!(stored.value(), newer.to_le_bytes());
}

#[tokio::test]
async fn malformed_schema_version_is_a_corrupt_meta_record() {
    let dir = temp_dir();
    store_with_one_of_each(&dir).await;
    write_raw(&db_path(&dir), META, "schema_version", &[1, 0, 0]);

    match Store::open(&db_path(&dir), StoreOptions::default()).unwrap_err() {
        StoreError::Corrupt { table, key, .. } => {
            assert_eq!(table, "meta");
            assert_eq!(key, "\"schema_version\"");
        }
        other => panic!("expected a corrupt meta error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_bare_redb_file_is_initialised_with_the_current_version() {
    let dir = temp_dir();
    drop(Database::create(db_path(&dir)).unwrap());

    let store = open(&dir);
    assert!(store.load_broker_state().unwrap().sessions.is_empty());
    store.close().unwrap();

    let db = Database::create(db_path(&dir)).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    let stored = meta.get("schema_version").unwrap().unwrap();
    assert_eq!(stored.value(), SCHEMA_VERSION.to_le_bytes());
}
