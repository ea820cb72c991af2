//! A writer killed with SIGKILL loses no reading it was told is stored,
//! and every one of them still decrypts after the restart.
//!
//! The test binary plays both parts: run normally, `crash_writer` returns
//! at once; spawned by the parent with `CRASH_WRITER_ENV` set, it appends
//! in a loop and prints every acknowledged reading until it is killed.
#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use civitas_store::{Store, StoreOptions};
use civitas_telemetry::{NewReading, Query, TelemetryOptions};
use common::*;

const CRASH_WRITER_ENV: &str = "CIVITAS_TELEMETRY_CRASH_WRITER";
const ACKS_BEFORE_KILL: usize = 3000;

/// Short periods and small blocks, so that blocks are sealed (by period
/// and by size) and late readings open further blocks while the writer
/// runs.
fn options() -> TelemetryOptions {
    TelemetryOptions {
        period: Duration::from_secs(1),
        seal_grace: Duration::ZERO,
        max_block_readings: 50,
        ..TelemetryOptions::default()
    }
}

/// Reading `n`: its value is `n`, so the parent can tell them apart.
fn reading(n: u64) -> NewReading {
    NewReading::new(format!("dev-{}", n % 3), "m", T0 + n * 37, n as f64)
        .with_raw(n.to_be_bytes().to_vec())
}

fn write_until_killed(dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let f = Fixture::open(dir, options()).await;
        let next = Arc::new(AtomicU64::new(0));
        // A bound, so that an orphaned writer does not run forever.
        let stop_at = Instant::now() + Duration::from_secs(60);
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let telemetry = f.telemetry.clone();
                let next = Arc::clone(&next);
                tokio::spawn(async move {
                    while Instant::now() < stop_at {
                        let n = 1 + (w % 4);
                        let first = next.fetch_add(n, Ordering::Relaxed);
                        let batch: Vec<_> = (first..first + n).map(reading).collect();
                        telemetry.append(batch).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        for k in first..first + n {
                            writeln!(out, "ack {k}").unwrap();
                        }
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
    });
}

#[test]
fn crash_writer() {
    if let Some(dir) = std::env::var_os(CRASH_WRITER_ENV) {
        write_until_killed(Path::new(&dir));
    }
}

#[tokio::test]
async fn acknowledged_readings_survive_sigkill_and_decrypt() {
    let dir = temp_dir();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_writer", "--nocapture", "--test-threads=1"])
        .env(CRASH_WRITER_ENV, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let mut acked = BTreeSet::new();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            acked.insert(n.parse::<u64>().unwrap());
            if acked.len() >= ACKS_BEFORE_KILL {
                break;
            }
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        acked.len() >= ACKS_BEFORE_KILL,
        "writer stopped early: {status:?}"
    );
    assert_eq!(
        status.signal(),
        Some(9),
        "writer was not killed: {status:?}"
    );

    // The kill left blocks unsealed (every device had one open)...
    let store = Store::open(&db_path(dir.path()), StoreOptions::default()).unwrap();
    let unsealed = store.telemetry_read().unwrap().unsealed_blocks().unwrap();
    assert!(!unsealed.is_empty());
    store.close().unwrap();

    // ...which opening seals.
    let f = Fixture::open(dir.path(), options()).await;
    let r = f.telemetry.query(Query::all_things()).await.unwrap();
    assert!(r.unreadable.is_empty(), "{:?}", r.unreadable);
    assert!(
        f.store
            .telemetry_read()
            .unwrap()
            .unsealed_blocks()
            .unwrap()
            .is_empty()
    );
    let mut stored = BTreeSet::new();
    for reading in &r.readings {
        let n = reading.value as u64;
        assert_eq!(reading.thing, format!("dev-{}", n % 3));
        assert_eq!(reading.timestamp_ms, T0 + n * 37);
        assert_eq!(reading.raw.as_deref(), Some(&n.to_be_bytes()[..]));
        assert!(stored.insert(n), "reading {n} stored twice");
    }
    let missing: Vec<&u64> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}
