//! The two roles every scenario is built from: a subscriber that counts,
//! times and acknowledges what it receives, and a publisher that sends at
//! a fixed rate or as fast as its windows allow.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use civitas_mqtt::Packet;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::Counters;
use crate::client::{Client, PublishTemplate};
use crate::clock::{self, Latency};
use crate::error::Result;

/// Messages written per flush when a publisher may send many.
const BATCH: u64 = 64;

/// A publisher and its subscriber: the subscriber counts what arrived so
/// the publisher can keep a bounded number of messages in transit.
#[derive(Default)]
pub struct Pair {
    pub received: AtomicU64,
    pub notify: Notify,
}

/// Optional extras of a subscriber.
#[derive(Default, Clone)]
pub struct Hooks {
    /// Count arrivals here too and wake the pair's publisher.
    pub pair: Option<Arc<Pair>>,
    /// Keep the largest latency (µs) per sequence number (broadcasts).
    pub last_by_seq: Option<Arc<Vec<AtomicU64>>>,
}

/// Wait for every task; the first failure, if any.
pub async fn join_all(tasks: &mut JoinSet<Result<()>>) -> Option<String> {
    let mut first = None;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first.get_or_insert(e.to_string());
            }
            Err(e) => {
                first.get_or_insert(e.to_string());
            }
        }
    }
    first
}

/// A subscriber: count and time every PUBLISH, acknowledge QoS 1.
pub async fn consume(
    mut c: Client,
    counters: Arc<Counters>,
    latency: Arc<Latency>,
    stop: CancellationToken,
    hooks: Hooks,
) -> Result<()> {
    loop {
        tokio::select! {
            r = c.read() => r?,
            _ = stop.cancelled() => return Ok(()),
        }
        let mut n = 0;
        while let Some(p) = c.take()? {
            if let Packet::Publish(p) = p {
                if let Some(sent) = clock::sent_at(&p.payload) {
                    latency.record(sent);
                    if let Some(last) = &hooks.last_by_seq {
                        let seq = p
                            .payload
                            .get(8..16)
                            .and_then(|b| b.try_into().ok())
                            .map(u64::from_le_bytes)
                            .unwrap_or(u64::MAX);
                        if let Some(slot) = usize::try_from(seq).ok().and_then(|s| last.get(s)) {
                            let us = clock::now_ns().saturating_sub(sent) / 1000;
                            slot.fetch_max(us, Ordering::Relaxed);
                        }
                    }
                }
                if let Some(pid) = p.packet_id {
                    c.queue_puback(pid)?;
                }
                n += 1;
            }
        }
        counters.received.fetch_add(n, Ordering::Relaxed);
        if let Some(pair) = &hooks.pair {
            pair.received.fetch_add(n, Ordering::Relaxed);
            pair.notify.notify_one();
        }
        c.flush().await?;
    }
}

/// A publisher cycling through its templates.
pub struct Publisher {
    pub client: Client,
    pub templates: Vec<PublishTemplate>,
    pub qos1: bool,
    /// Messages per second; `None`: as fast as the windows allow.
    pub rate: Option<f64>,
    /// At most this many messages sent but not yet received by the pair's
    /// subscriber, so an unthrottled run measures what the broker
    /// delivers rather than how deep its queues grow.
    pub window: Option<(Arc<Pair>, u64)>,
}

impl Publisher {
    pub async fn run(
        mut self,
        counters: Arc<Counters>,
        stop_send: CancellationToken,
        stop_all: CancellationToken,
    ) -> Result<()> {
        let c = &mut self.client;
        let start = Instant::now();
        let in_flight_max = u64::from(c.receive_maximum);
        let (mut sent, mut acked) = (0u64, 0u64);
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let n_templates = self.templates.len().max(1) as u64;
        loop {
            let mut more = false;
            if !stop_send.is_cancelled() && !self.templates.is_empty() {
                let mut allowed = u64::MAX;
                if self.qos1 {
                    allowed = allowed.min(in_flight_max.saturating_sub(sent - acked));
                }
                if let Some((pair, w)) = &self.window {
                    let arrived = pair.received.load(Ordering::Relaxed);
                    allowed = allowed.min(w.saturating_sub(sent.saturating_sub(arrived)));
                }
                if let Some(rate) = self.rate {
                    let due = (start.elapsed().as_secs_f64() * rate) as u64;
                    allowed = allowed.min(due.saturating_sub(sent));
                }
                let n = allowed.min(BATCH);
                for _ in 0..n {
                    let t = &self.templates[(sent % n_templates) as usize];
                    t.queue(c, sent);
                    sent += 1;
                }
                if n > 0 {
                    counters.sent.fetch_add(n, Ordering::Relaxed);
                    c.flush().await?;
                }
                more = n == BATCH && self.rate.is_none();
            }
            let pair = self.window.as_ref().map(|(p, _)| p.clone());
            tokio::select! {
                r = c.read() => {
                    r?;
                    let mut k = 0;
                    while let Some(p) = c.take()? {
                        if matches!(p, Packet::PubAck(_)) {
                            k += 1;
                        }
                    }
                    acked += k;
                    counters.acked.fetch_add(k, Ordering::Relaxed);
                }
                _ = tick.tick(), if self.rate.is_some() => {}
                _ = async { if let Some(p) = &pair { p.notify.notified().await } }, if pair.is_some() => {}
                _ = tokio::task::yield_now(), if more => {}
                _ = stop_send.cancelled(), if !stop_send.is_cancelled() => {}
                _ = stop_all.cancelled() => return Ok(()),
            }
        }
    }
}
