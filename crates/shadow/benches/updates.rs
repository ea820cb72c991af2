//! Shadow updates per second through `handle_mqtt` (parse, merge, delta,
//! store, reply documents), on the in-memory store and on the redb store,
//! from 1 and from 16 threads each updating its own shadow. On redb every
//! update waits until it is durable; concurrent ones share fsyncs through
//! the group commit.
//!
//! `cargo bench -p civitas-shadow` runs each case for 3 s (override with
//! `CIVITAS_BENCH_SECS`); run as a test it only checks that it works.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use civitas_shadow::{MemoryShadowStore, Requester, ShadowService, ShadowStore, SystemClock};
use civitas_store::{Store, StoreOptions};

/// One thread's loop: a device reporting, every tenth update an app
/// changing desired, so that deltas come and go.
fn updater(shadows: &ShadowService, thread: usize, deadline: Instant, done: &AtomicU64) {
    let requester = Requester::new(format!("device-{thread}"));
    let topic = format!("$aws/things/device-{thread}/shadow/update");
    let mut n = 0u64;
    while Instant::now() < deadline {
        let payload = if n.is_multiple_of(10) {
            format!(
                r#"{{"state":{{"desired":{{"setpoint":{}}}}},"clientToken":"app-{n}"}}"#,
                n % 7
            )
        } else {
            format!(
                r#"{{"state":{{"reported":{{"temp":{},"humidity":{},"setpoint":{},"fw":"1.4.2","leds":[1,0,1]}}}},"clientToken":"dev-{n}"}}"#,
                20 + n % 5,
                40 + n % 9,
                n % 7
            )
        };
        let replies = shadows
            .handle_mqtt(&topic, payload.as_bytes(), &requester)
            .expect("a shadow topic");
        assert!(
            replies[0].topic.ends_with("/accepted"),
            "{}",
            String::from_utf8_lossy(&replies[0].payload)
        );
        done.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
}

fn run(label: &str, store: impl ShadowStore + 'static, threads: usize, duration: Duration) {
    let shadows = ShadowService::new(store, SystemClock);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    std::thread::scope(|s| {
        for t in 0..threads {
            let (shadows, done) = (&shadows, &done);
            s.spawn(move || updater(shadows, t, deadline, done));
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "{label:<7} {threads:>3} thread(s): {:>9.0} updates/s ({n} in {elapsed:.2} s)",
        n as f64 / elapsed
    );
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let secs = std::env::var("CIVITAS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(if benching { 3.0 } else { 0.2 });
    let duration = Duration::from_secs_f64(secs);
    println!("shadow updates through handle_mqtt, each answered once stored");
    for threads in [1, 16] {
        run("memory", MemoryShadowStore::new(), threads, duration);
    }
    for threads in [1, 16] {
        let dir = tempfile::Builder::new()
            .prefix("shadow-bench")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir");
        let store =
            Store::open(&dir.path().join("bench.redb"), StoreOptions::default()).expect("store");
        run("redb", store.clone(), threads, duration);
        let stats = store.stats();
        println!("    ({:.1} updates per fsync)", stats.ops_per_commit());
        store.close().expect("close store");
    }
}
