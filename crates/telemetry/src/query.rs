//! What can be asked of stored telemetry, and the arithmetic of answers:
//! range queries, per-bucket aggregation and chart downsampling.
//!
//! Time ranges are half-open, `[from_ms, to_ms)`, in unix ms. Buckets start
//! at `from_ms` and are all returned, empty ones included, so that a chart
//! shows gaps where a device was silent.

use std::time::Duration;

use crate::error::{TelemetryError, Unreadable};
use crate::reading::Reading;

/// Most buckets one aggregation may produce.
pub const MAX_BUCKETS: usize = 100_000;

/// Which readings come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    OldestFirst,
    NewestFirst,
}

/// Readings of some devices, optionally one metric, in a time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Devices to read; empty means every device that has telemetry.
    pub things: Vec<String>,
    /// Only this metric, if set.
    pub metric: Option<String>,
    pub from_ms: u64,
    pub to_ms: u64,
    pub order: Order,
    /// At most this many readings (after merging devices).
    pub limit: Option<usize>,
}

impl Query {
    /// Everything of one device, oldest first.
    pub fn thing(thing: impl Into<String>) -> Query {
        Query {
            things: vec![thing.into()],
            ..Query::all_things()
        }
    }

    /// Everything of every device, oldest first.
    pub fn all_things() -> Query {
        Query {
            things: Vec::new(),
            metric: None,
            from_ms: 0,
            to_ms: u64::MAX,
            order: Order::OldestFirst,
            limit: None,
        }
    }

    #[must_use]
    pub fn metric(mut self, metric: impl Into<String>) -> Query {
        self.metric = Some(metric.into());
        self
    }

    #[must_use]
    pub fn range(mut self, from_ms: u64, to_ms: u64) -> Query {
        self.from_ms = from_ms;
        self.to_ms = to_ms;
        self
    }

    #[must_use]
    pub fn newest_first(mut self) -> Query {
        self.order = Order::NewestFirst;
        self
    }

    #[must_use]
    pub fn limit(mut self, limit: usize) -> Query {
        self.limit = Some(limit);
        self
    }
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryResult {
    pub readings: Vec<Reading>,
    /// Blocks in range left out, and why.
    pub unreadable: Vec<Unreadable>,
}

/// How an aggregation cuts its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucketing {
    /// Buckets of this width.
    Width(Duration),
    /// The narrowest whole-ms width giving at most this many buckets (for
    /// a chart `n` points wide).
    AtMost(usize),
}

/// Statistics of one metric of one device per time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateQuery {
    pub thing: String,
    pub metric: String,
    pub from_ms: u64,
    pub to_ms: u64,
    pub bucketing: Bucketing,
}

/// One bucket's statistics; `None` where the bucket is empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bucket {
    pub start_ms: u64,
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub sum: f64,
    pub avg: Option<f64>,
    /// The value with the latest timestamp.
    pub last: Option<f64>,
}

/// The answer to an [`AggregateQuery`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Aggregation {
    pub bucket_ms: u64,
    pub buckets: Vec<Bucket>,
    pub unreadable: Vec<Unreadable>,
}

/// A downsampled series for a chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chart {
    /// (timestamp ms, value), ascending, at most the points asked for.
    pub points: Vec<(u64, f64)>,
    pub unreadable: Vec<Unreadable>,
}

pub(crate) fn check_range(from_ms: u64, to_ms: u64) -> Result<(), TelemetryError> {
    if from_ms >= to_ms {
        return Err(TelemetryError::InvalidQuery(format!(
            "empty range: from {from_ms} ms is not before to {to_ms} ms"
        )));
    }
    Ok(())
}

/// Running statistics per bucket.
pub(crate) struct Buckets {
    from_ms: u64,
    to_ms: u64,
    width: u64,
    acc: Vec<(Bucket, u64)>,
}

