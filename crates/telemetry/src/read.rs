//! Answering queries: walk a device's blocks in range from one store
//! snapshot, open each (the whole block is authenticated before any of its
//! readings is used), and hand good blocks on. A bad block is reported with
//! its location and skipped; a shredded device is reported once and its
//! remaining blocks are counted without asking the KMS again.

use std::cell::Cell;
use std::ops::ControlFlow;
use std::sync::Arc;

use civitas_store::{BlockOrder, TelemetryBlockKey, TelemetryRead};

use crate::block::{BlockFailure, OpenedBlock, open_block};
use crate::error::{BlockLocation, TelemetryError, Unreadable};
use crate::format::decode_readings;
use crate::query::{AggregateQuery, Aggregation, Buckets, Chart, Order, Query, QueryResult};
use crate::query::{check_range, downsample};
use crate::reading::Reading;
use crate::store::{Inner, TelemetryStore, blocking};

impl TelemetryStore {
    /// Readings matching `query`. Unreadable blocks are left out and listed
    /// in the result; the query fails only if the store does.
    pub async fn query(&self, query: Query) -> Result<QueryResult, TelemetryError> {
        check_range(query.from_ms, query.to_ms)?;
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.query(&query)).await
    }

    /// Count, min, max, sum, average and last value of one metric per
    /// bucket.
    pub async fn aggregate(&self, query: AggregateQuery) -> Result<Aggregation, TelemetryError> {
        let buckets = Buckets::new(&query)?;
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.aggregate(&query, buckets)).await
    }

    /// One metric of one device downsampled to at most `max_points` points
    /// that keep the series' shape (see [`downsample`]).
    pub async fn chart(
        &self,
        thing: impl Into<String>,
        metric: impl Into<String>,
        from_ms: u64,
        to_ms: u64,
        max_points: usize,
    ) -> Result<Chart, TelemetryError> {
        check_range(from_ms, to_ms)?;
        let (thing, metric) = (thing.into(), metric.into());
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut points = Vec::new();
            let mut unreadable = Vec::new();
            let read = inner.store.telemetry_read()?;
            let range = (from_ms, to_ms);
            inner.scan(
                &read,
                &thing,
                range,
                Some(&metric),
                BlockOrder::Ascending,
                &mut unreadable,
                |_| false,
                |_, block| {
                    for_each_reading(block, range, |_, r| points.push((r.timestamp_ms, r.value)));
                },
            )?;
            // Blocks of one period may overlap in time.
            points.sort_by_key(|p| p.0);
            Ok(Chart {
                points: downsample(&points, max_points),
                unreadable,
            })
        })
        .await
    }
}

