//! The scenarios, their scale (full or quick), and what they share:
//! connecting many clients at once, counters, and the metrics a run
//! reports.

mod ceiling;
mod commands;
mod pipeline;
mod roles;
mod storm;
mod telemetry;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use civitas_mqtt::QoS;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{Client, Resume, source_addr};
use crate::error::{BenchError, Result};
use crate::pki::Identity;
use crate::procfs::Usage;
use crate::report::{Better, Metric};
use crate::system::RunningBroker;

/// The scenarios, in the order they run. Names are stable: results and
/// docs refer to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scenario {
    FanIn,
    Surge,
    ReconnectStorm,
    CommandUnicast,
    Broadcast,
    Ceiling,
    Pipeline,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::FanIn,
        Scenario::Surge,
        Scenario::ReconnectStorm,
        Scenario::CommandUnicast,
        Scenario::Broadcast,
        Scenario::Ceiling,
        Scenario::Pipeline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::FanIn => "fan-in",
            Scenario::Surge => "surge",
            Scenario::ReconnectStorm => "reconnect-storm",
            Scenario::CommandUnicast => "command-unicast",
            Scenario::Broadcast => "broadcast",
            Scenario::Ceiling => "ceiling",
            Scenario::Pipeline => "pipeline",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Scenarios no peer broker can run (they measure what only civitas
    /// has): civitas runs them alone.
    pub fn civitas_only(self) -> bool {
        matches!(self, Scenario::Pipeline)
    }

    /// Clients with their own certificate this scenario connects, beyond
    /// the fixed identities.
    pub fn devices(self, scale: &Scale) -> usize {
        match self {
            Scenario::FanIn | Scenario::Surge | Scenario::ReconnectStorm | Scenario::Pipeline => {
                scale.devices
            }
            Scenario::CommandUnicast | Scenario::Broadcast => scale.streetlights,
            Scenario::Ceiling => scale.idle,
        }
    }

    /// Upper bound on one run's duration, after which it is abandoned.
    pub fn budget(self, scale: &Scale) -> Duration {
        let connects = Duration::from_secs((self.devices(scale) as u64 / 100).max(10));
        let base = match self {
            Scenario::FanIn | Scenario::Surge => scale.telemetry_warmup + scale.telemetry_measure,
            Scenario::ReconnectStorm => connects * 3,
            Scenario::CommandUnicast => scale.unicast_warmup + scale.unicast_measure,
            Scenario::Broadcast => scale.broadcast_interval * (scale.broadcasts as u32 + 2),
            Scenario::Ceiling => (scale.ceiling_warmup + scale.ceiling_measure) * 8,
            // First reports create a key per device: allow 20 ms each.
            Scenario::Pipeline => {
                scale.telemetry_warmup
                    + scale.telemetry_measure
                    + Duration::from_millis(20 * scale.devices as u64)
            }
        };
        base + connects * 2 + Duration::from_secs(120)
    }

    pub async fn run(self, ctx: &mut Ctx<'_>) -> Result<RunOutput> {
        let mut out = RunOutput::default();
        match self {
            Scenario::FanIn => telemetry::run(ctx, &mut out, Duration::from_secs(10)).await?,
            Scenario::Surge => telemetry::run(ctx, &mut out, Duration::from_secs(1)).await?,
            Scenario::ReconnectStorm => storm::run(ctx, &mut out).await?,
            Scenario::CommandUnicast => commands::unicast(ctx, &mut out).await?,
            Scenario::Broadcast => commands::broadcast(ctx, &mut out).await?,
            Scenario::Ceiling => ceiling::run(ctx, &mut out).await?,
            Scenario::Pipeline => pipeline::run(ctx, &mut out).await?,
        }
        Ok(out)
    }
}

