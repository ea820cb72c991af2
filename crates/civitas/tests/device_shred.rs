//! `civitas device delete NAME --shred` as a real binary: with no server
//! (the store and key ring opened by the command) and through a running
//! `civitas up`, the device's sealed readings become unreadable while
//! another device's still read, and the key's destruction is on the audit
//! record.

mod support;

use std::path::Path;
use std::process::Output;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use civitas_kms::{KeyRing, RootKey};
use civitas_store::{Store, StoreOptions};
use civitas_telemetry::{
    LocalKeys, NewReading, Query, QueryResult, TelemetryOptions, TelemetryStore, Unreadable, now_ms,
};
use support::Civitas;

const SHREDDED: &str = "lamp-a";
const KEPT: &str = "lamp-b";

fn civitas(data_dir: &Path, args: &[&str]) -> Output {
    support::cli(data_dir, args).unwrap()
}

fn ok(data_dir: &Path, args: &[&str]) -> String {
    support::cli_ok(data_dir, args).unwrap()
}

/// The data directory's telemetry store, over its key ring, as civitas
/// opens it.
async fn open_telemetry(data_dir: &Path) -> (Store, TelemetryStore) {
    let kms = data_dir.join("kms");
    let root = RootKey::load_key_file(&kms.join("root.key")).unwrap();
    let ring_file = kms.join(civitas_kms::RING_FILE_NAME);
    let ring = KeyRing::load(&ring_file, root).unwrap();
    let keys = LocalKeys::new(Arc::new(RwLock::new(ring)), Some(ring_file));
    let store = Store::open(&data_dir.join("civitas.redb"), StoreOptions::default()).unwrap();
    let telemetry =
        TelemetryStore::open(store.clone(), Arc::new(keys), TelemetryOptions::default())
            .await
            .unwrap();
    (store, telemetry)
}

/// Three readings for each device, sealed and on disk.
fn store_readings(data_dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (store, telemetry) = open_telemetry(data_dir).await;
        let now = now_ms();
        let readings = [SHREDDED, KEPT]
            .iter()
            .flat_map(|thing| {
                (0..3u64)
                    .map(move |i| NewReading::new(*thing, "power_w", now - 3 + i, 40.0 + i as f64))
            })
            .collect();
        telemetry.append(readings).await.unwrap();
        telemetry.flush().await.unwrap();
        drop(telemetry);
        store.close().unwrap();
    });
}

/// What a query of each device's readings answers now.
fn read_back(data_dir: &Path) -> (QueryResult, QueryResult) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (store, telemetry) = open_telemetry(data_dir).await;
        let shredded = telemetry.query(Query::thing(SHREDDED)).await.unwrap();
        let kept = telemetry.query(Query::thing(KEPT)).await.unwrap();
        drop(telemetry);
        store.close().unwrap();
        (shredded, kept)
    })
}

fn assert_shredded_and_kept(data_dir: &Path) {
    let (shredded, kept) = read_back(data_dir);
    assert!(shredded.readings.is_empty(), "{shredded:?}");
    assert!(
        matches!(
            shredded.unreadable.as_slice(),
            [Unreadable::Shredded { thing, blocks }] if thing == SHREDDED && *blocks > 0
        ),
        "{shredded:?}"
    );
    assert_eq!(kept.readings.len(), 3, "{kept:?}");
    assert!(kept.unreadable.is_empty(), "{kept:?}");
    assert!(kept.readings.iter().all(|r| r.thing == KEPT));
}

/// The `key.destroy_key` records on the audit log.
fn key_destructions(data_dir: &Path) -> String {
    ok(data_dir, &["audit", "query", "--action", "key.destroy_key"])
}

fn add_devices(data_dir: &Path) {
    for name in [SHREDDED, KEPT] {
        ok(data_dir, &["device", "add", name]);
    }
}

#[test]
fn shredding_with_no_server_makes_only_that_devices_readings_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_devices(&data);
    store_readings(&data);
    let (before, _) = read_back(&data);
    assert_eq!(before.readings.len(), 3, "{before:?}");

    let out = ok(&data, &["device", "delete", SHREDDED, "--shred"]);
    assert!(out.contains(&format!("deleted {SHREDDED}")), "{out}");
    assert!(out.contains("revoked "), "{out}");
    assert!(
        out.contains(&format!(
            "shredded the telemetry of {SHREDDED}: its key device/{SHREDDED} is destroyed"
        )),
        "{out}"
    );

    assert_shredded_and_kept(&data);
    let audit = key_destructions(&data);
    assert!(audit.contains(&format!("device/{SHREDDED}")), "{audit}");
    assert!(!audit.contains(&format!("device/{KEPT}")), "{audit}");
    let listed = ok(&data, &["device", "list"]);
    assert!(
        !listed.contains(SHREDDED) && listed.contains(KEPT),
        "{listed}"
    );

    // Again, once the device is gone: nothing left to destroy, said so,
    // and still a success (a shred that failed after the delete can be
    // retried this way).
    let again = ok(&data, &["device", "delete", SHREDDED, "--shred", "--json"]);
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["deleted"], serde_json::Value::Null, "{again}");
    assert_eq!(again["shredded"]["key_destroyed"], false, "{again}");
    assert_shredded_and_kept(&data);
}

#[test]
fn a_name_unknown_to_the_registry_and_the_key_ring_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_devices(&data);
    let out = civitas(&data, &["device", "delete", "lamp-z", "--shred"]);
    // Unknown to the registry and without telemetry: nothing to do, but
    // the operator is told so rather than left guessing.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("lamp-z is not registered"), "{stdout}");
    assert!(stdout.contains("no telemetry key left"), "{stdout}");
    let audit = key_destructions(&data);
    assert!(!audit.contains("device/"), "{audit}");
}

#[test]
fn shredding_through_a_running_civitas_makes_only_that_devices_readings_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_devices(&data);
    store_readings(&data);

    let server = Civitas::start(&data).unwrap();
    let out = ok(&data, &["device", "delete", SHREDDED, "--shred"]);
    assert!(out.contains(&format!("deleted {SHREDDED}")), "{out}");
    assert!(
        out.contains(&format!("shredded the telemetry of {SHREDDED}")),
        "{out}"
    );
    // The server drains its key ring's events onto the audit log
    // periodically.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let audit = key_destructions(&data);
        if audit.contains(&format!("device/{SHREDDED}")) {
            assert!(!audit.contains(&format!("device/{KEPT}")), "{audit}");
            break;
        }
        assert!(Instant::now() < deadline, "no key.destroy_key: {audit}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(server.terminate().unwrap().success());

    assert_shredded_and_kept(&data);
}
