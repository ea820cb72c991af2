//! Readings come back exactly as stored, across block limits, period ends
//! and restarts.

mod common;

use std::ops::ControlFlow;

use civitas_kms::{KeyId, KeyRing};
use civitas_store::BlockOrder;
use civitas_telemetry::{NewReading, Query, TelemetryError, TelemetryOptions};
use common::*;

/// (period start, block, sealed) of every block of `thing`.
fn blocks(f: &Fixture, thing: &str) -> Vec<(u64, u32, bool)> {
    let read = f.store.telemetry_read().unwrap();
    let mut out = Vec::new();
    read.blocks(thing, 0..u64::MAX, BlockOrder::Ascending, |k, b| {
        out.push((k.period_start_ms, k.block, b.unwrap().is_sealed()));
        ControlFlow::Continue(())
    })
    .unwrap();
    out
}

#[tokio::test]
async fn readings_round_trip_with_raw_messages_and_metrics() {
    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    let mut batch = vec![
        NewReading::new("lamp-1", "temperature", T0 + 5, 21.5).with_raw(&b"{\"t\":21.5}"[..]),
        NewReading::new("lamp-1", "humidity", T0 + 5, 40.0),
        NewReading::new("lamp-1", "temperature", T0 + 1, -3.25),
        NewReading::new("lamp-2", "temperature", T0 + 2, 1e300),
    ];
    batch.push(NewReading::new("lamp-1", "temperature", T0 + 9, 0.0).with_raw(Vec::new()));
    f.telemetry.append(batch.clone()).await.unwrap();

    let (got, unreadable) = f.all("lamp-1").await;
    assert!(unreadable.is_empty());
    assert_eq!(times(&got), [T0 + 1, T0 + 5, T0 + 5, T0 + 9]);
    let first = &got[0];
    assert_eq!(
        (first.thing.as_str(), first.metric.as_str(), first.value),
        ("lamp-1", "temperature", -3.25)
    );
    assert_eq!(first.raw, None);
    assert!(!first.verified && first.signature.is_none());
    let with_raw = got.iter().find(|r| r.value == 21.5).unwrap();
    assert_eq!(with_raw.raw.as_deref(), Some(&b"{\"t\":21.5}"[..]));
    assert_eq!(got[3].raw.as_deref(), Some(&b""[..]));

    let humidity = f
        .telemetry
        .query(Query::thing("lamp-1").metric("humidity"))
        .await
        .unwrap();
    assert_eq!(values(&humidity.readings), [40.0]);

    let everyone = f.telemetry.query(Query::all_things()).await.unwrap();
    assert_eq!(everyone.readings.len(), 5);
    assert_eq!(everyone.readings[1].thing, "lamp-2");
    assert_eq!(everyone.readings[1].value, 1e300);

    // The device keys were created on first use and are in the ring file.
    let ring = KeyRing::load(&ring_path(dir.path()), root()).unwrap();
    for thing in ["lamp-1", "lamp-2"] {
        ring.describe(&KeyId::new(format!("device/{thing}")).unwrap())
            .unwrap();
    }
}