/// How big and how long: the full bench or the quick smoke test.
#[derive(Debug, Clone, Serialize)]
pub struct Scale {
    pub quick: bool,
    pub devices: usize,
    pub streetlights: usize,
    pub idle: usize,
    pub telemetry_warmup: Duration,
    pub telemetry_measure: Duration,
    pub unicast_rate: f64,
    pub unicast_warmup: Duration,
    pub unicast_measure: Duration,
    pub broadcasts: usize,
    pub broadcast_interval: Duration,
    pub ceiling_warmup: Duration,
    pub ceiling_measure: Duration,
    /// Offered load of the fixed-rate ceiling cases, all publishers.
    pub ceiling_rate: f64,
    /// Connection attempts in progress at once.
    pub concurrency: usize,
}

impl Scale {
    pub fn full() -> Scale {
        Scale {
            quick: false,
            devices: 10_000,
            streetlights: 5_000,
            idle: 10_000,
            telemetry_warmup: Duration::from_secs(3),
            telemetry_measure: Duration::from_secs(15),
            unicast_rate: 500.0,
            unicast_warmup: Duration::from_secs(2),
            unicast_measure: Duration::from_secs(10),
            broadcasts: 10,
            broadcast_interval: Duration::from_secs(1),
            ceiling_warmup: Duration::from_secs(1),
            ceiling_measure: Duration::from_secs(4),
            ceiling_rate: 20_000.0,
            concurrency: 100,
        }
    }

    pub fn quick() -> Scale {
        Scale {
            quick: true,
            devices: 200,
            streetlights: 200,
            idle: 200,
            telemetry_warmup: Duration::from_millis(1000),
            telemetry_measure: Duration::from_millis(2000),
            unicast_rate: 200.0,
            unicast_warmup: Duration::from_millis(500),
            unicast_measure: Duration::from_millis(1500),
            broadcasts: 3,
            broadcast_interval: Duration::from_millis(300),
            ceiling_warmup: Duration::from_millis(300),
            ceiling_measure: Duration::from_millis(1000),
            ceiling_rate: 20_000.0,
            concurrency: 100,
        }
    }
}

/// What each client subscribes to right after connecting: a filter made
/// from its name, at a QoS.
pub type SubscribeTo = (fn(&str) -> String, QoS);

/// What a scenario run works with.
pub struct Ctx<'a> {
    pub broker: &'a mut RunningBroker,
    /// Device identities, at least as many as the scenario needs.
    pub devices: &'a [Identity],
    /// Fixed identities by name (see [`crate::names::fixed`]).
    pub fixed: &'a HashMap<String, Identity>,
    pub scale: &'a Scale,
    pub scenario: Scenario,
}

impl Ctx<'_> {
    pub fn addr(&self) -> SocketAddr {
        self.broker.addr
    }

    pub fn fixed(&self, name: &str) -> Result<Identity> {
        self.fixed
            .get(name)
            .cloned()
            .ok_or_else(|| BenchError::Usage(format!("no identity {name}")))
    }

    pub fn usage(&mut self) -> Result<Usage> {
        self.broker.usage()
    }

    pub fn fail(&self, reason: impl Into<String>) -> BenchError {
        BenchError::Scenario {
            scenario: self.scenario.name().into(),
            broker: self.broker.kind.name().into(),
            reason: reason.into(),
        }
    }

    /// Connect `ids` with at most `scale.concurrency` attempts in flight,
    /// subscribing each to `subscribe(name)` when given.
    pub async fn connect_many(
        &self,
        ids: &[Identity],
        resume: Resume,
        subscribe: Option<SubscribeTo>,
    ) -> Result<Vec<Client>> {
        let addr = self.addr();
        let gate = Arc::new(Semaphore::new(self.scale.concurrency));
        let mut set = JoinSet::new();
        for (i, id) in ids.iter().enumerate() {
            let id = id.clone();
            let gate = gate.clone();
            set.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let attempt = async {
                    let mut c = Client::connect(&id, addr, source_addr(i), resume).await?;
                    if let Some((filter, qos)) = subscribe {
                        c.subscribe(&filter(&id.name), qos).await?;
                    }
                    Ok::<_, BenchError>(c)
                };
                let r = tokio::time::timeout(Duration::from_secs(30), attempt)
                    .await
                    .unwrap_or_else(|_| {
                        Err(BenchError::Timeout(format!("connecting {}", id.name)))
                    });
                (i, r)
            });
        }
        let mut clients: Vec<Option<Client>> = (0..ids.len()).map(|_| None).collect();
        let mut first_error = None;
        let mut failed = 0usize;
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, Ok(c))) => clients[i] = Some(c),
                Ok((_, Err(e))) => {
                    failed += 1;
                    first_error.get_or_insert(e.to_string());
                }
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        if let Some(e) = first_error {
            return Err(self.fail(format!(
                "{failed} of {} connections failed; first: {e}",
                ids.len()
            )));
        }
        Ok(clients.into_iter().flatten().collect())
    }
}

