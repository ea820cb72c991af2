//! Device signatures at ingest: the `store` action keeps a signed reading
//! only once its signature verifies against the device's key, refuses a
//! tampered one (to the error action, counted, reported to the key
//! source), and stores unsigned readings unverified.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use civitas_kms::{KeyRing, RootKey};
use civitas_monitor::Monitor;
use civitas_mqtt::{PublishProperties, QoS};
use civitas_rules_runtime::{
    ActionDeps, DeviceKeys, MemorySink, RuleCatalog, RulesEngine, RuntimeOptions, SignatureRefusal,
    TelemetryStoreSink,
};
use civitas_store::{Store, StoreOptions, StoredMessage};
use civitas_telemetry::signature::{
    DevicePublicKey, DeviceSigner, SIGNATURE_USER_PROPERTY, seal_envelope, verify_detached,
};
use civitas_telemetry::{LocalKeys, Query, Reading, TelemetryOptions, TelemetryStore};
use civitas_testkit::wait_for_async;
use common::{TIMEOUT, anon_client, broker_with, doc};

const TOPIC: &str = "city/centre/things/lamp-1/telemetry";
const STORE_RULE: &str = r#"{"sql": "SELECT power_w FROM 'city/+/things/+/telemetry'",
    "actions": [{"store": {"thingName": "${topic(4)}", "keepRaw": true}}],
    "errorAction": {"republish": {"topic": "rules/errors"}}}"#;

/// Device keys by client id, remembering every refusal reported.
#[derive(Debug, Default)]
struct TestKeys {
    keys: HashMap<String, Vec<DevicePublicKey>>,
    refused: parking_lot::Mutex<Vec<SignatureRefusal>>,
}

impl DeviceKeys for TestKeys {
    fn public_keys(&self, client_id: &str) -> Vec<DevicePublicKey> {
        self.keys.get(client_id).cloned().unwrap_or_default()
    }

    fn signature_refused(&self, refusal: &SignatureRefusal) {
        self.refused.lock().push(refusal.clone());
    }
}

/// A device signer and the keys that know its public key as `lamp-1`.
fn lamp_keys() -> anyhow::Result<(DeviceSigner, Arc<TestKeys>)> {
    let (signer, _pkcs8) = DeviceSigner::generate()?;
    let key = DevicePublicKey::from_spki_der(&signer.public_key_spki_der()?)?;
    let keys = TestKeys {
        keys: HashMap::from([("lamp-1".to_owned(), vec![key])]),
        ..TestKeys::default()
    };
    Ok((signer, Arc::new(keys)))
}

async fn telemetry_store(dir: &std::path::Path) -> anyhow::Result<TelemetryStore> {
    let store = Store::open(&dir.join("civitas.redb"), StoreOptions::default())?;
    let ring = KeyRing::new(RootKey::from_bytes(zeroize::Zeroizing::new([7; 32])));
    let keys = Arc::new(LocalKeys::new(Arc::new(RwLock::new(ring)), None));
    Ok(TelemetryStore::open(store, keys, TelemetryOptions::default()).await?)
}

fn message(payload: impl Into<Bytes>, signature: Option<&str>) -> Arc<StoredMessage> {
    let mut properties = PublishProperties::default();
    if let Some(jws) = signature {
        properties
            .user_properties
            .push((SIGNATURE_USER_PROPERTY.to_owned(), jws.to_owned()));
    }
    Arc::new(StoredMessage {
        topic: TOPIC.into(),
        payload: payload.into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        expires_at_ms: None,
        properties,
        received_at_ms: 1_700_000_000_000,
    })
}

async fn one_reading(telemetry: &TelemetryStore) -> anyhow::Result<Reading> {
    wait_for_async("the reading", TIMEOUT, || {
        let telemetry = telemetry.clone();
        async move {
            telemetry
                .query(Query::thing("lamp-1"))
                .await
                .is_ok_and(|r| r.readings.len() == 1)
        }
    })
    .await?;
    let mut result = telemetry.query(Query::thing("lamp-1")).await?;
    Ok(result.readings.remove(0))
}

fn engine(deps: ActionDeps) -> anyhow::Result<RulesEngine> {
    let engine = RulesEngine::start(RuleCatalog::in_memory(), deps, RuntimeOptions::default());
    engine.create("keep", doc(STORE_RULE))?;
    Ok(engine)
}

