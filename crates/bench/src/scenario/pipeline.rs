//! `pipeline` (civitas only): the surge's devices, each a JSON reading
//! once a second over mutual TLS, stored by a rule's `store` action into
//! the sealed telemetry store (one KMS key per device, envelope
//! encryption), with the audit log on — what `civitas up` runs by
//! default. No consumer group subscribes: the measured path is from a
//! device's send to its reading being durable in the sealed store.
//!
//! The latency is civitas' own `rules_store_lag_seconds` histogram, read
//! with `civitas metrics` over the admin socket: each reading carries its
//! send time (the generator's wall clock, unix ms to the microsecond) as
//! `sent_ms`, the rule stores it as the reading's timestamp, and civitas
//! observes system clock minus that timestamp once the append is durable
//! (fsynced). Same machine, same clock. The histogram's buckets are 12%
//! wide; quantiles are interpolated within them.
//!
//! Every device's first reading creates its key in the KMS; a city's
//! devices have reported before, so those first reports are sent (500 at
//! a time, so that the rule's queue never overflows) and stored before
//! the measured load starts, and their duration is reported apart.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use civitas_monitor::{Alarm, Distribution, MetricsSnapshot};
use civitas_mqtt::{Packet, QoS};
use serde::Deserialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::roles::join_all;
use super::{Counters, Ctx, RunOutput};
use crate::client::{Client, PublishTemplate, Resume};
use crate::error::{BenchError, Result};
use crate::names;
use crate::report::Better;

/// The rule the scenario creates.
pub const RULE: &str = "bench_pipeline";
const READING_BYTES: usize = 200;
/// First reports in flight at once: below the rule's queue (1024).
const FIRST_REPORT_BATCH: usize = 500;
const PERIOD: Duration = Duration::from_secs(1);
/// The target the issue sets, at full scale.
const TARGET_P99_MS: f64 = 50.0;
const TARGET_CORES: f64 = 0.5;

/// The rule: every device reading's `value` into the sealed store, with
/// the device's own timestamp (its send time).
pub fn rule_document() -> String {
    serde_json::json!({
        "sql": "SELECT value, sent_ms FROM 'city/bench/things/+/telemetry'",
        "description": "civitas bench pipeline: every reading into sealed telemetry",
        "actions": [{"store": {
            "thingName": "${topic(4)}",
            "metrics": ["value"],
            "timestamp": "${sent_ms}"
        }}]
    })
    .to_string()
}

/// A reading as JSON, encoded once: `{"sent_ms":…,"seq":…,"value":21.5,
/// "pad":"…"}`, its send time and sequence number patched in place at
/// fixed width (leading blanks are JSON whitespace).
struct JsonReading {
    template: PublishTemplate,
    sent_at: usize,
    seq_at: usize,
}

const SENT_WIDTH: usize = 17;
const SEQ_WIDTH: usize = 20;

impl JsonReading {
    fn new(topic: &str) -> Result<JsonReading> {
        let mut p = String::from("{\"sent_ms\":");
        let sent_at = p.len();
        p.push_str(&format!("{:>w$.3}", 0.0, w = SENT_WIDTH));
        p.push_str(",\"seq\":");
        let seq_at = p.len();
        p.push_str(&format!("{:>w$}", 0, w = SEQ_WIDTH));
        p.push_str(",\"value\":21.5,\"pad\":\"");
        let pad = READING_BYTES.saturating_sub(p.len() + 2);
        p.push_str(&"x".repeat(pad));
        p.push_str("\"}");
        Ok(JsonReading {
            template: PublishTemplate::with_payload(topic, QoS::AtLeastOnce, p.into_bytes())?,
            sent_at,
            seq_at,
        })
    }

    /// Queue one reading stamped now.
    fn queue(&self, c: &mut Client, seq: u64) {
        self.template
            .queue_patched(c, |payload| self.stamp(payload, seq));
    }

