//! The metrics registry: counters, gauges and histograms keyed by name and
//! labels. Each kind has its own namespace, so asking for a counter never
//! finds a gauge of the same name.
//!
//! Values live in atomics behind shared handles; the registry's lock is
//! taken only to find or create a handle and to take a snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Histogram upper bounds in seconds, from a microsecond to ten seconds.
pub const DEFAULT_BUCKETS: &[f64] = &[
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What identifies one metric: its name and its labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricKey {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl MetricKey {
    pub fn new(name: &str, labels: &[(&str, &str)]) -> MetricKey {
        MetricKey {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// True if this is `name` with exactly `labels`.
    pub fn is(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.name == name
            && self.labels.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| self.labels.get(*k).map(String::as_str) == Some(*v))
    }
}

/// A monotonically increasing count.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    pub fn add(&self, delta: f64) {
        add_f64(&self.0, delta);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

fn add_f64(cell: &AtomicU64, delta: f64) {
    let mut current = cell.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + delta).to_bits();
        match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(seen) => current = seen,
        }
    }
}

/// A distribution of observed values in fixed buckets.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Cells>);

#[derive(Debug)]
struct Cells {
    bounds: Box<[f64]>,
    /// One per bound, then the `+Inf` bucket; not cumulative.
    counts: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Histogram {
        let mut bounds: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram(Arc::new(Cells {
            bounds: bounds.into_boxed_slice(),
            counts,
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }))
    }

    pub fn observe(&self, value: f64) {
        let cells = &self.0;
        let i = cells.bounds.partition_point(|b| *b < value);
        cells.counts[i].fetch_add(1, Ordering::Relaxed);
        cells.count.fetch_add(1, Ordering::Relaxed);
        add_f64(&cells.sum, value);
    }

    pub fn distribution(&self) -> Distribution {
        let cells = &self.0;
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(cells.counts.len());
        for (i, n) in cells.counts.iter().enumerate() {
            cumulative += n.load(Ordering::Relaxed);
            buckets.push(Bucket {
                le: cells.bounds.get(i).copied(),
                count: cumulative,
            });
        }
        Distribution {
            count: cells.count.load(Ordering::Relaxed),
            sum: f64::from_bits(cells.sum.load(Ordering::Relaxed)),
            buckets,
        }
    }
}

/// A histogram bucket: how many observations were at most `le` (`None`
/// is `+Inf`). Counts are cumulative, as Prometheus has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub le: Option<f64>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub count: u64,
    pub sum: f64,
    pub buckets: Vec<Bucket>,
}