/// Calls `f` for each reading of an opened block within `range`.
fn for_each_reading(
    block: &OpenedBlock,
    (from, to): (u64, u64),
    mut f: impl FnMut(&str, &crate::format::PlainReading<'_>),
) {
    for chunk in &block.chunks {
        // Checked when the block was opened.
        let Ok(readings) = decode_readings(&chunk.plain) else {
            continue;
        };
        for r in readings
            .iter()
            .filter(|r| r.timestamp_ms >= from && r.timestamp_ms < to)
        {
            f(&chunk.metric, r);
        }
    }
}

impl Inner {
    fn query(&self, q: &Query) -> Result<QueryResult, TelemetryError> {
        let read = self.store.telemetry_read()?;
        let things = if q.things.is_empty() {
            read.things()?
        } else {
            // A device named twice is read once.
            let mut things = q.things.clone();
            things.sort();
            things.dedup();
            things
        };
        let order = match q.order {
            Order::OldestFirst => BlockOrder::Ascending,
            Order::NewestFirst => BlockOrder::Descending,
        };
        let mut result = QueryResult::default();
        for thing in &things {
            let mut got: Vec<Reading> = Vec::new();
            // With a limit, the walk stops after the period in which it was
            // reached: a later block of that period may hold readings in
            // between, an other period cannot.
            let stop_after: Cell<Option<u64>> = Cell::new(None);
            self.scan(
                &read,
                thing,
                (q.from_ms, q.to_ms),
                q.metric.as_deref(),
                order,
                &mut result.unreadable,
                |key| stop_after.get().is_some_and(|p| p != key.period_start_ms),
                |key, block| {
                    for_each_reading(block, (q.from_ms, q.to_ms), |metric, r| {
                        got.push(Reading {
                            thing: thing.clone(),
                            metric: metric.to_owned(),
                            timestamp_ms: r.timestamp_ms,
                            value: r.value,
                            raw: r.raw.map(<[u8]>::to_vec),
                            signature: r.signature.map(str::to_owned),
                            verified: r.verified,
                        });
                    });
                    if q.limit.is_some_and(|l| got.len() >= l) && stop_after.get().is_none() {
                        stop_after.set(Some(key.period_start_ms));
                    }
                },
            )?;
            result.readings.append(&mut got);
        }
        // Stable, so readings of one time keep device and storage order.
        match q.order {
            Order::OldestFirst => result.readings.sort_by_key(|r| r.timestamp_ms),
            Order::NewestFirst => result
                .readings
                .sort_by_key(|r| std::cmp::Reverse(r.timestamp_ms)),
        }
        if let Some(limit) = q.limit {
            result.readings.truncate(limit);
        }
        Ok(result)
    }

    fn aggregate(
        &self,
        q: &AggregateQuery,
        mut buckets: Buckets,
    ) -> Result<Aggregation, TelemetryError> {
        let read = self.store.telemetry_read()?;
        let mut unreadable = Vec::new();
        let range = (q.from_ms, q.to_ms);
        self.scan(
            &read,
            &q.thing,
            range,
            Some(&q.metric),
            BlockOrder::Ascending,
            &mut unreadable,
            |_| false,
            |_, block| for_each_reading(block, range, |_, r| buckets.add(r.timestamp_ms, r.value)),
        )?;
        Ok(buckets.finish(unreadable))
    }

    /// Opens every block of `thing` overlapping `[from, to)` in `order`,
    /// passing good ones to `on_block` and recording the others in
    /// `unreadable`, until `stop` says so for the next block.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        read: &TelemetryRead,
        thing: &str,
        (from, to): (u64, u64),
        metric: Option<&str>,
        order: BlockOrder,
        unreadable: &mut Vec<Unreadable>,
        stop: impl Fn(&TelemetryBlockKey) -> bool,
        mut on_block: impl FnMut(&TelemetryBlockKey, &OpenedBlock),
    ) -> Result<(), TelemetryError> {
        // A block covers [start, start + period): it overlaps the range if
        // it starts before `to` and less than a period before `from`.
        let periods = from.saturating_sub(self.period_ms - 1)..to;
        let mut shredded: u64 = 0;
        read.blocks(thing, periods, order, |key, stored| {
            if stop(&key) {
                return ControlFlow::Break(());
            }
            if shredded > 0 {
                shredded += 1;
                return ControlFlow::Continue(());
            }
            let location = || BlockLocation {
                thing: key.thing.clone(),
                period_start_ms: key.period_start_ms,
                block: key.block,
            };
            let opened = stored
                .map_err(|e| BlockFailure::Corrupt {
                    chunk: None,
                    reason: format!("stored block does not decode: {e}"),
                })
                .and_then(|b| open_block(self.keys.as_ref(), self.mode, &key, &b, metric));
            match opened {
                Ok(block) => on_block(&key, &block),
                Err(BlockFailure::KeyDestroyed) => shredded = 1,
                Err(BlockFailure::Corrupt { chunk, reason }) => {
                    tracing::error!(location = %location(), ?chunk, %reason, "corrupt telemetry block");
                    unreadable.push(Unreadable::Corrupt {
                        location: location(),
                        chunk,
                        reason,
                    });
                }
                Err(BlockFailure::KeyUnavailable(reason)) => {
                    tracing::warn!(location = %location(), %reason, "telemetry block key unavailable");
                    unreadable.push(Unreadable::KeyUnavailable {
                        location: location(),
                        reason,
                    });
                }
            }
            ControlFlow::Continue(())
        })?;
        if shredded > 0 {
            unreadable.push(Unreadable::Shredded {
                thing: thing.to_owned(),
                blocks: shredded,
            });
        }
        Ok(())
    }
}