#[tokio::test]
async fn restart_continues_with_a_new_block_and_keeps_everything() {
    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    f.telemetry
        .append(series("lamp", "w", T0, 10))
        .await
        .unwrap();
    assert_eq!(blocks(&f, "lamp"), [(T0, 0, false)]);
    f.close();

    // The block left unsealed is sealed at open; new readings of the same
    // period go to the next block.
    let f = Fixture::open(dir.path(), hourly()).await;
    assert_eq!(blocks(&f, "lamp"), [(T0, 0, true)]);
    f.telemetry
        .append(series("lamp", "w", T0 + 10_000, 5))
        .await
        .unwrap();
    assert_eq!(blocks(&f, "lamp"), [(T0, 0, true), (T0, 1, false)]);
    assert_eq!(f.all("lamp").await.0.len(), 15);
    assert_eq!(f.telemetry.flush().await.unwrap(), 1);
    f.close();

    let f = Fixture::open(dir.path(), hourly()).await;
    assert_eq!(blocks(&f, "lamp"), [(T0, 0, true), (T0, 1, true)]);
    let (got, unreadable) = f.all("lamp").await;
    assert!(unreadable.is_empty());
    assert_eq!(
        values(&got),
        (0..10).chain(0..5).map(f64::from).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn blocks_are_sealed_once_their_period_is_over() {
    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    f.telemetry.append(series("a", "m", T0, 3)).await.unwrap();
    f.telemetry.append(series("b", "m", T0, 3)).await.unwrap();
    // A reading of the next hour seals the device's previous block (grace 0).
    f.telemetry
        .append(series("a", "m", T0 + HOUR, 1))
        .await
        .unwrap();
    assert_eq!(blocks(&f, "a"), [(T0, 0, true), (T0 + HOUR, 0, false)]);
    assert_eq!(blocks(&f, "b"), [(T0, 0, false)]);
    // A quiet device's block is sealed by the periodic check.
    assert_eq!(f.telemetry.seal_due(T0 + HOUR).await.unwrap(), 1);
    assert_eq!(blocks(&f, "b"), [(T0, 0, true)]);
    assert_eq!(f.telemetry.seal_due(T0 + HOUR).await.unwrap(), 0);
    assert_eq!(f.telemetry.seal_due(T0 + 2 * HOUR).await.unwrap(), 1);
    assert_eq!(f.all("a").await.0.len(), 4);
}

#[tokio::test]
async fn full_blocks_give_way_to_the_next() {
    let dir = temp_dir();
    let options = TelemetryOptions {
        max_block_readings: 100,
        ..hourly()
    };
    let f = Fixture::open(dir.path(), options).await;
    f.telemetry.append(series("a", "m", T0, 250)).await.unwrap();
    assert_eq!(
        blocks(&f, "a"),
        [(T0, 0, true), (T0, 1, true), (T0, 2, false)]
    );
    let (got, _) = f.all("a").await;
    assert_eq!(values(&got), (0..250).map(f64::from).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_invalid_reading_refuses_the_whole_batch() {
    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    for bad in [
        NewReading::new("a", "m", T0, f64::NAN),
        NewReading::new("a", "m", T0, f64::INFINITY),
        NewReading::new("a", "", T0, 1.0),
        NewReading::new("a", "x".repeat(256), T0, 1.0),
        NewReading::new("sp ace", "m", T0, 1.0),
        NewReading::new("", "m", T0, 1.0),
        NewReading::new("a", "m", T0, 1.0).with_raw(vec![0; (1 << 20) + 1]),
    ] {
        let batch = vec![NewReading::new("a", "m", T0, 1.0), bad];
        assert!(matches!(
            f.telemetry.append(batch).await,
            Err(TelemetryError::InvalidReading { .. })
        ));
    }
    assert!(f.all("a").await.0.is_empty());
    assert!(
        f.store
            .telemetry_read()
            .unwrap()
            .things()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_period_cannot_change_once_telemetry_is_stored() {
    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    f.close();
    let other = TelemetryOptions {
        period: std::time::Duration::from_secs(60),
        ..hourly()
    };
    assert!(matches!(
        Fixture::try_open(dir.path(), other).await,
        Err(TelemetryError::PeriodMismatch {
            stored_ms: 3_600_000,
            configured_ms: 60_000
        })
    ));
    let too_short = TelemetryOptions {
        period: std::time::Duration::from_millis(999),
        ..hourly()
    };
    let dir = temp_dir();
    assert!(matches!(
        Fixture::try_open(dir.path(), too_short).await,
        Err(TelemetryError::InvalidOptions(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_new_devices_has_every_key_in_the_ring_file_when_their_appends_return() {
    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    // Concurrent first readings: their keys are created while saves of
    // the ring run, and saves are shared, yet none may report success
    // before the file holds its key.
    let mut appends = tokio::task::JoinSet::new();
    for i in 0..64 {
        let telemetry = f.telemetry.clone();
        appends.spawn(async move {
            telemetry
                .append(series(&format!("meter-{i}"), "kwh", T0, 1))
                .await
        });
    }
    while let Some(done) = appends.join_next().await {
        done.unwrap().unwrap();
    }
    let ring = KeyRing::load(&ring_path(dir.path()), root()).unwrap();
    for i in 0..64 {
        ring.describe(&KeyId::new(format!("device/meter-{i}")).unwrap())
            .unwrap();
    }
}
