//! Rule executions per second on one core, through the whole runtime: the
//! broker's observer call, the topic-tree match, the rule's bounded queue,
//! its worker, evaluation of a three-predicate rule on a ~200-byte JSON
//! message, a `${…}` template and a metric action. The SQL alone is
//! measured by `cargo bench -p civitas-rules`. Plain `std::time`, no
//! harness; run with `cargo bench -p civitas-rules-runtime`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use civitas_monitor::Monitor;
use civitas_mqtt::{PublishProperties, QoS};
use civitas_rules_runtime::{ActionDeps, RuleCatalog, RulesEngine, RuntimeOptions, document};
use civitas_store::StoredMessage;

const RULE: &str = r#"{
  "sql": "SELECT temperature, humidity FROM 'city/+/things/+/telemetry' WHERE temperature > 30 AND humidity < 80 AND topic(4) <> 'test'",
  "actions": [{"cloudwatchMetric": {"metricNamespace": "city", "metricName": "temperature",
                                    "metricValue": "${temperature}"}}]
}"#;

const PAYLOAD: &[u8] = br#"{"deviceId":"sensor-0042","temperature":31.7,"humidity":64.2,"pressure":1013.25,"battery":87,"firmware":"2.4.1","location":{"lat":59.9139,"lon":10.7522},"status":"ok","seq":123456,"tags":["roof","north"]}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let monitor = Monitor::new();
    let batch: u64 = 10_000;
    let engine = RulesEngine::start(
        RuleCatalog::in_memory(),
        ActionDeps {
            monitor: monitor.clone(),
            ..ActionDeps::default()
        },
        RuntimeOptions {
            queue_capacity: batch as usize,
            max_in_flight: 1,
            ..RuntimeOptions::default()
        },
    );
    engine.create("bench", document::parse_document(RULE)?)?;
    let observer = engine.observer();
    let executed = monitor.counter("rules_executed_total", &[("rule", "bench")]);
    let message = Arc::new(StoredMessage {
        topic: "city/oslo/things/sensor-0042/telemetry".into(),
        payload: Bytes::from_static(PAYLOAD),
        qos: QoS::AtLeastOnce,
        retain: false,
        expires_at_ms: None,
        properties: PublishProperties::default(),
        received_at_ms: 1_700_000_000_000,
    });

    // Offer a batch (as the broker would, one call per message), then let
    // the worker drain it on the same core.
    let mut offered = 0u64;
    let run_batch = async |offered: &mut u64| {
        for _ in 0..batch {
            observer.observe(&message, Some("sensor-0042"));
        }
        *offered += batch;
        while executed.get() < *offered {
            tokio::task::yield_now().await;
        }
    };
    for _ in 0..2 {
        run_batch(&mut offered).await;
    }
    let warm = offered;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        run_batch(&mut offered).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let runs = offered - warm;
    let dropped = monitor
        .snapshot()
        .counter("rules_dropped_total", &[("rule", "bench")])
        .unwrap_or(0);
    assert_eq!(dropped, 0, "the benchmark must not overflow the queue");
    println!(
        "rule_eval_runtime: {runs} rule executions in {secs:.2} s = {:.0} executions/s on one core \
         ({}-byte payload, 3 predicates, 1 template, metric action; {:.0} ns each)",
        runs as f64 / secs,
        PAYLOAD.len(),
        secs * 1e9 / runs as f64
    );
    Ok(())
}
