//! Send timestamps inside payloads and the latency histogram they feed.
//!
//! Publisher and subscriber run in the same process, so one monotonic
//! base instant serves both ends: a payload starts with the nanoseconds
//! since that base at which it was sent, then a sequence number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use hdrhistogram::Histogram;

/// Bytes at the front of every payload: send time and sequence number.
pub const STAMP_LEN: usize = 16;

static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process's bench base instant.
pub fn now_ns() -> u64 {
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The system clock (wall clock), unix ms with the fraction: for times
/// compared with another process's, such as civitas' storage times.
pub fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Write the send time and sequence number into the front of `payload`.
pub fn stamp(payload: &mut [u8], seq: u64) {
    if payload.len() >= STAMP_LEN {
        payload[..8].copy_from_slice(&now_ns().to_le_bytes());
        payload[8..16].copy_from_slice(&seq.to_le_bytes());
    }
}

/// The send time stamped into `payload`, if it carries one.
pub fn sent_at(payload: &[u8]) -> Option<u64> {
    payload
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
}

/// End-to-end latencies, in microseconds, of messages sent inside the
/// measurement window (warm-up traffic is left out).
pub struct Latency {
    /// `None` only if the histogram bounds were refused, which these
    /// constant bounds never are.
    hist: Mutex<Option<Histogram<u64>>>,
    from: AtomicU64,
    to: AtomicU64,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Latency {
        // 1 µs .. 10 min at 3 significant digits.
        Latency {
            hist: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3).ok()),
            from: AtomicU64::new(u64::MAX),
            to: AtomicU64::new(u64::MAX),
        }
    }

    /// Record only messages sent from now on until [`close`](Self::close).
    pub fn open(&self) {
        self.to.store(u64::MAX, Ordering::Relaxed);
        self.from.store(now_ns(), Ordering::Relaxed);
    }

    pub fn close(&self) {
        self.to.store(now_ns(), Ordering::Relaxed);
    }

    /// A message stamped `sent` arrived now.
    pub fn record(&self, sent: u64) {
        let now = now_ns();
        let in_window =
            sent >= self.from.load(Ordering::Relaxed) && sent <= self.to.load(Ordering::Relaxed);
        if in_window
            && let Ok(mut h) = self.hist.lock()
            && let Some(h) = h.as_mut()
        {
            h.saturating_record((now.saturating_sub(sent) / 1000).max(1));
        }
    }

    /// (count, p50, p99, p99.9, max), microseconds.
    pub fn summary(&self) -> LatencySummary {
        match self.hist.lock().ok().as_deref().and_then(Option::as_ref) {
            Some(h) if !h.is_empty() => LatencySummary {
                count: h.len(),
                p50_us: h.value_at_quantile(0.5),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                max_us: h.max(),
            },
            _ => LatencySummary::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trip() {
        let mut p = vec![0u8; 32];
        let before = now_ns();
        stamp(&mut p, 7);
        let t = sent_at(&p).unwrap();
        assert!(t >= before);
        assert_eq!(u64::from_le_bytes(p[8..16].try_into().unwrap()), 7);
    }

    #[test]
    fn records_only_inside_the_window() {
        let l = Latency::new();
        l.record(now_ns());
        assert_eq!(l.summary().count, 0);
        l.open();
        l.record(now_ns());
        l.close();
        l.record(now_ns() + 1);
        assert_eq!(l.summary().count, 1);
    }
}
