//! The `store` action into the sealed telemetry store: readings a rule
//! keeps can be queried back, raw message included.

use std::sync::{Arc, RwLock};

use anyhow::Context;
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

#[tokio::test]
async fn store_latency_is_measured_from_the_readings_own_timestamp() -> anyhow::Result<()> {
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
    // The device says when it measured, to a microsecond.
    engine.create(
        "keep",
        document::parse_document(
            r#"{"sql": "SELECT value, measured_ms FROM 'city/+/things/+/telemetry'",
                "actions": [{"store": {"thingName": "${topic(4)}", "metrics": ["value"],
                                       "timestamp": "${measured_ms}"}}]}"#,
        )?,
    )?;
    engine.create(
        "watch",
        document::parse_document(
            r#"{"sql": "SELECT value FROM 'city/+/things/+/telemetry'",
                "actions": [{"metric": {"metricNamespace": "city", "metricName": "value",
                                        "metricValue": "${value}", "metricUnit": "None"}}]}"#,
        )?,
    )?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64()
        * 1000.0;
    // Measured 250.5 ms before now.
    let measured_ms = ((now_ms - 250.5) * 1000.0).floor() / 1000.0;
    let message = Arc::new(StoredMessage {
        topic: "city/centre/things/lamp-1/telemetry".into(),
        payload: Bytes::from(format!(
            r#"{{"value": 21.5, "measured_ms": {measured_ms:.3}}}"#
        )),
        qos: QoS::AtLeastOnce,
        retain: false,
        expires_at_ms: None,
        properties: PublishProperties::default(),
        received_at_ms: now_ms as u64,
    });
    engine.observer().observe(&message, Some("lamp-1"));

    let keep = [("rule", "keep")];
    wait_for_async(
        "the lag observed",
        std::time::Duration::from_secs(10),
        || {
            let monitor = monitor.clone();
            async move {
                monitor
                    .snapshot()
                    .histogram("rules_store_lag_seconds", &keep)
                    .is_some_and(|d| d.count == 1)
            }
        },
    )
    .await?;
    let snapshot = monitor.snapshot();
    let lag = snapshot
        .histogram("rules_store_lag_seconds", &keep)
        .context("lag histogram")?;
    // From the device's timestamp, not the arrival: at least the 250.5 ms.
    assert!(lag.sum >= 0.2505 && lag.sum < 10.0, "lag {}", lag.sum);
    assert_eq!(lag.buckets.len(), 180, "179 bounds and +Inf");
    let append = snapshot
        .histogram("rules_store_seconds", &keep)
        .context("append histogram")?;
    assert_eq!(append.count, 1);
    assert!(append.sum <= lag.sum);
    // Only rules that store have them.
    assert!(
        snapshot
            .histogram("rules_store_lag_seconds", &[("rule", "watch")])
            .is_none()
    );
    // The store keeps whole milliseconds.
    let stored = telemetry.query(Query::thing("lamp-1")).await?;
    assert_eq!(stored.readings[0].timestamp_ms, measured_ms.floor() as u64);
    Ok(())
}
