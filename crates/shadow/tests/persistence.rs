//! Shadows in the redb store survive a restart: documents, versions, the
//! version counter of a deleted shadow, and the list of named shadows.

mod common;

use std::sync::Arc;

use civitas_shadow::{ManualClock, Requester, ShadowService};
use civitas_store::{Store, StoreOptions};
use common::*;
use serde_json::{Value, json};

fn open(path: &std::path::Path, clock: &Arc<ManualClock>) -> (Store, ShadowService) {
    let store = Store::open(path, StoreOptions::default()).expect("open store");
    let shadows = ShadowService::new(store.clone(), Arc::clone(clock));
    (store, shadows)
}

fn publish(shadows: &ShadowService, topic: &str, payload: &str) -> Vec<(String, Value)> {
    shadows
        .handle_mqtt(topic, payload.as_bytes(), &Requester::new("d"))
        .expect("shadow topic")
        .into_iter()
        .map(|r| (r.topic, serde_json::from_slice(&r.payload).expect("JSON")))
        .collect()
}

#[test]
fn shadows_survive_a_restart() {
    let dir = tempfile::Builder::new()
        .prefix("shadow-persistence")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let path = dir.path().join("state.redb");
    let clock = Arc::new(ManualClock::new(NOW_MS));

    let (store, shadows) = open(&path, &clock);
    publish(
        &shadows,
        "$aws/things/lamp/shadow/update",
        r#"{"state":{"desired":{"color":"RED","dim":{"level":3}},"reported":{"color":"GREEN"}}}"#,
    );
    clock.advance(1000);
    publish(
        &shadows,
        "$aws/things/lamp/shadow/update",
        r#"{"state":{"reported":{"dim":{"level":2}}}}"#,
    );
    publish(
        &shadows,
        "$aws/things/lamp/shadow/name/cfg/update",
        r#"{"state":{"reported":{"fw":"1.2"}}}"#,
    );
    publish(
        &shadows,
        "$aws/things/lamp/shadow/name/gone/update",
        r#"{"state":{"reported":{"x":1}}}"#,
    );
    publish(
        &shadows,
        "$aws/things/lamp/shadow/name/gone/update",
        r#"{"state":{"reported":{"x":2}}}"#,
    );
    publish(&shadows, "$aws/things/lamp/shadow/name/gone/delete", "");
    let before = publish(&shadows, "$aws/things/lamp/shadow/get", "");
    assert_eq!(before[0].1["version"], 2);
    drop(shadows);
    store.close().expect("close store");

    let (store, shadows) = open(&path, &clock);
    assert_eq!(publish(&shadows, "$aws/things/lamp/shadow/get", ""), before);
    assert_eq!(
        before[0].1["state"]["delta"],
        json!({"color": "RED", "dim": {"level": 3}})
    );
    assert_eq!(shadows.list_named_shadows("lamp").unwrap(), ["cfg"]);
    assert_eq!(
        publish(&shadows, "$aws/things/lamp/shadow/name/cfg/get", "")[0].1["state"],
        json!({"reported": {"fw": "1.2"}})
    );

    // Counting goes on where it stopped, for live and deleted shadows.
    let got = publish(
        &shadows,
        "$aws/things/lamp/shadow/update",
        r#"{"state":{"reported":{"color":"RED"}},"version":2}"#,
    );
    assert_eq!(got[0].1["version"], 3);
    assert_eq!(got[2].1["previous"]["version"], 2);
    let got = publish(
        &shadows,
        "$aws/things/lamp/shadow/name/gone/update",
        r#"{"state":{"reported":{"x":3}}}"#,
    );
    assert_eq!(got[0].1["version"], 3);
    store.close().expect("close store");
}
