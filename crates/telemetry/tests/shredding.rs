//! Shredding one device makes its telemetry unreadable, and only its.

mod common;

use civitas_kms::{KeyId, KeyState};
use civitas_telemetry::{NewReading, Query, TelemetryError, Unreadable};
use common::*;

#[tokio::test]
async fn shredding_one_device_leaves_another_readable() {
    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    for thing in ["lamp-1", "lamp-2"] {
        f.telemetry.append(series(thing, "m", T0, 5)).await.unwrap();
        f.telemetry
            .append(series(thing, "m", T0 + HOUR, 5))
            .await
            .unwrap();
        f.telemetry
            .append(series(thing, "m", T0 + 2 * HOUR, 5))
            .await
            .unwrap();
    }
    // Two sealed blocks and one open block each.
    assert!(f.telemetry.shred("lamp-1").await.unwrap());

    let r = f.telemetry.query(Query::all_things()).await.unwrap();
    assert_eq!(r.readings.len(), 15);
    assert!(r.readings.iter().all(|r| r.thing == "lamp-2"));
    assert_eq!(
        r.unreadable,
        [Unreadable::Shredded {
            thing: "lamp-1".into(),
            blocks: 3
        }]
    );
    let (got, unreadable) = f.all("lamp-1").await;
    assert!(got.is_empty());
    assert_eq!(unreadable.len(), 1);

    // No new telemetry for a shredded device.
    assert!(matches!(
        f.telemetry.append(series("lamp-1", "m", T0 + 3 * HOUR, 1)).await,
        Err(TelemetryError::KeyDestroyed { thing }) if thing == "lamp-1"
    ));
    // Appends of a batch mixing devices are refused as a whole.
    let mixed = vec![
        NewReading::new("lamp-2", "m", T0 + 3 * HOUR, 1.0),
        NewReading::new("lamp-1", "m", T0 + 3 * HOUR, 1.0),
    ];
    assert!(f.telemetry.append(mixed).await.is_err());
    assert_eq!(f.all("lamp-2").await.0.len(), 15);
    // Shredding again, or a device that never had telemetry.
    assert!(!f.telemetry.shred("lamp-1").await.unwrap());
    assert!(!f.telemetry.shred("never-seen").await.unwrap());

    // The destruction is in the ring file: it survives a restart, and the
    // unsealed block found at open stays as it is.
    f.close();
    let f = Fixture::open(dir.path(), hourly()).await;
    let info = f
        .ring
        .read()
        .unwrap()
        .describe(&KeyId::new("device/lamp-1").unwrap())
        .unwrap();
    assert_eq!(info.state, KeyState::Destroyed);
    let r = f.telemetry.query(Query::all_things()).await.unwrap();
    assert_eq!(r.readings.len(), 15);
    assert_eq!(
        r.unreadable,
        [Unreadable::Shredded {
            thing: "lamp-1".into(),
            blocks: 3
        }]
    );

    // Retention can still drop the rows.
    f.telemetry.drop_before("lamp-1", u64::MAX).await.unwrap();
    let r = f.telemetry.query(Query::all_things()).await.unwrap();
    assert!(r.unreadable.is_empty());
}