    /// Write the send time (now) and `seq` into a copy of the payload.
    fn stamp(&self, payload: &mut [u8], seq: u64) {
        let sent = format!("{:>w$.3}", crate::clock::unix_ms(), w = SENT_WIDTH);
        let seq = format!("{seq:>w$}", w = SEQ_WIDTH);
        let (s, q) = (self.sent_at, self.seq_at);
        if sent.len() == SENT_WIDTH && seq.len() == SEQ_WIDTH && payload.len() >= q + SEQ_WIDTH {
            payload[s..s + SENT_WIDTH].copy_from_slice(sent.as_bytes());
            payload[q..q + SEQ_WIDTH].copy_from_slice(seq.as_bytes());
        }
    }
}

/// What `civitas metrics --json` prints.
#[derive(Deserialize)]
struct Monitor {
    metrics: MetricsSnapshot,
    alarms: Vec<Alarm>,
}

impl Monitor {
    fn lag(&self) -> Option<&Distribution> {
        self.metrics
            .histogram("rules_store_lag_seconds", &[("rule", RULE)])
    }

    /// Readings the rule has stored durably.
    fn stored(&self) -> u64 {
        self.lag().map_or(0, |d| d.count)
    }

    /// Why readings are missing, as far as civitas counts it.
    fn shortfall(&self) -> String {
        let m = &self.metrics;
        let dropped = m
            .counter("rules_dropped_total", &[("rule", RULE)])
            .unwrap_or(0);
        let failed = m
            .counter(
                "rules_action_failure_total",
                &[("rule", RULE), ("action", "0:store")],
            )
            .unwrap_or(0);
        let alarms: Vec<&str> = self
            .alarms
            .iter()
            .filter(|a| a.is_raised())
            .map(|a| a.name.as_str())
            .collect();
        format!(
            "dropped by the rule's queue: {dropped}; store failures: {failed}; alarms raised: {}",
            if alarms.is_empty() {
                "none".into()
            } else {
                alarms.join(", ")
            }
        )
    }
}

/// The rule's metrics now, with the moment they were read.
async fn monitor(ctx: &Ctx<'_>) -> Result<(Monitor, Instant)> {
    let before = Instant::now();
    let text = ctx.broker.civitas(&["metrics", "--json", "rules_"]).await?;
    let at = before + before.elapsed() / 2;
    let m = serde_json::from_str(&text).map_err(|e| {
        ctx.fail(format!(
            "civitas metrics --json printed something unreadable: {e}"
        ))
    })?;
    Ok((m, at))
}

