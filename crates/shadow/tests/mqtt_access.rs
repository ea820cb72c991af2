//! Who may use a shadow, and how much at once, in a running broker: a
//! device confined to `$aws/things/{its id}/#` cannot read or change
//! another device's shadow, and a connection's eleventh request in flight
//! is refused with 429.

mod mqtt;

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use civitas_shadow::{MemoryShadowStore, ShadowStore, StoreFailure, StoredShadow};
use civitas_testkit::{TestBroker, TestBrokerOptions};
use mqtt::{Client, Protocol, expect, factory_over, shadow_factory};
use serde_json::json;

async fn other_devices_shadow_is_out_of_reach(protocol: Protocol) -> anyhow::Result<()> {
    let broker = TestBroker::start_with_services(
        TestBrokerOptions::with_anonymous(),
        vec![shadow_factory()],
    )
    .await?;
    let mut victim = Client::device(&broker, &broker.device("lamp-1")?, protocol).await?;
    victim
        .subscribed("$aws/things/lamp-1/shadow/update/+")
        .await?;
    victim.subscribed("$aws/things/lamp-1/shadow/get/+").await?;
    let mut operator = Client::operator(&broker, protocol).await?;
    operator.subscribed("$aws/things/+/shadow/#").await?;
    let mut intruder = Client::device(&broker, &broker.device("lamp-2")?, protocol).await?;

    assert!(
        !intruder
            .subscribe("$aws/things/lamp-1/shadow/update/accepted")
            .await?,
        "a device may not watch another device's shadow"
    );
    let authorized = intruder
        .publish(
            "$aws/things/lamp-1/shadow/update",
            r#"{"state":{"desired":{"power":"off"}}}"#,
        )
        .await?;
    // MQTT 5 says so in the PUBACK; MQTT 3.1.1 has no way to.
    assert_eq!(authorized, protocol == Protocol::V4);

    // Requests of one connection are handled in order, so once the
    // intruder's own request is answered the refused one would have been.
    intruder
        .subscribed("$aws/things/lamp-2/shadow/get/+")
        .await?;
    intruder
        .publish("$aws/things/lamp-2/shadow/get", "{}")
        .await?;
    let not_found = |thing: &str| json!({"code": 404, "message": format!("No shadow exists with name: '{thing}'")});
    assert_eq!(
        intruder.reply().await?,
        (
            "$aws/things/lamp-2/shadow/get/rejected".to_owned(),
            not_found("lamp-2")
        )
    );

    // lamp-1's shadow was not created, and nothing was published on its
    // topics but what lamp-1 itself asked for.
    victim
        .publish("$aws/things/lamp-1/shadow/get", "{}")
        .await?;
    assert_eq!(
        victim.reply().await?,
        (
            "$aws/things/lamp-1/shadow/get/rejected".to_owned(),
            not_found("lamp-1")
        )
    );
    assert_eq!(
        operator.replies(4).await?,
        expect(&[
            ("$aws/things/lamp-2/shadow/get", json!({})),
            (
                "$aws/things/lamp-2/shadow/get/rejected",
                not_found("lamp-2")
            ),
            ("$aws/things/lamp-1/shadow/get", json!({})),
            (
                "$aws/things/lamp-1/shadow/get/rejected",
                not_found("lamp-1")
            ),
        ])
    );
    Ok(())
}

#[tokio::test]
async fn other_devices_shadow_is_out_of_reach_over_mqtt_3_1_1() -> anyhow::Result<()> {
    other_devices_shadow_is_out_of_reach(Protocol::V4).await
}

#[tokio::test]
async fn other_devices_shadow_is_out_of_reach_over_mqtt_5() -> anyhow::Result<()> {
    other_devices_shadow_is_out_of_reach(Protocol::V5).await
}

/// Shadows in memory whose writes wait until the test opens the gate, so
/// that requests pile up behind the first one.
#[derive(Default)]
struct GatedStore {
    shadows: MemoryShadowStore,
    open: Mutex<bool>,
    opened: Condvar,
}

impl GatedStore {
    fn open(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.opened.notify_all();
    }
}

impl ShadowStore for GatedStore {
    fn load(&self, thing: &str, name: Option<&str>) -> Result<Option<StoredShadow>, StoreFailure> {
        self.shadows.load(thing, name)
    }

    fn save(
        &self,
        thing: &str,
        name: Option<&str>,
        shadow: &StoredShadow,
    ) -> Result<(), StoreFailure> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        while !*open {
            open = self
                .opened
                .wait(open)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(open);
        self.shadows.save(thing, name, shadow)
    }

    fn delete(&self, thing: &str, name: Option<&str>) -> Result<(), StoreFailure> {
        self.shadows.delete(thing, name)
    }

    fn names(&self, thing: &str) -> Result<Vec<String>, StoreFailure> {
        self.shadows.names(thing)
    }
}

#[tokio::test]
async fn the_eleventh_request_in_flight_is_refused_with_429() -> anyhow::Result<()> {
    let store = Arc::new(GatedStore::default());
    let broker = TestBroker::start_with_services(
        TestBrokerOptions::default(),
        vec![factory_over(store.clone())],
    )
    .await?;
    let mut device = Client::device(&broker, &broker.device("lamp-1")?, Protocol::V4).await?;
    device
        .subscribed("$aws/things/lamp-1/shadow/update/+")
        .await?;
    let update = "$aws/things/lamp-1/shadow/update";
    for i in 0..12 {
        device
            .send(
                update,
                format!(r#"{{"state":{{"reported":{{"n":{i}}}}},"clientToken":"u{i}"}}"#),
            )
            .await?;
    }

    // The first request holds its write; nine wait behind it; the last
    // two are refused at once, while the others are still in flight.
    let too_many = |token: &str| json!({"code": 429, "message": "Too Many Requests", "timestamp": "T", "clientToken": token});
    assert_eq!(
        device.replies(2).await?,
        expect(&[
            ("$aws/things/lamp-1/shadow/update/rejected", too_many("u10")),
            ("$aws/things/lamp-1/shadow/update/rejected", too_many("u11")),
        ])
    );

    store.open();
    for i in 0..10u64 {
        let (topic, accepted) = device.reply().await?;
        assert_eq!(topic, "$aws/things/lamp-1/shadow/update/accepted");
        assert_eq!(accepted["clientToken"], format!("u{i}"));
        assert_eq!(accepted["version"], i + 1);
        let (topic, _) = device.reply().await?;
        assert_eq!(topic, "$aws/things/lamp-1/shadow/update/documents");
    }

    // Every place was given back: a full batch of ten is admitted again.
    for i in 0..10 {
        device
            .send(update, format!(r#"{{"state":{{"reported":{{"m":{i}}}}}}}"#))
            .await?;
    }
    for _ in 0..10 {
        let (topic, _) = device.reply().await?;
        assert_eq!(topic, "$aws/things/lamp-1/shadow/update/accepted");
        let (topic, _) = device.reply().await?;
        assert_eq!(topic, "$aws/things/lamp-1/shadow/update/documents");
    }
    Ok(())
}
