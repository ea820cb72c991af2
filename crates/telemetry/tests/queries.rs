//! Range queries, newest-first listings with limits, every aggregation and
//! chart downsampling.

mod common;

use std::time::Duration;

use civitas_telemetry::{
    AggregateQuery, Bucketing, NewReading, Query, TelemetryError, TelemetryOptions,
};
use common::*;

const MIN: u64 = 60_000;

/// Two hours of one reading a second (value = second index) of `temp`,
/// and a reading a minute of `hum`, in blocks of at most 1000 readings.
async fn two_hours() -> (tempfile::TempDir, Fixture) {
    let dir = temp_dir();
    let options = TelemetryOptions {
        max_block_readings: 1000,
        ..hourly()
    };
    let f = Fixture::open(dir.path(), options).await;
    for chunk in series("lamp", "temp", T0, 7200).chunks(500) {
        f.telemetry.append(chunk.to_vec()).await.unwrap();
    }
    let hum: Vec<_> = (0..120)
        .map(|i| NewReading::new("lamp", "hum", T0 + i * MIN, 50.0 + i as f64))
        .collect();
    f.telemetry.append(hum).await.unwrap();
    (dir, f)
}

#[tokio::test]
async fn range_queries_return_exactly_the_range() {
    let (_dir, f) = two_hours().await;
    let q = Query::thing("lamp")
        .metric("temp")
        .range(T0 + 1_800_000, T0 + 5_400_000);
    let r = f.telemetry.query(q).await.unwrap();
    assert!(r.unreadable.is_empty());
    assert_eq!(r.readings.len(), 3600);
    assert_eq!(r.readings[0].timestamp_ms, T0 + 1_800_000);
    assert_eq!(r.readings[3599].timestamp_ms, T0 + 5_399_000);
    assert!(
        r.readings
            .windows(2)
            .all(|w| w[0].timestamp_ms < w[1].timestamp_ms)
    );

    // A range inside one block, and one between readings.
    let r = f
        .telemetry
        .query(
            Query::thing("lamp")
                .metric("temp")
                .range(T0 + 10_500, T0 + 12_001),
        )
        .await
        .unwrap();
    assert_eq!(values(&r.readings), [11.0, 12.0]);
    let r = f
        .telemetry
        .query(Query::thing("lamp").range(T0 + 500, T0 + 999))
        .await
        .unwrap();
    assert!(r.readings.is_empty());

    // Both metrics when none is named.
    let r = f
        .telemetry
        .query(Query::thing("lamp").range(T0, T0 + MIN))
        .await
        .unwrap();
    assert_eq!(r.readings.len(), 61);

    assert!(matches!(
        f.telemetry.query(Query::thing("lamp").range(T0, T0)).await,
        Err(TelemetryError::InvalidQuery(_))
    ));
}

#[tokio::test]
async fn newest_first_listing_with_limit() {
    let (_dir, f) = two_hours().await;
    let r = f
        .telemetry
        .query(Query::thing("lamp").metric("temp").newest_first().limit(5))
        .await
        .unwrap();
    assert_eq!(
        values(&r.readings),
        [7199.0, 7198.0, 7197.0, 7196.0, 7195.0]
    );

    let r = f
        .telemetry
        .query(Query::thing("lamp").metric("temp").limit(3))
        .await
        .unwrap();
    assert_eq!(values(&r.readings), [0.0, 1.0, 2.0]);

    // A limit reached across several blocks of one period, and then some.
    let r = f
        .telemetry
        .query(
            Query::thing("lamp")
                .metric("temp")
                .range(0, T0 + HOUR)
                .newest_first()
                .limit(2500),
        )
        .await
        .unwrap();
    assert_eq!(r.readings.len(), 2500);
    assert_eq!(r.readings[0].value, 3599.0);
    assert_eq!(r.readings[2499].value, 1100.0);
}

#[tokio::test]
async fn late_readings_land_in_a_new_block_and_still_sort() {
    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    f.telemetry.append(series("a", "m", T0, 10)).await.unwrap();
    // The next hour seals the first block; then a late reading arrives.
    f.telemetry
        .append(series("a", "m", T0 + HOUR, 1))
        .await
        .unwrap();
    f.telemetry
        .append(vec![NewReading::new("a", "m", T0 + 4_500, 99.0)])
        .await
        .unwrap();
    let r = f
        .telemetry
        .query(
            Query::thing("a")
                .range(T0, T0 + HOUR)
                .newest_first()
                .limit(7),
        )
        .await
        .unwrap();
    assert_eq!(
        times(&r.readings),
        [9000, 8000, 7000, 6000, 5000, 4500, 4000].map(|t| T0 + t)
    );
}

