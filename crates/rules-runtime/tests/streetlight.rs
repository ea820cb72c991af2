//! End to end: a streetlight publishes readings over mutual TLS. One rule
//! stores every reading and reports it into the lamp's shadow; another,
//! when `power_w > 150`, republishes an alert the control center sees,
//! raises an alarm and POSTs to an HTTPS webhook that is down at first
//! and is retried until it answers; a third rule's webhook never answers,
//! and its error action reports that to the control center.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use civitas_rules_runtime::{MemorySink, RuleCatalog, RulesEngine, RuntimeOptions, ShadowAccess};
use civitas_shadow::{MemoryShadowStore, ShadowService, ShadowTopicService, SystemClock};
use civitas_testkit::{ServiceFactory, TestBrokerOptions, wait_for};
use common::https::{closed_port, endpoint};
use common::{Client, TIMEOUT, broker_with, doc, monitor_deps};
use serde_json::json;

const TELEMETRY: &str = "city/centre/things/streetlight-1/telemetry";

#[tokio::test]
async fn a_streetlight_reading_is_stored_reported_alerted_and_posted() -> anyhow::Result<()> {
    let shadows = ShadowService::new(MemoryShadowStore::new(), SystemClock);
    let sink = Arc::new(MemorySink::new());
    let (mut deps, monitor) = monitor_deps();
    deps.shadows = Some(Arc::new(shadows.clone()) as Arc<dyn ShadowAccess>);
    deps.telemetry = Some(sink.clone());
    let engine = RulesEngine::start(RuleCatalog::in_memory(), deps, RuntimeOptions::default());
    let topic_service = Arc::new(ShadowTopicService::new(shadows.clone()));
    let shadow_factory: ServiceFactory = Arc::new(move |_| topic_service.clone());
    let broker = broker_with(&engine, TestBrokerOptions::default(), vec![shadow_factory]).await?;

    // The webhook endpoint refuses its first two connections.
    let mut hook = endpoint(&broker.pki.server_cert, &broker.pki.server_key, 2).await?;
    let ca_file = broker.pki.ca_bundle();
    let dead_port = closed_port().await?;

    engine.create(
        "streetlight_telemetry",
        doc(r#"{"sql": "SELECT * FROM 'city/+/things/+/telemetry'",
                "actions": [{"store": {"thingName": "${topic(4)}"}},
                            {"shadow": {"thingName": "${topic(4)}"}}]}"#),
    )?;
    engine.create(
        "streetlight_power",
        doc(&json!({
            "sql": "SELECT power_w, topic(4) AS lamp, topic(2) AS district \
                    FROM 'city/+/things/+/telemetry' WHERE power_w > 150",
            "description": "a lamp drawing too much power",
            "actions": [
                {"republish": {"topic": "city/${topic(2)}/alerts/${topic(4)}", "qos": 1}},
                {"cloudwatchAlarm": {"alarmName": "${topic(4)} power", "stateValue": "ALARM",
                                     "stateReason": "${power_w} W"}},
                {"http": {"url": format!("https://127.0.0.1:{}/hooks/power", hook.port),
                          "headers": [{"key": "x-civitas-lamp", "value": "${topic(4)}"}],
                          "caFile": ca_file, "initialBackoffMs": 20}}
            ],
            "errorAction": {"republish": {"topic": "city/centre/rule-errors"}}
        })
        .to_string()),
    )?;
    let dead_url = format!("https://127.0.0.1:{dead_port}/hooks/power");
    engine.create(
        "streetlight_unreachable",
        doc(&json!({
            "sql": "SELECT power_w FROM 'city/+/things/+/telemetry' WHERE power_w > 150",
            "actions": [{"http": {"url": dead_url, "caFile": ca_file,
                                  "maxAttempts": 2, "initialBackoffMs": 10}}],
            "errorAction": {"republish": {"topic": "city/centre/rule-errors"}}
        })
        .to_string()),
    )?;

    let cc = broker.device("control-center")?;
    let mut control = Client::connect(broker.mqtt_options(&cc).await?).await?;
    control.subscribe("city/#").await?;
    let lamp_files = broker.device("streetlight-1")?;
    let mut lamp = Client::connect(broker.mqtt_options(&lamp_files).await?).await?;
    lamp.subscribe("$aws/things/streetlight-1/shadow/get/accepted")
        .await?;

    lamp.publish(TELEMETRY, r#"{"power_w": 120, "lux": 30}"#)
        .await?;
    lamp.publish(TELEMETRY, r#"{"power_w": 180, "lux": 35}"#)
        .await?;

    // The control center sees the alert for the second reading only.
    assert_eq!(
        control
            .next_json_on("city/centre/alerts/streetlight-1")
            .await?,
        json!({"power_w": 180, "lamp": "streetlight-1", "district": "centre"})
    );

    // The webhook got it once it came back, after the refused attempts.
    let received = tokio::time::timeout(TIMEOUT, hook.requests.recv())
        .await?
        .expect("a POST");
    assert_eq!(received.path, "/hooks/power");
    assert!(hook.connections.load(Ordering::SeqCst) >= 3);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&received.body)?,
        json!({"power_w": 180, "lamp": "streetlight-1", "district": "centre"})
    );
    let header = |name: &str| {
        received
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("x-civitas-lamp").as_deref(), Some("streetlight-1"));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    wait_for("the webhook success count", TIMEOUT, || {
        monitor.snapshot().counter(
            "rules_action_success_total",
            &[("rule", "streetlight_power"), ("action", "2:http")],
        ) == Some(1)
    })
    .await?;

    // The webhook that never answers ends up at the error action.
    let error = control.next_json_on("city/centre/rule-errors").await?;
    assert_eq!(error["ruleName"], "streetlight_unreachable");
    assert_eq!(error["topic"], TELEMETRY);
    assert_eq!(error["clientId"], "streetlight-1");
    assert_eq!(error["failures"][0]["failedAction"], "HttpAction");
    assert_eq!(
        error["failures"][0]["failedResource"],
        format!("https://127.0.0.1:{dead_port}/hooks/power")
    );
    assert!(
        error["failures"][0]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("gave up after 2 attempts")),
        "{error}"
    );

    // Both readings were stored; the alarm is up.
    wait_for("both readings stored", TIMEOUT, || {
        sink.records().len() == 2
    })
    .await?;
    let records = sink.records();
    assert_eq!(records[1].thing, "streetlight-1");
    assert_eq!(
        records[1].metrics,
        vec![("lux".to_string(), 35.0), ("power_w".to_string(), 180.0)]
    );
    assert!(
        monitor
            .alarm("streetlight-1 power")
            .is_some_and(|a| a.is_raised() && a.message == "180 W")
    );

    // The shadow holds the last reading, as the lamp reads it back.
    wait_for("the shadow at version 2", TIMEOUT, || {
        shadows
            .get("streetlight-1", None)
            .is_ok_and(|d| d.version == 2)
    })
    .await?;
    lamp.publish("$aws/things/streetlight-1/shadow/get", "{}")
        .await?;
    let got = lamp
        .next_json_on("$aws/things/streetlight-1/shadow/get/accepted")
        .await?;
    assert_eq!(got["state"]["reported"], json!({"power_w": 180, "lux": 35}));
    assert_eq!(got["version"], 2);
    Ok(())
}
