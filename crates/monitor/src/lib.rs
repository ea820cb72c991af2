//! civitas monitoring: an in-memory registry of metrics — counters, gauges
//! and histograms, each keyed by a name and labels — with a consistent
//! snapshot for display and export, and named alarms that are raised and
//! cleared with their state and timestamps kept.
//!
//! Metric handles are cheap atomics: look one up once (that takes a lock)
//! and keep it on the hot path. Nothing here blocks on I/O.
//!
//! ```
//! use civitas_monitor::Monitor;
//!
//! let monitor = Monitor::new();
//! let matched = monitor.counter("rules_matched_total", &[("rule", "lamp_alerts")]);
//! matched.inc();
//! monitor.histogram("rules_evaluation_seconds", &[("rule", "lamp_alerts")]).observe(0.000_02);
//! assert!(monitor.raise_alarm("rules.queue_overflow.lamp_alerts", "12 messages dropped"));
//!
//! let snapshot = monitor.snapshot();
//! assert_eq!(snapshot.counter("rules_matched_total", &[("rule", "lamp_alerts")]), Some(1));
//! assert!(monitor.alarm("rules.queue_overflow.lamp_alerts").unwrap().is_raised());
//! ```

mod alarms;
mod metrics;

use std::sync::Arc;

pub use alarms::{Alarm, AlarmState};
pub use metrics::{
    Bucket, Counter, CounterSample, DEFAULT_BUCKETS, Distribution, Gauge, GaugeSample, Histogram,
    HistogramSample, MetricKey, MetricsSnapshot,
};

/// Milliseconds since the Unix epoch, as the monitor's clock reads them.
pub type ClockFn = dyn Fn() -> u64 + Send + Sync;

/// The metrics registry and the alarms. Cheap to clone; clones share
/// everything.
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: metrics::Registry,
    alarms: alarms::Alarms,
    clock: Box<ClockFn>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor::new()
    }
}

impl Monitor {
    /// A monitor on the system clock.
    pub fn new() -> Monitor {
        Monitor::with_clock(system_now_ms)
    }

    /// A monitor whose alarm timestamps come from `clock` (tests use a
    /// manual one).
    pub fn with_clock(clock: impl Fn() -> u64 + Send + Sync + 'static) -> Monitor {
        Monitor {
            inner: Arc::new(Inner {
                metrics: metrics::Registry::default(),
                alarms: alarms::Alarms::default(),
                clock: Box::new(clock),
            }),
        }
    }

    /// The counter `name{labels}`, created at zero on first use.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Counter {
        self.inner.metrics.counter(MetricKey::new(name, labels))
    }

    /// The gauge `name{labels}`, created at zero on first use.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Gauge {
        self.inner.metrics.gauge(MetricKey::new(name, labels))
    }

    /// The histogram `name{labels}` with [`DEFAULT_BUCKETS`] (seconds,
    /// from a microsecond to ten seconds), created empty on first use.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Histogram {
        self.histogram_with_buckets(name, labels, DEFAULT_BUCKETS)
    }

    /// The histogram `name{labels}` with the given upper bounds (sorted
    /// and deduplicated here; `+Inf` is implied). The bounds given when a
    /// histogram is first created are the ones it keeps.
    pub fn histogram_with_buckets(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
    ) -> Histogram {
        self.inner
            .metrics
            .histogram(MetricKey::new(name, labels), bounds)
    }

    /// Every metric's current value, ordered by key.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Raises the alarm `name` with `message` (replacing an earlier
    /// message). True when it was not raised before.
    pub fn raise_alarm(&self, name: &str, message: impl Into<String>) -> bool {
        self.inner
            .alarms
            .raise(name, message.into(), (self.inner.clock)())
    }

    /// Clears the alarm `name`. True when it was raised.
    pub fn clear_alarm(&self, name: &str) -> bool {
        self.inner.alarms.clear(name, (self.inner.clock)())
    }

    /// The alarm `name`, raised or cleared; `None` if it was never raised.
    pub fn alarm(&self, name: &str) -> Option<Alarm> {
        self.inner.alarms.get(name)
    }

    /// Every alarm ever raised, ordered by name.
    pub fn alarms(&self) -> Vec<Alarm> {
        self.inner.alarms.all()
    }

    /// The alarms raised right now, ordered by name.
    pub fn active_alarms(&self) -> Vec<Alarm> {
        self.alarms().into_iter().filter(Alarm::is_raised).collect()
    }
}

fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Monitor>();
    send_sync::<Counter>();
    send_sync::<Gauge>();
    send_sync::<Histogram>();
};
