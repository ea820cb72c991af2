//! `command-unicast` and `broadcast`: the operator console
//! (`control-center`) commanding streetlights, one at a time on their own
//! topics or all at once on a common one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use civitas_mqtt::{Packet, QoS};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::roles::{Hooks, Publisher, consume, join_all};
use super::{Counters, Ctx, RunOutput, drain};
use crate::client::{Client, PublishTemplate, Resume, source_addr};
use crate::clock::Latency;
use crate::error::Result;
use crate::names::{self, BROADCAST_TOPIC, CONTROL_CENTER};
use crate::report::Better;

const COMMAND_BYTES: usize = 64;

fn own_command_topic(name: &str) -> String {
    names::command_topic(name)
}

fn broadcast_topic(_: &str) -> String {
    BROADCAST_TOPIC.to_string()
}

/// What the streetlights' subscriber tasks share.
struct Listeners<'a> {
    tasks: &'a mut JoinSet<Result<()>>,
    counters: &'a Arc<Counters>,
    latency: &'a Arc<Latency>,
    stop: &'a CancellationToken,
    hooks: Hooks,
}

/// Streetlights subscribed to `filter`, each counted by a subscriber task.
async fn streetlights(
    ctx: &mut Ctx<'_>,
    out: &mut RunOutput,
    filter: fn(&str) -> String,
    l: Listeners<'_>,
) -> Result<Vec<String>> {
    let m = ctx.scale.streetlights;
    let before = ctx.usage()?;
    let lights = ctx
        .connect_many(
            &ctx.devices[..m],
            Resume::Never,
            Some((filter, QoS::AtLeastOnce)),
        )
        .await?;
    out.memory(m, &before, &ctx.usage()?);
    let names = lights.iter().map(|c| c.name.clone()).collect();
    for c in lights {
        l.tasks.spawn(consume(
            c,
            l.counters.clone(),
            l.latency.clone(),
            l.stop.clone(),
            l.hooks.clone(),
        ));
    }
    Ok(names)
}

pub async fn unicast(ctx: &mut Ctx<'_>, out: &mut RunOutput) -> Result<()> {
    let counters = Arc::new(Counters::default());
    let latency = Arc::new(Latency::new());
    let stop_all = CancellationToken::new();
    let stop_send = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let listeners = Listeners {
        tasks: &mut tasks,
        counters: &counters,
        latency: &latency,
        stop: &stop_all,
        hooks: Hooks::default(),
    };
    let lights = streetlights(ctx, out, own_command_topic, listeners).await?;

    let cc = ctx.fixed(CONTROL_CENTER)?;
    let client = Client::connect(&cc, ctx.addr(), source_addr(1), Resume::Never).await?;
    let templates = lights
        .iter()
        .map(|l| PublishTemplate::new(&names::command_topic(l), QoS::AtLeastOnce, COMMAND_BYTES))
        .collect::<Result<Vec<_>>>()?;
    let publisher = Publisher {
        client,
        templates,
        qos1: true,
        rate: Some(ctx.scale.unicast_rate),
        window: None,
    };
    tasks.spawn(publisher.run(counters.clone(), stop_send.clone(), stop_all.clone()));

    tokio::time::sleep(ctx.scale.unicast_warmup).await;
    latency.open();
    let (u0, s0, r0, t0) = (
        ctx.usage()?,
        counters.sent(),
        counters.received(),
        Instant::now(),
    );
    tokio::time::sleep(ctx.scale.unicast_measure).await;
    let (u1, s1, r1) = (ctx.usage()?, counters.sent(), counters.received());
    let secs = t0.elapsed().as_secs_f64();
    latency.close();
    stop_send.cancel();
    let drained = drain(ctx, &counters, 1, true).await;
    stop_all.cancel();
    let failure = join_all(&mut tasks).await;
    drained?;
    if let Some(e) = failure {
        return Err(ctx.fail(e));
    }
    out.throughput("", secs, s1 - s0, r1 - r0, &u0, &u1);
    out.latency("", &latency.summary());
    out.peak(&ctx.usage()?);
    out.notes.push(format!(
        "{} streetlights, QoS 1 commands at {}/s round-robin",
        lights.len(),
        ctx.scale.unicast_rate
    ));
    Ok(())
}

pub async fn broadcast(ctx: &mut Ctx<'_>, out: &mut RunOutput) -> Result<()> {
    let b = ctx.scale.broadcasts;
    let counters = Arc::new(Counters::default());
    let latency = Arc::new(Latency::new());
    let stop_all = CancellationToken::new();
    let last: Arc<Vec<AtomicU64>> = Arc::new((0..=b).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = JoinSet::new();
    let hooks = Hooks {
        pair: None,
        last_by_seq: Some(last.clone()),
    };
    let listeners = Listeners {
        tasks: &mut tasks,
        counters: &counters,
        latency: &latency,
        stop: &stop_all,
        hooks,
    };
    let lights = streetlights(ctx, out, broadcast_topic, listeners).await?;
    let m = lights.len() as u64;

    let cc = ctx.fixed(CONTROL_CENTER)?;
    let mut client = Client::connect(&cc, ctx.addr(), source_addr(1), Resume::Never).await?;
    let template = PublishTemplate::new(BROADCAST_TOPIC, QoS::AtLeastOnce, COMMAND_BYTES)?;

    // Broadcast 0 warms up and is left out of the figures.
    let result = async {
        send_one(&mut client, &template, 0, &counters).await?;
        drain(ctx, &counters, m, true).await?;
        latency.open();
        let (u0, t0) = (ctx.usage()?, Instant::now());
        let mut next = tokio::time::Instant::now();
        for seq in 1..=b as u64 {
            tokio::time::sleep_until(next).await;
            send_one(&mut client, &template, seq, &counters).await?;
            next += ctx.scale.broadcast_interval;
        }
        drain(ctx, &counters, m, true).await?;
        let (u1, secs) = (ctx.usage()?, t0.elapsed().as_secs_f64());
        latency.close();
        Ok::<_, crate::error::BenchError>((u0, u1, secs))
    }
    .await;
    stop_all.cancel();
    let failure = join_all(&mut tasks).await;
    let (u0, u1, secs) = result?;
    if let Some(e) = failure {
        return Err(ctx.fail(e));
    }
    let deliveries = b as u64 * m;
    out.throughput("", secs, b as u64, deliveries, &u0, &u1);
    out.latency("", &latency.summary());
    let mut lasts: Vec<f64> = last[1..]
        .iter()
        .map(|a| a.load(Ordering::Relaxed) as f64 / 1000.0)
        .collect();
    lasts.sort_by(f64::total_cmp);
    if let (Some(mid), Some(max)) = (lasts.get(lasts.len() / 2), lasts.last()) {
        out.metric("last delivery, median broadcast", "ms", Better::Lower, *mid);
        out.metric(
            "last delivery, slowest broadcast",
            "ms",
            Better::Lower,
            *max,
        );
    }
    out.peak(&ctx.usage()?);
    out.notes.push(format!(
        "{m} streetlights on {BROADCAST_TOPIC}; {b} QoS 1 broadcasts {:?} apart after one warm-up",
        ctx.scale.broadcast_interval
    ));
    Ok(())
}

/// Publish one broadcast and wait for its PUBACK.
async fn send_one(
    c: &mut Client,
    template: &PublishTemplate,
    seq: u64,
    counters: &Counters,
) -> Result<()> {
    template.queue(c, seq);
    counters.sent.fetch_add(1, Ordering::Relaxed);
    c.flush().await?;
    loop {
        if let Packet::PubAck(_) = c.next().await? {
            counters.acked.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
    }
}