/// Polls civitas until every reading sent is stored; fails with
/// civitas' own account of the shortfall after `within`. A reading is
/// counted as sent before it is written, and the count is read after
/// civitas', so more stored than sent is a duplicate.
async fn stored(ctx: &Ctx<'_>, counters: &Counters, within: Duration) -> Result<Monitor> {
    let deadline = Instant::now() + within;
    loop {
        let (m, _) = monitor(ctx).await?;
        let got = m.stored();
        let want = counters.sent();
        if got > want {
            return Err(ctx.fail(format!(
                "{} readings stored twice ({got} stored, {want} sent)",
                got - want
            )));
        }
        if got == want {
            return Ok(m);
        }
        if Instant::now() >= deadline {
            return Err(ctx.fail(format!(
                "lost readings: {got} of {want} stored after {within:?}; {}",
                m.shortfall()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(ctx: &mut Ctx<'_>, out: &mut RunOutput) -> Result<()> {
    let n = ctx.scale.devices;
    let rule = ctx
        .broker
        .write_file("pipeline-rule.json", &rule_document())?;
    let rule = rule.display().to_string();
    ctx.broker
        .civitas(&["rule", "create", RULE, "--file", &rule])
        .await?;

    let counters = Arc::new(Counters::default());
    let stop_all = CancellationToken::new();
    let stop_send = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut devices = ctx
        .connect_many(&ctx.devices[..n], Resume::Never, None)
        .await?;
    let readings = devices
        .iter()
        .map(|c| JsonReading::new(&names::telemetry_topic(&c.name)))
        .collect::<Result<Vec<_>>>()?;

    // First reports: each creates the device's key.
    let first = Instant::now();
    let drain = Duration::from_secs(if ctx.scale.quick { 10 } else { 30 });
    for batch in (0..n).collect::<Vec<_>>().chunks(FIRST_REPORT_BATCH) {
        for &i in batch {
            readings[i].queue(&mut devices[i], 0);
            counters.sent.fetch_add(1, Ordering::Relaxed);
            devices[i].flush().await?;
        }
        stored(ctx, &counters, drain * 2)
            .await
            .map_err(|e| match e {
                BenchError::Scenario { reason, .. } => {
                    ctx.fail(format!("first reports (a new key per device): {reason}"))
                }
                other => other,
            })?;
    }
    let first_secs = first.elapsed().as_secs_f64();

    let start = Instant::now();
    for (i, (c, r)) in devices.into_iter().zip(readings).enumerate() {
        let phase = PERIOD.mul_f64(i as f64 / n as f64);
        tasks.spawn(device(
            c,
            r,
            start + phase,
            counters.clone(),
            stop_send.clone(),
            stop_all.clone(),
        ));
    }
    tokio::time::sleep(ctx.scale.telemetry_warmup).await;
    let (m0, t0) = monitor(ctx).await?;
    let (u0, sent0, c0) = (ctx.usage()?, counters.sent(), Instant::now());
    tokio::time::sleep(ctx.scale.telemetry_measure).await;
    let (u1, sent1, c1) = (ctx.usage()?, counters.sent(), Instant::now());
    let (m1, t1) = monitor(ctx).await?;
    stop_send.cancel();

    // Stored readings over the interval between civitas' two counts; CPU
    // over the interval between its two readings.
    let secs = (t1 - t0).as_secs_f64();
    let cpu = u1.cpu_secs - u0.cpu_secs;
    let cores = cpu / (c1 - c0).as_secs_f64();
    let in_window = m1.stored().saturating_sub(m0.stored());
    let sent_in_window = sent1.saturating_sub(sent0);

    let last = stored(ctx, &counters, drain).await;
    let acked = acknowledged(&counters, drain).await;
    stop_all.cancel();
    let failures = join_all(&mut tasks).await;
    // A shortfall says how far civitas got.
    let last = last.map_err(|e| match e {
        BenchError::Scenario { reason, .. } => ctx.fail(format!(
            "{reason}; in the measured window civitas stored {:.0} readings/s of {:.0} sent/s, using {:.2} cores; first reports took {first_secs:.1}s",
            in_window as f64 / secs,
            sent_in_window as f64 / secs,
            cores
        )),
        other => other,
    })?;
    acked.map_err(|e| ctx.fail(e))?;
    if let Some(e) = failures {
        return Err(ctx.fail(e));
    }
    let lag = match (last.lag(), m0.lag()) {
        (Some(now), Some(then)) => now.since(then),
        (Some(now), None) => Some(now.clone()),
        _ => None,
    }
    .ok_or_else(|| ctx.fail("civitas reported no store latency"))?;
    let ms = |q: f64| lag.quantile(q).map_or(f64::NAN, |s| s * 1000.0);
    let (p50, p99, p999) = (ms(0.5), ms(0.99), ms(0.999));
    out.metric("publish-to-stored p50", "ms", Better::Lower, p50);
    out.metric("publish-to-stored p99", "ms", Better::Lower, p99);
    out.metric("publish-to-stored p99.9", "ms", Better::Lower, p999);
    out.metric(
        "stored readings/s",
        "readings/s",
        Better::Higher,
        in_window as f64 / secs,
    );
    if cpu > 0.0 {
        out.metric(
            "readings stored per broker CPU-s",
            "readings/CPU-s",
            Better::Higher,
            in_window as f64 / cpu,
        );
    }
    out.metric("broker CPU", "cores", Better::Lower, cores);
    out.peak(&ctx.usage()?);

    out.notes.push(format!(
        "{n} devices over mutual TLS, one {READING_BYTES}-byte JSON reading (QoS 1) every {PERIOD:?} each; rule {RULE} stores every reading sealed under the device's own KMS key, audit log on, no subscriber; {} of {} readings stored",
        last.stored(),
        counters.sent()
    ));
    out.notes.push(format!(
        "first reports ({n} devices' first readings, each creating the device's key) stored in {first_secs:.1}s before the measured load"
    ));
    out.notes.push(format!(
        "publish-to-stored: the generator's send (wall clock in the payload) to durable in the sealed store, from civitas' rules_store_lag_seconds histogram (buckets 12% wide, interpolated) over the {} readings stored after warm-up",
        lag.count
    ));
    let verdict = if ctx.scale.quick {
        "not assessed at quick scale"
    } else if p99 < TARGET_P99_MS && cores <= TARGET_CORES {
        "met"
    } else {
        "not met"
    };
    out.notes.push(format!(
        "target p99 < {TARGET_P99_MS} ms at ≤ {TARGET_CORES} broker cores at 10,000 readings/s: {verdict} (p99 {p99:.1} ms, {cores:.2} cores at {:.0} readings/s)",
        in_window as f64 / secs,
    ));
    out.notes.push(
        "civitas only: no peer broker has a rules engine storing sealed readings; the Mosquitto column stays empty".into(),
    );
    Ok(())
}

/// Waits (bounded) until every reading sent has been acknowledged.
async fn acknowledged(counters: &Counters, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    while counters.acked() < counters.sent() {
        if Instant::now() >= deadline {
            return Err(format!(
                "{} of {} readings acknowledged",
                counters.acked(),
                counters.sent()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn device(
    mut c: Client,
    reading: JsonReading,
    first: Instant,
    counters: Arc<Counters>,
    stop_send: CancellationToken,
    stop_all: CancellationToken,
) -> Result<()> {
    let mut next = tokio::time::Instant::from_std(first);
    // Sequence 0 was the first report.
    let mut seq = 1u64;
    loop {
        tokio::select! {
            r = c.read() => {
                r?;
                let mut acks = 0;
                while let Some(p) = c.take()? {
                    if matches!(p, Packet::PubAck(_)) {
                        acks += 1;
                    }
                }
                counters.acked.fetch_add(acks, Ordering::Relaxed);
            }
            _ = tokio::time::sleep_until(next), if !stop_send.is_cancelled() => {
                // Checked again: this branch may have been ready when the
                // stop came, and nothing may be sent after it.
                if stop_send.is_cancelled() {
                    continue;
                }
                reading.queue(&mut c, seq);
                seq += 1;
                counters.sent.fetch_add(1, Ordering::Relaxed);
                c.flush().await?;
                next += PERIOD;
            }
            _ = stop_send.cancelled(), if !stop_send.is_cancelled() => {}
            _ = stop_all.cancelled() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_json_of_the_reading_size_with_patched_fields() {
        let r = JsonReading::new("city/bench/things/dev-00001/telemetry").unwrap();
        let mut payload = r.template.payload().to_vec();
        assert_eq!(payload.len(), READING_BYTES);
        let unstamped: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(unstamped["seq"], 0);
        let before = crate::clock::unix_ms();
        r.stamp(&mut payload, 12);
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(payload.len(), READING_BYTES);
        assert_eq!(v["seq"], 12);
        assert_eq!(v["value"], 21.5);
        let sent = v["sent_ms"].as_f64().unwrap();
        assert!(sent >= before - 0.001 && sent <= crate::clock::unix_ms() + 0.001);
        r.stamp(&mut payload, u64::MAX);
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v["seq"], u64::MAX);
    }

    #[test]
    fn the_rule_stores_value_with_the_send_time() {
        let v: serde_json::Value = serde_json::from_str(&rule_document()).unwrap();
        let store = &v["actions"][0]["store"];
        assert_eq!(store["timestamp"], "${sent_ms}");
        assert_eq!(store["metrics"][0], "value");
        assert!(
            v["sql"]
                .as_str()
                .unwrap()
                .contains("'city/bench/things/+/telemetry'")
        );
    }
}