/// DISCONNECT every client, all at once.
pub async fn disconnect_all(clients: Vec<Client>) {
    let mut set = JoinSet::new();
    for c in clients {
        set.spawn(c.disconnect());
    }
    while set.join_next().await.is_some() {}
}

/// Messages counted by the generator.
#[derive(Default)]
pub struct Counters {
    /// PUBLISHes written by publishers.
    pub sent: AtomicU64,
    /// PUBACKs received by publishers.
    pub acked: AtomicU64,
    /// PUBLISHes received by subscribers.
    pub received: AtomicU64,
}

impl Counters {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Wait (bounded) until every message sent has arrived `copies` times and,
/// for QoS 1, been acknowledged; a shortfall is a lost-message error.
pub async fn drain(ctx: &Ctx<'_>, counters: &Counters, copies: u64, qos1: bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(if ctx.scale.quick { 10 } else { 30 });
    loop {
        let want = counters.sent() * copies;
        let got = counters.received();
        let acked_ok = !qos1 || counters.acked() >= counters.sent();
        if got >= want && acked_ok {
            if got > want {
                return Err(ctx.fail(format!("{} duplicate deliveries", got - want)));
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ctx.fail(format!(
                "lost messages: {got} of {want} delivered, {} of {} acknowledged",
                counters.acked(),
                counters.sent()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Measurements of one scenario run on one broker.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RunOutput {
    pub metrics: Vec<Metric>,
    pub notes: Vec<String>,
}

impl RunOutput {
    pub fn metric(&mut self, name: impl Into<String>, unit: &str, better: Better, value: f64) {
        if value.is_finite() {
            self.metrics.push(Metric {
                name: name.into(),
                unit: unit.to_string(),
                better,
                value,
            });
        }
    }

    /// Throughput and CPU figures of a measured window.
    pub fn throughput(
        &mut self,
        prefix: &str,
        secs: f64,
        messages_in: u64,
        messages_out: u64,
        before: &Usage,
        after: &Usage,
    ) {
        let cpu = after.cpu_secs - before.cpu_secs;
        self.metric(
            format!("{prefix}delivered msg/s"),
            "msg/s",
            Better::Higher,
            messages_out as f64 / secs,
        );
        if cpu > 0.0 {
            self.metric(
                format!("{prefix}msgs in+out per broker CPU-s"),
                "msg/CPU-s",
                Better::Higher,
                (messages_in + messages_out) as f64 / cpu,
            );
        }
        self.metric(
            format!("{prefix}broker CPU"),
            "cores",
            Better::Lower,
            cpu / secs,
        );
    }

    pub fn latency(&mut self, prefix: &str, l: &crate::clock::LatencySummary) {
        if l.count == 0 {
            return;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        self.metric(
            format!("{prefix}latency p50"),
            "ms",
            Better::Lower,
            ms(l.p50_us),
        );
        self.metric(
            format!("{prefix}latency p99"),
            "ms",
            Better::Lower,
            ms(l.p99_us),
        );
        self.metric(
            format!("{prefix}latency p99.9"),
            "ms",
            Better::Lower,
            ms(l.p999_us),
        );
    }

    pub fn memory(&mut self, connections: usize, before: &Usage, after: &Usage) {
        if connections > 0 {
            self.metric(
                "bytes per connection",
                "B",
                Better::Lower,
                after.rss.saturating_sub(before.rss) as f64 / connections as f64,
            );
        }
    }

    pub fn peak(&mut self, usage: &Usage) {
        self.metric("peak RSS", "MB", Better::Lower, usage.hwm as f64 / 1e6);
    }
}
