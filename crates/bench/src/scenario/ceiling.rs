//! `ceiling`: four publishers to four subscribers (pair i: `pub-i` on its
//! telemetry topic, `sink-i` subscribed to it) at QoS 0 and 1, 100 B and
//! 1 KB, unthrottled and at a fixed total rate; before those, N idle
//! mutual-TLS connections with one subscription each, for the broker's
//! memory per connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use civitas_mqtt::QoS;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::roles::{Hooks, Pair, Publisher, consume, join_all};
use super::{Counters, Ctx, RunOutput, disconnect_all, drain};
use crate::client::{Client, PublishTemplate, Resume, source_addr};
use crate::clock::Latency;
use crate::error::Result;
use crate::names::{self, PAIRS};
use crate::report::Better;

/// Messages in transit per pair when unthrottled: below both brokers'
/// queue limits (1000 queued + 100 in flight), so nothing is dropped.
const WINDOW: u64 = 500;
/// Time for the broker to settle after the idle connections subscribed.
const SETTLE: Duration = Duration::from_secs(1);

fn own_command_topic(name: &str) -> String {
    names::command_topic(name)
}

pub async fn run(ctx: &mut Ctx<'_>, out: &mut RunOutput) -> Result<()> {
    idle(ctx, out).await?;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        for size in [100, 1024] {
            for rate in [None, Some(ctx.scale.ceiling_rate)] {
                case(ctx, out, qos, size, rate).await?;
            }
        }
    }
    out.peak(&ctx.usage()?);
    Ok(())
}

async fn idle(ctx: &mut Ctx<'_>, out: &mut RunOutput) -> Result<()> {
    let n = ctx.scale.idle;
    let before = ctx.usage()?;
    let clients = ctx
        .connect_many(
            &ctx.devices[..n],
            Resume::Never,
            Some((own_command_topic, QoS::AtLeastOnce)),
        )
        .await?;
    tokio::time::sleep(SETTLE).await;
    let after = ctx.usage()?;
    out.metric(
        "idle connections: bytes per connection",
        "B",
        Better::Lower,
        after.rss.saturating_sub(before.rss) as f64 / n as f64,
    );
    disconnect_all(clients).await;
    out.notes.push(format!(
        "{n} idle mutual-TLS connections, one QoS 1 subscription each; RSS growth over the broker at rest"
    ));
    Ok(())
}

async fn case(
    ctx: &mut Ctx<'_>,
    out: &mut RunOutput,
    qos: QoS,
    size: usize,
    rate: Option<f64>,
) -> Result<()> {
    let label = format!(
        "QoS{} {} {}: ",
        qos as u8,
        if size >= 1024 {
            "1 KB".to_string()
        } else {
            format!("{size} B")
        },
        match rate {
            Some(r) => format!("at {}k/s", r / 1000.0),
            None => "unthrottled".to_string(),
        }
    );
    let counters = Arc::new(Counters::default());
    let latency = Arc::new(Latency::new());
    let stop_all = CancellationToken::new();
    let stop_send = CancellationToken::new();
    let mut tasks = JoinSet::new();
    for i in 0..PAIRS {
        let pub_name = names::publisher(i);
        let sink = ctx.fixed(&names::sink(i))?;
        let publisher = ctx.fixed(&pub_name)?;
        let topic = names::telemetry_topic(&pub_name);
        let mut s = Client::connect(&sink, ctx.addr(), source_addr(2 * i), Resume::Never).await?;
        s.subscribe(&topic, qos).await?;
        let p = Client::connect(
            &publisher,
            ctx.addr(),
            source_addr(2 * i + 1),
            Resume::Never,
        )
        .await?;
        let pair = Arc::new(Pair::default());
        tasks.spawn(consume(
            s,
            counters.clone(),
            latency.clone(),
            stop_all.clone(),
            Hooks {
                pair: Some(pair.clone()),
                last_by_seq: None,
            },
        ));
        let publisher = Publisher {
            client: p,
            templates: vec![PublishTemplate::new(&topic, qos, size)?],
            qos1: qos == QoS::AtLeastOnce,
            rate: rate.map(|r| r / PAIRS as f64),
            window: Some((pair, WINDOW)),
        };
        tasks.spawn(publisher.run(counters.clone(), stop_send.clone(), stop_all.clone()));
    }

    tokio::time::sleep(ctx.scale.ceiling_warmup).await;
    latency.open();
    let (u0, s0, r0, t0) = (
        ctx.usage()?,
        counters.sent(),
        counters.received(),
        Instant::now(),
    );
    tokio::time::sleep(ctx.scale.ceiling_measure).await;
    let (u1, s1, r1) = (ctx.usage()?, counters.sent(), counters.received());
    let secs = t0.elapsed().as_secs_f64();
    latency.close();
    stop_send.cancel();
    let drained = drain(ctx, &counters, 1, qos == QoS::AtLeastOnce).await;
    stop_all.cancel();
    let failure = join_all(&mut tasks).await;
    drained.map_err(|e| ctx.fail(format!("{label}{e}")))?;
    if let Some(e) = failure {
        return Err(ctx.fail(format!("{label}{e}")));
    }
    out.throughput(&label, secs, s1 - s0, r1 - r0, &u0, &u1);
    if rate.is_some() {
        out.latency(&label, &latency.summary());
    }
    Ok(())
}