/// The `keep` rule storing into a sealed telemetry store under `dir`,
/// verifying against lamp-1's key; its signer and the refusals reported.
async fn keep_in_telemetry(
    dir: &std::path::Path,
) -> anyhow::Result<(TelemetryStore, DeviceSigner, Arc<TestKeys>, RulesEngine)> {
    let telemetry = telemetry_store(dir).await?;
    let (signer, keys) = lamp_keys()?;
    let engine = engine(ActionDeps {
        telemetry: Some(Arc::new(TelemetryStoreSink(telemetry.clone()))),
        device_keys: Some(keys.clone()),
        ..ActionDeps::default()
    })?;
    Ok((telemetry, signer, keys, engine))
}

#[tokio::test]
async fn a_signed_reading_is_stored_verified_with_its_signed_message() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (telemetry, signer, keys, engine) = keep_in_telemetry(dir.path()).await?;
    let payload: &'static [u8] = br#"{"power_w": 180, "note": "signed"}"#;
    let jws = signer.sign_detached(payload)?;
    engine
        .observer()
        .observe(&message(payload, Some(&jws)), Some("lamp-1"));

    let reading = one_reading(&telemetry).await?;
    assert_eq!((reading.metric.as_str(), reading.value), ("power_w", 180.0));
    assert!(reading.verified);
    assert_eq!(reading.signature.as_deref(), Some(jws.as_str()));
    // keepRaw keeps what the device signed (not the rule's output), so the
    // stored reading can be verified again.
    assert_eq!(reading.raw.as_deref(), Some(payload));
    let key = DevicePublicKey::from_spki_der(&signer.public_key_spki_der()?)?;
    verify_detached(payload, &jws, &key)?;
    assert!(keys.refused.lock().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_tampered_reading_is_refused_counted_and_sent_to_the_error_action() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let telemetry = telemetry_store(dir.path()).await?;
    let (signer, keys) = lamp_keys()?;
    let monitor = Monitor::new();
    let engine = RulesEngine::start(
        RuleCatalog::in_memory(),
        ActionDeps {
            telemetry: Some(Arc::new(TelemetryStoreSink(telemetry.clone()))),
            device_keys: Some(keys.clone()),
            monitor: monitor.clone(),
            ..ActionDeps::default()
        },
        RuntimeOptions::default(),
    );
    let broker = broker_with(
        &engine,
        civitas_testkit::TestBrokerOptions::with_anonymous(),
        Vec::new(),
    )
    .await?;
    engine.create("keep", doc(STORE_RULE))?;
    let mut watcher = anon_client(&broker, "watcher").await?;
    watcher.subscribe("rules/errors").await?;

    let jws = signer.sign_detached(br#"{"power_w": 180}"#)?;
    engine.observer().observe(
        &message(&br#"{"power_w": 999}"#[..], Some(&jws)),
        Some("lamp-1"),
    );

    let error = watcher.next_json("rules/errors").await?;
    assert_eq!(error["ruleName"], "keep");
    assert_eq!(error["clientId"], "lamp-1");
    let failure = &error["failures"][0];
    assert_eq!(failure["failedAction"], "StoreAction");
    assert_eq!(failure["failedResource"], "lamp-1");
    assert_eq!(
        failure["errorMessage"],
        "reading refused: signature of \"lamp-1\": signature does not verify against the \
         message and the device's certificate key"
    );
    assert_eq!(
        monitor.snapshot().counter(
            "telemetry_signature_failures_total",
            &[("rule", "keep"), ("reason", "invalid")]
        ),
        Some(1)
    );
    let refused = keys.refused.lock().clone();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (
            refused[0].client_id.as_deref(),
            refused[0].thing.as_str(),
            refused[0].reason
        ),
        (Some("lamp-1"), "lamp-1", "invalid")
    );
    // The store action ran (and failed) before the error document went
    // out: nothing was stored.
    assert!(
        telemetry
            .query(Query::thing("lamp-1"))
            .await?
            .readings
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn an_unsigned_reading_is_stored_unverified() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (telemetry, _signer, keys, engine) = keep_in_telemetry(dir.path()).await?;
    engine
        .observer()
        .observe(&message(&br#"{"power_w": 42}"#[..], None), Some("lamp-1"));

    let reading = one_reading(&telemetry).await?;
    assert_eq!(reading.value, 42.0);
    assert!(!reading.verified);
    assert_eq!(reading.signature, None);
    assert!(keys.refused.lock().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_signature_without_a_device_key_or_with_a_twin_is_refused() -> anyhow::Result<()> {
    let (signer, keys) = lamp_keys()?;
    let sink = Arc::new(MemorySink::new());
    let monitor = Monitor::new();
    let engine = engine(ActionDeps {
        telemetry: Some(sink.clone()),
        device_keys: Some(keys.clone()),
        monitor: monitor.clone(),
        ..ActionDeps::default()
    })?;
    let payload: &'static [u8] = br#"{"power_w": 1}"#;
    let jws = signer.sign_detached(payload)?;
    // Signed by lamp-1's key, published as a client the registry has no
    // key for.
    engine
        .observer()
        .observe(&message(payload, Some(&jws)), Some("lamp-2"));
    // Two signatures: a verifier must not choose.
    let mut twin = (*message(payload, Some(&jws))).clone();
    twin.properties
        .user_properties
        .push((SIGNATURE_USER_PROPERTY.to_owned(), jws.clone()));
    engine.observer().observe(&Arc::new(twin), Some("lamp-1"));

    let failures = |reason: &'static str| {
        let monitor = monitor.clone();
        move || {
            monitor.snapshot().counter(
                "telemetry_signature_failures_total",
                &[("rule", "keep"), ("reason", reason)],
            ) == Some(1)
        }
    };
    civitas_testkit::wait_for("the missing key counted", TIMEOUT, failures("no_key")).await?;
    civitas_testkit::wait_for("the twin counted", TIMEOUT, failures("ambiguous")).await?;
    assert!(sink.records().is_empty());
    let refused = keys.refused.lock().clone();
    assert_eq!(refused.len(), 2);
    assert!(
        refused
            .iter()
            .any(|r| r.error.contains("no active certificate key")),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_signed_envelope_is_opened_then_stored_verified() -> anyhow::Result<()> {
    let (signer, keys) = lamp_keys()?;
    let sink = Arc::new(MemorySink::new());
    let monitor = Monitor::new();
    let engine = RulesEngine::start(
        RuleCatalog::in_memory(),
        ActionDeps {
            telemetry: Some(sink.clone()),
            device_keys: Some(keys.clone()),
            monitor: monitor.clone(),
            ..ActionDeps::default()
        },
        RuntimeOptions::default(),
    );
    engine.create(
        "keep",
        doc(
            r#"{"sql": "SELECT power_w FROM 'city/+/things/+/telemetry'",
                "actions": [{"store": {"thingName": "${topic(4)}", "keepRaw": true,
                                       "signedEnvelope": true}}]}"#,
        ),
    )?;
    let payload: &'static [u8] = br#"{"power_w": 7}"#;
    let sealed = seal_envelope(payload, &signer.sign_detached(payload)?);
    engine
        .observer()
        .observe(&message(sealed, None), Some("lamp-1"));
    // Not an envelope, on a topic that carries them.
    engine
        .observer()
        .observe(&message(&br#"{"power_w": 8}"#[..], None), Some("lamp-1"));

    civitas_testkit::wait_for("the envelope stored", TIMEOUT, || sink.records().len() == 1).await?;
    civitas_testkit::wait_for("the bare message refused", TIMEOUT, || {
        monitor.snapshot().counter(
            "telemetry_signature_failures_total",
            &[("rule", "keep"), ("reason", "envelope")],
        ) == Some(1)
    })
    .await?;
    let record = &sink.records()[0];
    assert_eq!(record.metrics, vec![("power_w".to_owned(), 7.0)]);
    assert!(record.signature.is_some());
    assert_eq!(record.raw.as_deref(), Some(payload));
    assert_eq!(sink.records().len(), 1);
    Ok(())
}

#[tokio::test]
async fn basic_ingest_keeps_the_signature_property() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (telemetry, signer, keys, engine) = keep_in_telemetry(dir.path()).await?;
    let ingest = engine.basic_ingest();
    let request = |payload: &'static [u8], jws: String| civitas_broker::ServiceRequest {
        topic: format!("$aws/rules/keep/{TOPIC}"),
        payload: Bytes::from_static(payload),
        client_id: Arc::from("lamp-1"),
        principal: "lamp-1".into(),
        certificate_serial: None,
        user_properties: vec![(SIGNATURE_USER_PROPERTY.to_owned(), jws)],
    };
    // Signed over other bytes: refused, not stored unverified.
    let jws = signer.sign_detached(br#"{"power_w": 999}"#)?;
    ingest.handle(request(br#"{"power_w": 1}"#, jws));
    wait_for_async("the refusal", TIMEOUT, || {
        let keys = keys.clone();
        async move { keys.refused.lock().len() == 1 }
    })
    .await?;
    assert_eq!(keys.refused.lock()[0].reason, "invalid");
    // Signed as sent: stored verified.
    let payload: &'static [u8] = br#"{"power_w": 180}"#;
    let jws = signer.sign_detached(payload)?;
    ingest.handle(request(payload, jws.clone()));
    let reading = one_reading(&telemetry).await?;
    assert_eq!(reading.value, 180.0);
    assert!(reading.verified);
    assert_eq!(reading.signature.as_deref(), Some(jws.as_str()));
    Ok(())
}
