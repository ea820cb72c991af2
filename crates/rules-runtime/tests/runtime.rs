//! The engine inside a running broker: rules follow their FROM filter,
//! changes take effect at once, Basic Ingest reaches its rule alone, a
//! slow action delays no client while overflow is counted and alarmed,
//! and failures reach the error action in AWS's shape.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use civitas_rules_runtime::{
    RuleCatalog, RulesError, RuntimeOptions, SinkFuture, TelemetryRecord, TelemetrySink,
};
use civitas_store::{Op, RuleRecord, Store, StoreOptions};
use civitas_testkit::wait_for;
use common::{TIMEOUT, anon_client, doc, engine_and_broker, monitor_deps};
use parking_lot::Mutex;
use serde_json::json;

const TELEMETRY: &str = "city/oslo/things/lamp-1/telemetry";

#[tokio::test]
async fn rules_follow_their_filter_and_changes_are_live() -> anyhow::Result<()> {
    let (deps, monitor) = monitor_deps();
    let (engine, broker) = engine_and_broker(deps, RuntimeOptions::default()).await?;
    let alerts = r#"{"sql": "SELECT power_w, topic(4) AS lamp FROM 'city/+/things/+/telemetry' WHERE power_w > 150",
        "actions": [{"republish": {"topic": "city/alerts/${topic(4)}", "qos": 1}},
                    {"cloudwatchMetric": {"metricNamespace": "city", "metricName": "lamp_power_w",
                                          "metricValue": "${power_w}", "metricUnit": "W"}}]}"#;
    engine.create("lamp_alerts", doc(alerts))?;
    engine.create(
        "lamp_alarm",
        doc(r#"{"sql": "SELECT * FROM 'city/+/things/+/telemetry'",
                "actions": [{"cloudwatchAlarm": {"alarmName": "lamp_${topic(4)}_power",
                    "stateValue": "${CASE WHEN power_w > 150 THEN 'ALARM' ELSE 'OK' END}",
                    "stateReason": "power ${power_w} W"}}]}"#),
    )?;
    let mut watcher = anon_client(&broker, "watcher").await?;
    watcher.subscribe("city/alerts/#").await?;
    let mut lamp = anon_client(&broker, "lamp-1").await?;
    let alarm = |m: &civitas_monitor::Monitor| m.alarm("lamp_lamp-1_power");

    lamp.publish(TELEMETRY, r#"{"power_w": 180}"#).await?;
    assert_eq!(
        watcher.next_json("city/alerts/lamp-1").await?,
        json!({"power_w": 180, "lamp": "lamp-1"})
    );
    wait_for("the alarm", TIMEOUT, || {
        alarm(&monitor).is_some_and(|a| a.is_raised())
    })
    .await?;
    assert_eq!(
        monitor
            .snapshot()
            .gauge("lamp_power_w", &[("namespace", "city"), ("unit", "W")]),
        Some(180.0)
    );

    // Below the threshold: no alert, and the alarm clears.
    lamp.publish(TELEMETRY, r#"{"power_w": 100}"#).await?;
    wait_for("the alarm to clear", TIMEOUT, || {
        alarm(&monitor).is_some_and(|a| !a.is_raised())
    })
    .await?;

    // Disabled, the rule misses a message; enabled again, it takes the next.
    assert!(!engine.set_enabled("lamp_alerts", false)?.enabled);
    assert_eq!(engine.live_rules(), ["lamp_alarm"]);
    lamp.publish(TELEMETRY, r#"{"power_w": 190}"#).await?;
    wait_for("the alarm again", TIMEOUT, || {
        alarm(&monitor).is_some_and(|a| a.is_raised())
    })
    .await?;
    engine.set_enabled("lamp_alerts", true)?;
    lamp.publish(TELEMETRY, r#"{"power_w": 200}"#).await?;
    assert_eq!(
        watcher.next_json("city/alerts/lamp-1").await?["power_w"],
        200
    );

    // Replaced, it republishes elsewhere.
    engine.replace(
        "lamp_alerts",
        doc(&alerts.replace("city/alerts/", "city/alerts/v2/")),
    )?;
    lamp.publish(TELEMETRY, r#"{"power_w": 210}"#).await?;
    assert_eq!(
        watcher.next_json("city/alerts/v2/lamp-1").await?["power_w"],
        210
    );

    // Four messages reached the rule (not the one while it was disabled),
    // three passed its WHERE.
    let metrics = monitor.snapshot();
    let by_rule = [("rule", "lamp_alerts")];
    assert_eq!(metrics.counter("rules_matched_total", &by_rule), Some(4));
    assert_eq!(metrics.counter("rules_executed_total", &by_rule), Some(3));
    assert_eq!(
        metrics.counter(
            "rules_action_success_total",
            &[("rule", "lamp_alerts"), ("action", "0:republish")]
        ),
        Some(3)
    );
    assert!(
        metrics
            .histogram("rules_evaluation_seconds", &by_rule)
            .is_some_and(|h| h.count == 4)
    );

    // Deleted, it sees nothing more: the observer counts a match before
    // the publisher's PUBACK, so the count would have moved by now.
    engine.delete("lamp_alerts")?;
    lamp.publish(TELEMETRY, r#"{"power_w": 220}"#).await?;
    assert_eq!(
        monitor.snapshot().counter("rules_matched_total", &by_rule),
        Some(4)
    );
    assert!(matches!(
        engine.catalog().get("lamp_alerts"),
        Err(RulesError::NotFound(_))
    ));
    Ok(())
}

#[tokio::test]
async fn basic_ingest_reaches_the_named_rule_and_nobody_else() -> anyhow::Result<()> {
    let (deps, monitor) = monitor_deps();
    let (engine, broker) = engine_and_broker(deps, RuntimeOptions::default()).await?;
    // The FROM filter does not matter for Basic Ingest, as in AWS.
    engine.create(
        "ingest_rule",
        doc(r#"{"sql": "SELECT v, topic() AS t FROM 'never/matches'",
                "actions": [{"republish": {"topic": "ingested/${topic()}"}}]}"#),
    )?;
    // Would see Basic Ingest messages if the broker routed them.
    engine.create(
        "eavesdropper",
        doc(r#"{"sql": "SELECT * FROM '$aws/rules/#'",
                "actions": [{"republish": {"topic": "leak"}}]}"#),
    )?;
    let mut watcher = anon_client(&broker, "watcher").await?;
    for filter in ["ingested/#", "$aws/rules/#", "leak", "marker"] {
        watcher.subscribe(filter).await?;
    }
    let mut device = anon_client(&broker, "lamp-1").await?;
    device
        .publish("$aws/rules/ingest_rule/city/x", r#"{"v": 1}"#)
        .await?;
    assert_eq!(
        watcher.next_json("ingested/city/x").await?,
        json!({"v": 1, "t": "city/x"})
    );

    device.publish("$aws/rules/no_such_rule/x", "{}").await?;
    wait_for("the unmatched count", TIMEOUT, || {
        monitor
            .snapshot()
            .counter("rules_basic_ingest_unmatched_total", &[])
            == Some(1)
    })
    .await?;
    device.publish("marker", "m").await?;
    assert_eq!(watcher.next_publish().await?.topic, "marker");
    Ok(())
}

/// Holds every `store` until the test opens the gate.
#[derive(Debug)]
struct GatedSink {
    gate: tokio::sync::Semaphore,
    started: AtomicUsize,
    stored: Mutex<Vec<TelemetryRecord>>,
}

impl TelemetrySink for GatedSink {
    fn store(&self, record: TelemetryRecord) -> SinkFuture<'_> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
            let _pass = self
                .gate
                .acquire()
                .await
                .map_err(|e| civitas_rules_runtime::SinkError(e.to_string()))?;
            self.stored.lock().push(record);
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_slow_action_delays_no_client_and_overflow_is_counted_and_alarmed() -> anyhow::Result<()>
{
    let sink = Arc::new(GatedSink {
        gate: tokio::sync::Semaphore::new(0),
        started: AtomicUsize::new(0),
        stored: Mutex::new(Vec::new()),
    });
    let (mut deps, monitor) = monitor_deps();
    deps.telemetry = Some(sink.clone());
    let options = RuntimeOptions {
        queue_capacity: 2,
        max_in_flight: 1,
        overflow_clear_after: Duration::from_millis(100),
    };
    let (engine, broker) = engine_and_broker(deps, options).await?;
    engine.create(
        "slow_store",
        doc(r#"{"sql": "SELECT * FROM 'city/+/things/+/telemetry'",
                "actions": [{"store": {"thingName": "${topic(4)}"}}]}"#),
    )?;
    let mut lamp = anon_client(&broker, "lamp-1").await?;

    // Every PUBACK comes promptly although the sink holds the first
    // message and the queue is full after two more.
    tokio::time::timeout(Duration::from_secs(5), async {
        for i in 0..20 {
            lamp.publish(TELEMETRY, format!(r#"{{"power_w": {i}}}"#))
                .await?;
        }
        anyhow::Ok(())
    })
    .await??;
    let by_rule = [("rule", "slow_store")];
    let metrics = monitor.snapshot();
    assert_eq!(metrics.counter("rules_matched_total", &by_rule), Some(20));
    let dropped = metrics
        .counter("rules_dropped_total", &by_rule)
        .unwrap_or(0);
    assert!((16..=18).contains(&dropped), "dropped {dropped}");
    let alarm = monitor
        .alarm("rules.queue_overflow.slow_store")
        .expect("overflow alarm");
    assert!(alarm.is_raised(), "{alarm:?}");

    // Open the gate: what was queued is stored, and the alarm clears once
    // the rule has caught up and stayed quiet.
    sink.gate.add_permits(100);
    wait_for("the queued readings", TIMEOUT, || {
        sink.stored.lock().len() as u64 == 20 - dropped
    })
    .await?;
    wait_for("the overflow alarm to clear", TIMEOUT, || {
        monitor
            .alarm("rules.queue_overflow.slow_store")
            .is_some_and(|a| !a.is_raised())
    })
    .await?;
    let first = sink.stored.lock()[0].clone();
    assert_eq!(first.thing, "lamp-1");
    assert_eq!(first.metrics, vec![("power_w".to_string(), 0.0)]);
    Ok(())
}

#[tokio::test]
async fn failures_go_to_the_error_action_in_one_document() -> anyhow::Result<()> {
    let (deps, monitor) = monitor_deps();
    // No telemetry sink: the store action fails when performed.
    let (engine, broker) = engine_and_broker(deps, RuntimeOptions::default()).await?;
    engine.create(
        "failing",
        doc(r#"{"sql": "SELECT * FROM 'in/+'",
                "actions": [{"store": {"thingName": "${topic(2)}"}},
                            {"republish": {"topic": "in/loop"}},
                            {"republish": {"topic": "out/ok"}}],
                "errorAction": {"republish": {"topic": "rules/errors/${topic(2)}"}}}"#),
    )?;
    let mut watcher = anon_client(&broker, "watcher").await?;
    watcher.subscribe("out/ok").await?;
    watcher.subscribe("rules/errors/#").await?;
    let mut device = anon_client(&broker, "pub-1").await?;
    device.publish("in/a", r#"{"x": 1}"#).await?;

    // The working action still runs; the error document lists both
    // failures, as AWS sends them.
    assert_eq!(watcher.next_json("out/ok").await?, json!({"x": 1}));
    let error = watcher.next_json("rules/errors/a").await?;
    assert_eq!(error["ruleName"], "failing");
    assert_eq!(error["topic"], "in/a");
    assert_eq!(error["clientId"], "pub-1");
    assert_eq!(error["base64OriginalPayload"], "eyJ4IjogMX0=");
    assert!(
        error["cloudwatchTraceId"]
            .as_str()
            .is_some_and(|t| t.len() == 36)
    );
    let failures = error["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 2, "{error}");
    assert_eq!(failures[0]["failedAction"], "StoreAction");
    assert_eq!(failures[0]["failedResource"], "a");
    assert_eq!(
        failures[0]["errorMessage"],
        "no telemetry store is configured"
    );
    assert_eq!(failures[1]["failedAction"], "RepublishAction");
    assert_eq!(failures[1]["failedResource"], "in/loop");
    assert!(
        failures[1]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("would trigger the rule again")),
        "{error}"
    );
    let metrics = monitor.snapshot();
    let labels = |action| [("rule", "failing"), ("action", action)];
    assert_eq!(
        metrics.counter("rules_action_failure_total", &labels("0:store")),
        Some(1)
    );
    assert_eq!(
        metrics.counter("rules_action_success_total", &labels("2:republish")),
        Some(1)
    );
    assert_eq!(
        metrics.counter("rules_action_success_total", &labels("error:republish")),
        Some(1)
    );
    Ok(())
}

#[test]
fn rules_are_kept_in_the_store() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("civitas.redb");
    let document = r#"{"sql": "SELECT * FROM 'a/+'", "description": "kept",
                       "actions": [{"republish": {"topic": "b"}}]}"#;
    let created = {
        let store = Store::open(&path, StoreOptions::default())?;
        let catalog = RuleCatalog::open(store.clone())?;
        let created = catalog.create("kept", doc(document))?;
        catalog.set_enabled("kept", false)?;
        catalog.create("gone", doc(document))?;
        catalog.delete("gone")?;
        assert!(matches!(
            catalog.create("kept", doc(document)),
            Err(RulesError::AlreadyExists(_))
        ));
        // A stored document this build cannot run.
        store.commit_blocking(vec![Op::PutRule(RuleRecord {
            name: "broken".into(),
            document: br#"{"sql": "SELECT * FROM"}"#.to_vec(),
            created_at_ms: 1,
            updated_at_ms: 1,
        })])?;
        store.close()?;
        created
    };
    let store = Store::open(&path, StoreOptions::default())?;
    let catalog = RuleCatalog::open(store)?;
    let names: Vec<String> = catalog.list().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["broken", "kept"]);
    let kept = catalog.get("kept")?;
    assert!(!kept.enabled);
    assert_eq!(kept.created_at_ms, created.created_at_ms);
    assert_eq!(kept.document.description.as_deref(), Some("kept"));
    assert_eq!(kept.topic_filter, "a/+");
    let broken = catalog.get("broken")?;
    assert!(
        broken
            .problem
            .as_deref()
            .is_some_and(|p| p.starts_with("sql: line 1")),
        "{broken:?}"
    );
    assert!(
        catalog.runnable().is_empty(),
        "neither a disabled nor a broken rule runs"
    );
    Ok(())
}
