//! Retention per thing type drops whole expired blocks.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use civitas_telemetry::{Query, RetentionPolicy};
use common::*;

#[tokio::test]
async fn expired_blocks_are_dropped_whole_per_thing_type() {
    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    for thing in ["sensor-1", "camera-1", "untyped"] {
        for hour in 0..5 {
            f.telemetry
                .append(series(thing, "m", T0 + hour * HOUR, 3))
                .await
                .unwrap();
        }
    }
    let policy = RetentionPolicy {
        default: None,
        by_type: BTreeMap::from([
            ("sensor".to_owned(), Duration::from_secs(2 * 3600)),
            ("camera".to_owned(), Duration::from_secs(30 * 60)),
        ]),
    };
    let type_of = |thing: &str| thing.split_once('-').map(|(t, _)| t.to_owned());
    let now = T0 + 5 * HOUR;
    let report = f.telemetry.retention(&policy, type_of, now).await.unwrap();
    assert_eq!(report.things, 3);
    assert_eq!(
        report.trimmed,
        [
            ("camera-1".to_owned(), T0 + 3 * HOUR + HOUR / 2 + 1),
            ("sensor-1".to_owned(), T0 + 2 * HOUR + 1),
        ]
    );

    let first_hours = |readings: &[civitas_telemetry::Reading]| {
        let mut h: Vec<u64> = readings
            .iter()
            .map(|r| (r.timestamp_ms - T0) / HOUR)
            .collect();
        h.dedup();
        h
    };
    // Sensors keep 2 h: of the hours ending by T0+3h, all go.
    assert_eq!(first_hours(&f.all("sensor-1").await.0), [3, 4]);
    // Cameras keep 30 min: hour 4 ends after T0+4.5h and stays whole,
    // although half of it is older than 30 min.
    assert_eq!(first_hours(&f.all("camera-1").await.0), [4]);
    assert_eq!(first_hours(&f.all("untyped").await.0), [0, 1, 2, 3, 4]);

    // A default applies to devices without a typed entry.
    let policy = RetentionPolicy {
        default: Some(Duration::from_secs(3600)),
        by_type: BTreeMap::new(),
    };
    f.telemetry.retention(&policy, |_| None, now).await.unwrap();
    assert_eq!(first_hours(&f.all("untyped").await.0), [4]);
    let r = f.telemetry.query(Query::all_things()).await.unwrap();
    assert_eq!(r.readings.len(), 9);

    // New readings after a drop, in a dropped period, still work.
    f.telemetry
        .append(series("sensor-1", "m", T0, 1))
        .await
        .unwrap();
    assert_eq!(first_hours(&f.all("sensor-1").await.0), [0, 4]);
}
