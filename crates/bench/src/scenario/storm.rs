//! `reconnect-storm`: every device reconnects at once (at most
//! `concurrency` attempts in progress, as a listen backlog would admit
//! them): first with full mutual-TLS handshakes, then resuming the TLS
//! sessions of the first wave.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::Resumption;

use super::{Ctx, RunOutput, disconnect_all};
use crate::client::Resume;
use crate::error::Result;
use crate::pki::Identity;
use crate::procfs;
use crate::report::Better;

/// Time for the broker to finish closing the previous wave.
const SETTLE: Duration = Duration::from_millis(500);

pub async fn run(ctx: &mut Ctx<'_>, out: &mut RunOutput) -> Result<()> {
    let n = ctx.scale.devices;
    // Fresh ticket stores: tickets from an earlier run's broker would be
    // offered and refused, turning "resumed" into full handshakes.
    let ids: Vec<Identity> = ctx.devices[..n]
        .iter()
        .map(|id| {
            let mut resuming = (*id.resuming).clone();
            resuming.resumption = Resumption::in_memory_sessions(4);
            Identity {
                name: id.name.clone(),
                full: id.full.clone(),
                resuming: Arc::new(resuming),
            }
        })
        .collect();

    // The first wave's clients keep the tickets the broker sends, which
    // costs the broker nothing more (it sends them either way); with empty
    // ticket stores there is nothing to offer, so every handshake is full.
    let (clients, secs, cpu, gen_full) = wave(ctx, &ids).await?;
    let resumed = clients.iter().filter(|c| c.resumed).count();
    if resumed > 0 {
        return Err(ctx.fail(format!("{resumed} handshakes resumed without tickets")));
    }
    disconnect_all(clients).await;
    report(out, "full handshake: ", n, secs, cpu);
    tokio::time::sleep(SETTLE).await;

    let (clients, secs, cpu, gen_resumed) = wave(ctx, &ids).await?;
    let resumed = clients.iter().filter(|c| c.resumed).count();
    disconnect_all(clients).await;
    report(out, "with resumption: ", n, secs, cpu);
    out.metric(
        "with resumption: sessions resumed",
        "%",
        Better::Higher,
        100.0 * resumed as f64 / n as f64,
    );
    out.notes.push(format!(
        "{n} devices per wave, {} connection attempts in flight; {resumed} of {n} resumed the TLS session; \
         the generator spent {:.0} µs of CPU per full connection, {:.0} µs per resuming one",
        ctx.scale.concurrency,
        gen_full * 1e6 / n as f64,
        gen_resumed * 1e6 / n as f64,
    ));
    out.peak(&ctx.usage()?);
    Ok(())
}

/// Connect all of `ids`, offering the tickets they hold; (clients, wall
/// seconds, broker CPU seconds, generator CPU seconds).
async fn wave(
    ctx: &mut Ctx<'_>,
    ids: &[Identity],
) -> Result<(Vec<crate::client::Client>, f64, f64, f64)> {
    let me = std::process::id();
    let (u0, g0) = (ctx.usage()?, procfs::usage(me)?);
    let t0 = Instant::now();
    let clients = ctx.connect_many(ids, Resume::IfPossible, None).await?;
    let secs = t0.elapsed().as_secs_f64();
    let (u1, g1) = (ctx.usage()?, procfs::usage(me)?);
    Ok((
        clients,
        secs,
        u1.cpu_secs - u0.cpu_secs,
        g1.cpu_secs - g0.cpu_secs,
    ))
}

fn report(out: &mut RunOutput, prefix: &str, n: usize, secs: f64, cpu: f64) {
    out.metric(
        format!("{prefix}connections/s"),
        "conn/s",
        Better::Higher,
        n as f64 / secs,
    );
    if cpu > 0.0 {
        out.metric(
            format!("{prefix}handshakes per broker CPU-s"),
            "conn/CPU-s",
            Better::Higher,
            n as f64 / cpu,
        );
    }
}
