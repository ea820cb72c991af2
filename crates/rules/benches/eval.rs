//! Rule evaluations per second on one core: a three-predicate rule on a
//! ~200-byte JSON message, payload parse included. Plain `std::time`, no
//! harness; run with `cargo bench -p civitas-rules`.

use civitas_rules::{EvalContext, Message, Rule};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SQL: &str = "SELECT temperature, humidity FROM 'city/+/things/+/telemetry' \
                   WHERE temperature > 30 AND humidity < 80 AND topic(4) <> 'test'";

fn main() {
    let rule = Rule::parse(SQL).expect("benchmark rule parses");
    let payload = br#"{"deviceId":"sensor-0042","temperature":31.7,"humidity":64.2,"pressure":1013.25,"battery":87,"firmware":"2.4.1","location":{"lat":59.9139,"lon":10.7522},"status":"ok","seq":123456,"tags":["roof","north"]}"#;
    let msg = Message {
        topic: "city/oslo/things/sensor-0042/telemetry",
        payload,
        client_id: Some("sensor-0042"),
        principal: None,
        timestamp_ms: 1_700_000_000_000,
    };
    let ctx = EvalContext::default();
    let out = rule.evaluate(&msg, &ctx).expect("evaluates");
    assert!(out.is_some(), "the benchmark message passes WHERE");

    // Warm up, then measure batches for about two seconds.
    for _ in 0..10_000 {
        black_box(rule.evaluate(black_box(&msg), &ctx).ok());
    }
    let batch = 10_000u64;
    let mut runs = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..batch {
            black_box(rule.evaluate(black_box(&msg), &ctx).ok());
        }
        runs += batch;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "eval: {} evaluations in {:.2} s = {:.0} evaluations/s on one core ({}-byte payload, {:.0} ns each)",
        runs,
        secs,
        runs as f64 / secs,
        payload.len(),
        secs * 1e9 / runs as f64
    );
}