#[tokio::test]
async fn queries_merge_devices() {
    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    f.telemetry.append(series("a", "m", T0, 3)).await.unwrap();
    f.telemetry
        .append(series("b", "m", T0 + 500, 3))
        .await
        .unwrap();
    let q = Query {
        things: vec!["b".into(), "a".into(), "b".into()],
        ..Query::all_things()
    };
    let r = f.telemetry.query(q.clone()).await.unwrap();
    let who: Vec<_> = r.readings.iter().map(|r| r.thing.as_str()).collect();
    assert_eq!(who, ["a", "b", "a", "b", "a", "b"]);
    let r = f.telemetry.query(q.newest_first().limit(3)).await.unwrap();
    assert_eq!(times(&r.readings), [T0 + 2500, T0 + 2000, T0 + 1500]);
    assert_eq!(
        f.telemetry
            .query(Query::all_things())
            .await
            .unwrap()
            .readings
            .len(),
        6
    );
}

fn agg(from: u64, to: u64, bucketing: Bucketing) -> AggregateQuery {
    AggregateQuery {
        thing: "lamp".into(),
        metric: "temp".into(),
        from_ms: from,
        to_ms: to,
        bucketing,
    }
}

#[tokio::test]
async fn every_aggregation_per_bucket() {
    let (_dir, f) = two_hours().await;
    // Ten-minute buckets over three hours: 12 full, 6 empty.
    let a = f
        .telemetry
        .aggregate(agg(
            T0,
            T0 + 3 * HOUR,
            Bucketing::Width(Duration::from_secs(600)),
        ))
        .await
        .unwrap();
    assert!(a.unreadable.is_empty());
    assert_eq!(a.bucket_ms, 600_000);
    assert_eq!(a.buckets.len(), 18);
    for (i, b) in a.buckets.iter().enumerate().take(12) {
        let first = (i * 600) as f64;
        assert_eq!(b.start_ms, T0 + i as u64 * 600_000);
        assert_eq!(b.count, 600);
        assert_eq!(b.min, Some(first));
        assert_eq!(b.max, Some(first + 599.0));
        assert_eq!(b.last, Some(first + 599.0));
        assert_eq!(b.sum, (0..600).map(|k| first + k as f64).sum::<f64>());
        assert_eq!(b.avg, Some(first + 299.5));
    }
    for b in &a.buckets[12..] {
        assert_eq!(
            (b.count, b.min, b.max, b.avg, b.last, b.sum),
            (0, None, None, None, None, 0.0)
        );
    }

    // An unaligned start, and `last` as the latest in time, not in storage.
    f.telemetry
        .append(vec![NewReading::new("lamp", "temp", T0 + 30, -1.0)])
        .await
        .unwrap();
    let a = f
        .telemetry
        .aggregate(agg(
            T0 + 1,
            T0 + 2001,
            Bucketing::Width(Duration::from_secs(1)),
        ))
        .await
        .unwrap();
    assert_eq!(a.buckets.len(), 2);
    assert_eq!(a.buckets[0].count, 2);
    assert_eq!(a.buckets[0].min, Some(-1.0));
    assert_eq!(a.buckets[0].last, Some(1.0));
    assert_eq!(a.buckets[1].last, Some(2.0));
}

#[tokio::test]
async fn buckets_for_charts() {
    let (_dir, f) = two_hours().await;
    // One-minute buckets over 24 hours: 1440, the first 120 full.
    let a = f
        .telemetry
        .aggregate(agg(
            T0,
            T0 + 24 * HOUR,
            Bucketing::Width(Duration::from_secs(60)),
        ))
        .await
        .unwrap();
    assert_eq!(a.buckets.len(), 1440);
    assert!(a.buckets[..120].iter().all(|b| b.count == 60));
    assert!(a.buckets[120..].iter().all(|b| b.count == 0));

    // At most 100 buckets over two hours: 72-second buckets.
    let a = f
        .telemetry
        .aggregate(agg(T0, T0 + 2 * HOUR, Bucketing::AtMost(100)))
        .await
        .unwrap();
    assert_eq!(a.bucket_ms, 72_000);
    assert_eq!(a.buckets.len(), 100);
    assert_eq!(a.buckets.iter().map(|b| b.count).sum::<u64>(), 7200);

    let chart = f
        .telemetry
        .chart("lamp", "hum", T0, T0 + 2 * HOUR, 30)
        .await
        .unwrap();
    assert_eq!(chart.points.len(), 30);
    assert_eq!(chart.points[0], (T0, 50.0));
    assert_eq!(chart.points[29], (T0 + 119 * MIN, 169.0));

    for bad in [
        agg(T0, T0 + HOUR, Bucketing::Width(Duration::ZERO)),
        agg(T0, T0 + HOUR, Bucketing::AtMost(0)),
        agg(
            T0,
            T0 + 24 * HOUR,
            Bucketing::Width(Duration::from_millis(100)),
        ),
        agg(T0 + 1, T0, Bucketing::AtMost(10)),
    ] {
        assert!(matches!(
            f.telemetry.aggregate(bad).await,
            Err(TelemetryError::InvalidQuery(_))
        ));
    }
}
