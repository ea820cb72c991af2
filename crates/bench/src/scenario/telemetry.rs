//! `fan-in` and `surge`: every device publishes a 200-byte QoS 1 reading
//! on its own telemetry topic once per period (10 s, or 1 s in a surge),
//! phases spread evenly, into one shared-subscription group of four
//! consumers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use civitas_mqtt::{Packet, QoS};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::roles::{Hooks, consume, join_all};
use super::{Counters, Ctx, RunOutput, drain};
use crate::client::{Client, PublishTemplate, Resume};
use crate::clock::Latency;
use crate::error::Result;
use crate::names::{self, CONSUMERS, INGEST_FILTER};

const READING_BYTES: usize = 200;

pub async fn run(ctx: &mut Ctx<'_>, out: &mut RunOutput, period: Duration) -> Result<()> {
    let n = ctx.scale.devices;
    let counters = Arc::new(Counters::default());
    let latency = Arc::new(Latency::new());
    let stop_all = CancellationToken::new();
    let stop_send = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let consumer_ids: Vec<_> = (0..CONSUMERS)
        .map(|i| ctx.fixed(&names::consumer(i)))
        .collect::<Result<_>>()?;
    for id in consumer_ids {
        let mut c = Client::connect(
            &id,
            ctx.addr(),
            crate::client::source_addr(0),
            Resume::Never,
        )
        .await?;
        c.subscribe(INGEST_FILTER, QoS::AtLeastOnce).await?;
        tasks.spawn(consume(
            c,
            counters.clone(),
            latency.clone(),
            stop_all.clone(),
            Hooks::default(),
        ));
    }

    let before_connect = ctx.usage()?;
    let devices = ctx
        .connect_many(&ctx.devices[..n], Resume::Never, None)
        .await?;
    let connected = ctx.usage()?;
    out.memory(n, &before_connect, &connected);

    let start = Instant::now();
    for (i, c) in devices.into_iter().enumerate() {
        let phase = period.mul_f64(i as f64 / n as f64);
        tasks.spawn(device(
            c,
            start + phase,
            period,
            counters.clone(),
            stop_send.clone(),
            stop_all.clone(),
        ));
    }

    tokio::time::sleep(ctx.scale.telemetry_warmup).await;
    latency.open();
    let (u0, s0, r0, t0) = (
        ctx.usage()?,
        counters.sent(),
        counters.received(),
        Instant::now(),
    );
    tokio::time::sleep(ctx.scale.telemetry_measure).await;
    let (u1, s1, r1) = (ctx.usage()?, counters.sent(), counters.received());
    let secs = t0.elapsed().as_secs_f64();
    latency.close();
    stop_send.cancel();

    let drained = drain(ctx, &counters, 1, true).await;
    stop_all.cancel();
    let failures = join_all(&mut tasks).await;
    drained?;
    if let Some(e) = failures {
        return Err(ctx.fail(e));
    }
    out.throughput("", secs, s1 - s0, r1 - r0, &u0, &u1);
    out.latency("", &latency.summary());
    out.peak(&ctx.usage()?);
    out.notes.push(format!(
        "{n} devices, one {READING_BYTES}-byte QoS 1 reading every {period:?} each; {} readings delivered",
        counters.received()
    ));
    Ok(())
}

async fn device(
    mut c: Client,
    first: Instant,
    period: Duration,
    counters: Arc<Counters>,
    stop_send: CancellationToken,
    stop_all: CancellationToken,
) -> Result<()> {
    let template = PublishTemplate::new(
        &names::telemetry_topic(&c.name),
        QoS::AtLeastOnce,
        READING_BYTES,
    )?;
    let mut next = tokio::time::Instant::from_std(first);
    let mut seq = 0u64;
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
                template.queue(&mut c, seq);
                seq += 1;
                counters.sent.fetch_add(1, Ordering::Relaxed);
                c.flush().await?;
                next += period;
            }
            _ = stop_send.cancelled(), if !stop_send.is_cancelled() => {}
            _ = stop_all.cancelled() => return Ok(()),
        }
    }
}
