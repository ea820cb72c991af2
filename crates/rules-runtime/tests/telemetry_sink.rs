//! The `store` action into the sealed telemetry store: readings a rule
//! keeps can be queried back, raw message included.

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use civitas_kms::{KeyRing, RootKey};
use civitas_monitor::Monitor;
use civitas_mqtt::{PublishProperties, QoS};
use civitas_rules_runtime::{
    ActionDeps, RuleCatalog, RulesEngine, RuntimeOptions, TelemetryStoreSink, document,
};
use civitas_store::{Store, StoreOptions, StoredMessage};
use civitas_telemetry::{LocalKeys, Query, TelemetryOptions, TelemetryStore};
use civitas_testkit::wait_for_async;

#[tokio::test]
async fn stored_readings_can_be_queried_back() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("civitas.redb"), StoreOptions::default())?;
    let ring = KeyRing::new(RootKey::from_bytes(zeroize::Zeroizing::new([7; 32])));
    let keys = Arc::new(LocalKeys::new(Arc::new(RwLock::new(ring)), None));
    let telemetry = TelemetryStore::open(store, keys, TelemetryOptions::default()).await?;
    let monitor = Monitor::new();
    let engine = RulesEngine::start(
        RuleCatalog::in_memory(),
        ActionDeps {
            telemetry: Some(Arc::new(TelemetryStoreSink(telemetry.clone()))),
            monitor: monitor.clone(),
            ..ActionDeps::default()
        },
        RuntimeOptions::default(),
    );
    engine.create(
        "keep",
        document::parse_document(
            r#"{"sql": "SELECT power_w, lux FROM 'city/+/things/+/telemetry'",
                "actions": [{"store": {"thingName": "${topic(4)}", "keepRaw": true,
                                       "timestamp": "${timestamp()}"}}]}"#,
        )?,
    )?;
    let message = Arc::new(StoredMessage {
        topic: "city/centre/things/lamp-1/telemetry".into(),
        payload: Bytes::from_static(br#"{"power_w": 180, "lux": 3, "note": "x"}"#),
        qos: QoS::AtLeastOnce,
        retain: false,
        expires_at_ms: None,
        properties: PublishProperties::default(),
        received_at_ms: 1_700_000_000_000,
    });
    engine.observer().observe(&message, Some("lamp-1"));

    wait_for_async("the readings", std::time::Duration::from_secs(10), || {
        let telemetry = telemetry.clone();
        async move {
            telemetry
                .query(Query::thing("lamp-1"))
                .await
                .is_ok_and(|r| r.readings.len() == 2)
        }
    })
    .await?;
    let result = telemetry
        .query(Query::thing("lamp-1").metric("power_w"))
        .await?;
    let reading = &result.readings[0];
    assert_eq!(reading.value, 180.0);
    assert_eq!(reading.timestamp_ms, 1_700_000_000_000);
    assert_eq!(
        monitor.snapshot().counter(
            "rules_action_success_total",
            &[("rule", "keep"), ("action", "0:store")]
        ),
        Some(1)
    );
    Ok(())
}