impl Distribution {
    /// The value below which a fraction `q` (0 to 1) of the observations
    /// fall, estimated from the buckets as Prometheus' `histogram_quantile`
    /// does: linearly within the bucket the rank falls in, the first
    /// bucket starting at zero. A rank in the `+Inf` bucket yields the
    /// largest finite bound (all that is known: the value is above it).
    /// `None` without observations or for `q` outside 0..=1.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.count;
        if total == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * total as f64;
        let (mut lower, mut below) = (0.0, 0u64);
        for b in &self.buckets {
            let Some(upper) = b.le else {
                return Some(lower);
            };
            if b.count as f64 >= rank && b.count > below {
                let within = (rank - below as f64) / (b.count - below) as f64;
                return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
            }
            (lower, below) = (upper, b.count);
        }
        Some(lower)
    }

    /// The observations made after `earlier` was taken, for a snapshot
    /// of the same histogram taken later: counts and sum subtracted
    /// bucket by bucket. `None` when the buckets differ (not the same
    /// histogram) or `earlier` has more observations (not earlier).
    pub fn since(&self, earlier: &Distribution) -> Option<Distribution> {
        if self.buckets.len() != earlier.buckets.len() || earlier.count > self.count {
            return None;
        }
        let buckets = self
            .buckets
            .iter()
            .zip(&earlier.buckets)
            .map(|(now, then)| {
                (now.le == then.le && then.count <= now.count).then(|| Bucket {
                    le: now.le,
                    count: now.count - then.count,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Distribution {
            count: self.count - earlier.count,
            sum: self.sum - earlier.sum,
            buckets,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterSample {
    #[serde(flatten)]
    pub key: MetricKey,
    pub value: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaugeSample {
    #[serde(flatten)]
    pub key: MetricKey,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSample {
    #[serde(flatten)]
    pub key: MetricKey,
    #[serde(flatten)]
    pub distribution: Distribution,
}

/// Every metric at one moment, ordered by key within each kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub counters: Vec<CounterSample>,
    pub gauges: Vec<GaugeSample>,
    pub histograms: Vec<HistogramSample>,
}

impl MetricsSnapshot {
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        self.counters
            .iter()
            .find(|s| s.key.is(name, labels))
            .map(|s| s.value)
    }

    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.gauges
            .iter()
            .find(|s| s.key.is(name, labels))
            .map(|s| s.value)
    }

    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Distribution> {
        self.histograms
            .iter()
            .find(|s| s.key.is(name, labels))
            .map(|s| &s.distribution)
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    counters: Mutex<BTreeMap<MetricKey, Counter>>,
    gauges: Mutex<BTreeMap<MetricKey, Gauge>>,
    histograms: Mutex<BTreeMap<MetricKey, Histogram>>,
}

impl Registry {
    pub(crate) fn counter(&self, key: MetricKey) -> Counter {
        self.counters.lock().entry(key).or_default().clone()
    }

    pub(crate) fn gauge(&self, key: MetricKey) -> Gauge {
        self.gauges.lock().entry(key).or_default().clone()
    }

    pub(crate) fn histogram(&self, key: MetricKey, bounds: &[f64]) -> Histogram {
        self.histograms
            .lock()
            .entry(key)
            .or_insert_with(|| Histogram::new(bounds))
            .clone()
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            counters: self
                .counters
                .lock()
                .iter()
                .map(|(key, c)| CounterSample {
                    key: key.clone(),
                    value: c.get(),
                })
                .collect(),
            gauges: self
                .gauges
                .lock()
                .iter()
                .map(|(key, g)| GaugeSample {
                    key: key.clone(),
                    value: g.get(),
                })
                .collect(),
            histograms: self
                .histograms
                .lock()
                .iter()
                .map(|(key, h)| HistogramSample {
                    key: key.clone(),
                    distribution: h.distribution(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_share_one_value_per_key() {
        let r = Registry::default();
        r.counter(MetricKey::new("c", &[("a", "1")])).add(2);
        r.counter(MetricKey::new("c", &[("a", "1")])).inc();
        r.counter(MetricKey::new("c", &[("a", "2")])).inc();
        let s = r.snapshot();
        assert_eq!(s.counter("c", &[("a", "1")]), Some(3));
        assert_eq!(s.counter("c", &[("a", "2")]), Some(1));
        assert_eq!(s.counter("c", &[]), None);
        assert_eq!(s.counter("c", &[("a", "1"), ("b", "x")]), None);
    }

    #[test]
    fn label_order_does_not_matter() {
        let r = Registry::default();
        r.counter(MetricKey::new("c", &[("a", "1"), ("b", "2")]))
            .inc();
        r.counter(MetricKey::new("c", &[("b", "2"), ("a", "1")]))
            .inc();
        assert_eq!(
            r.snapshot().counter("c", &[("b", "2"), ("a", "1")]),
            Some(2)
        );
    }

    #[test]
    fn gauges_go_up_and_down() {
        let r = Registry::default();
        let g = r.gauge(MetricKey::new("g", &[]));
        g.set(10.0);
        g.add(-2.5);
        assert_eq!(r.snapshot().gauge("g", &[]), Some(7.5));
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_inf_last() {
        let r = Registry::default();
        let h = r.histogram(MetricKey::new("h", &[]), &[1.0, 0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 2.0, 3.0] {
            h.observe(v);
        }
        let s = r.snapshot();
        let sample = s.histogram("h", &[]).unwrap();
        assert_eq!(sample.count, 5);
        assert!((sample.sum - 5.65).abs() < 1e-9);
        assert_eq!(
            sample.buckets,
            vec![
                Bucket {
                    le: Some(0.1),
                    count: 2
                },
                Bucket {
                    le: Some(1.0),
                    count: 3
                },
                Bucket { le: None, count: 5 },
            ]
        );
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let r = Registry::default();
        let h = r.histogram(MetricKey::new("h", &[]), &[1.0, 2.0, 4.0]);
        assert_eq!(h.distribution().quantile(0.5), None);
        // 10 in (0, 1], 10 in (1, 2], 20 in (2, 4].
        for _ in 0..10 {
            h.observe(0.5);
            h.observe(1.5);
            h.observe(3.0);
            h.observe(3.5);
        }
        let d = h.distribution();
        assert_eq!(d.quantile(0.0), Some(0.0));
        assert_eq!(d.quantile(0.125), Some(0.5));
        assert_eq!(d.quantile(0.25), Some(1.0));
        assert_eq!(d.quantile(0.375), Some(1.5));
        assert_eq!(d.quantile(0.75), Some(3.0));
        assert_eq!(d.quantile(1.0), Some(4.0));
        assert_eq!(d.quantile(1.5), None);
        // Beyond the last bound only the bound is known.
        h.observe(100.0);
        assert_eq!(h.distribution().quantile(1.0), Some(4.0));
    }

    #[test]
    fn a_distribution_since_an_earlier_snapshot_counts_what_came_after() {
        let r = Registry::default();
        let h = r.histogram(MetricKey::new("h", &[]), &[1.0, 2.0]);
        h.observe(0.5);
        h.observe(5.0);
        let earlier = h.distribution();
        h.observe(1.5);
        h.observe(1.5);
        let window = h.distribution().since(&earlier).unwrap();
        assert_eq!(window.count, 2);
        assert!((window.sum - 3.0).abs() < 1e-9);
        assert_eq!(
            window.buckets.iter().map(|b| b.count).collect::<Vec<_>>(),
            vec![0, 2, 2]
        );
        assert_eq!(window.quantile(0.5), Some(1.5));
        // Not earlier, or not the same histogram.
        assert_eq!(earlier.since(&h.distribution()), None);
        let other = r.histogram(MetricKey::new("o", &[]), &[1.0]).distribution();
        assert_eq!(h.distribution().since(&other), None);
    }

    #[test]
    fn snapshots_read_back_from_json() {
        let r = Registry::default();
        r.counter(MetricKey::new("c", &[("rule", "x")])).add(3);
        r.histogram(MetricKey::new("h", &[]), &[1.0]).observe(0.5);
        let s = r.snapshot();
        let json = serde_json::to_string(&s).unwrap();
        let back: MetricsSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.histogram("h", &[]).unwrap().buckets[1].le, None);
    }

    #[test]
    fn kinds_have_their_own_names() {
        let r = Registry::default();
        r.counter(MetricKey::new("x", &[])).inc();
        r.gauge(MetricKey::new("x", &[])).set(4.0);
        let s = r.snapshot();
        assert_eq!(s.counter("x", &[]), Some(1));
        assert_eq!(s.gauge("x", &[]), Some(4.0));
    }
}