impl Buckets {
    pub(crate) fn new(q: &AggregateQuery) -> Result<Buckets, TelemetryError> {
        check_range(q.from_ms, q.to_ms)?;
        let span = q.to_ms - q.from_ms;
        let width = match q.bucketing {
            Bucketing::Width(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Bucketing::AtMost(0) => {
                return Err(TelemetryError::InvalidQuery("zero buckets asked".into()));
            }
            Bucketing::AtMost(n) => span.div_ceil(n as u64).max(1),
        };
        if width == 0 {
            return Err(TelemetryError::InvalidQuery(
                "bucket width must be at least 1 ms".into(),
            ));
        }
        let count = span.div_ceil(width);
        if count > MAX_BUCKETS as u64 {
            return Err(TelemetryError::InvalidQuery(format!(
                "{count} buckets asked; at most {MAX_BUCKETS}"
            )));
        }
        let acc = (0..count)
            .map(|i| {
                (
                    Bucket {
                        start_ms: q.from_ms + i * width,
                        ..Bucket::default()
                    },
                    0,
                )
            })
            .collect();
        Ok(Buckets {
            from_ms: q.from_ms,
            to_ms: q.to_ms,
            width,
            acc,
        })
    }

    pub(crate) fn add(&mut self, timestamp_ms: u64, value: f64) {
        if timestamp_ms < self.from_ms || timestamp_ms >= self.to_ms {
            return;
        }
        let i = ((timestamp_ms - self.from_ms) / self.width) as usize;
        let Some((b, last_ts)) = self.acc.get_mut(i) else {
            return;
        };
        b.count += 1;
        b.sum += value;
        b.min = Some(b.min.map_or(value, |m| m.min(value)));
        b.max = Some(b.max.map_or(value, |m| m.max(value)));
        if b.last.is_none() || timestamp_ms >= *last_ts {
            b.last = Some(value);
            *last_ts = timestamp_ms;
        }
    }

    pub(crate) fn finish(self, unreadable: Vec<Unreadable>) -> Aggregation {
        Aggregation {
            bucket_ms: self.width,
            buckets: self
                .acc
                .into_iter()
                .map(|(mut b, _)| {
                    b.avg = (b.count > 0).then(|| b.sum / b.count as f64);
                    b
                })
                .collect(),
            unreadable,
        }
    }
}

/// Largest-Triangle-Three-Buckets downsampling (Steinarsson, 2013): keeps
/// the first and last point and, from each of `max_points - 2` buckets, the
/// point spanning the largest triangle with its neighbours, so peaks and
/// dips survive where averaging would flatten them. `points` must be in
/// ascending time order.
pub fn downsample(points: &[(u64, f64)], max_points: usize) -> Vec<(u64, f64)> {
    let n = points.len();
    if max_points >= n {
        return points.to_vec();
    }
    match max_points {
        0 => return Vec::new(),
        1 => return points[..1].to_vec(),
        2 => return vec![points[0], points[n - 1]],
        _ => {}
    }
    // Relative times keep f64 exact over any realistic range.
    let t0 = points[0].0;
    let x = |i: usize| (points[i].0 - t0) as f64;
    let every = (n - 2) as f64 / (max_points - 2) as f64;
    let mut out = Vec::with_capacity(max_points);
    out.push(points[0]);
    let mut a = 0usize;
    for i in 0..max_points - 2 {
        let next_start = ((i + 1) as f64 * every) as usize + 1;
        let next_end = (((i + 2) as f64 * every) as usize + 1).min(n);
        let next = &points[next_start.min(next_end)..next_end];
        let len = next.len().max(1) as f64;
        let avg_x = next.iter().map(|p| (p.0 - t0) as f64).sum::<f64>() / len;
        let avg_y = next.iter().map(|p| p.1).sum::<f64>() / len;

        let start = (i as f64 * every) as usize + 1;
        let end = next_start.min(n - 1);
        let (ax, ay) = (x(a), points[a].1);
        let mut best = start;
        let mut best_area = -1.0;
        for (j, p) in points.iter().enumerate().take(end).skip(start) {
            let area = ((ax - avg_x) * (p.1 - ay) - (ax - x(j)) * (avg_y - ay)).abs();
            if area > best_area {
                best_area = area;
                best = j;
            }
        }
        out.push(points[best]);
        a = best;
    }
    out.push(points[n - 1]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_ends_and_peaks() {
        let mut points: Vec<(u64, f64)> = (0..1000).map(|i| (i * 1000, 0.0)).collect();
        points[500].1 = 100.0;
        points[700].1 = -50.0;
        let out = downsample(&points, 50);
        assert_eq!(out.len(), 50);
        assert_eq!(out[0], points[0]);
        assert_eq!(out[49], points[999]);
        assert!(out.contains(&points[500]));
        assert!(out.contains(&points[700]));
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(downsample(&points[..10], 50).len(), 10);
        assert_eq!(downsample(&points, 2), vec![points[0], points[999]]);
        assert!(downsample(&points, 0).is_empty());
    }
}
