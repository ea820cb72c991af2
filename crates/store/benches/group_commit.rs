//! Group commit throughput: 200-byte messages from 1, 16 and 256
//! concurrent committers, each waiting for durability before its next op.
//!
//! `cargo bench -p civitas-store` runs each case for 3 s (override with
//! `CIVITAS_BENCH_SECS`); run as a test it only checks that it works.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use civitas_mqtt::{PublishProperties, QoS};
use civitas_store::{Op, OutboundMessage, OutboundState, Store, StoreOptions, StoredMessage};

fn message(payload: Bytes) -> OutboundMessage {
    OutboundMessage {
        message: StoredMessage {
            topic: "bench/telemetry".into(),
            payload,
            qos: QoS::AtLeastOnce,
            retain: false,
            expires_at_ms: None,
            properties: PublishProperties::default(),
            received_at_ms: 0,
        },
        packet_id: None,
        state: OutboundState::Queued,
        qos: QoS::AtLeastOnce,
        subscription_identifiers: Vec::new(),
    }
}

fn run(rt: &tokio::runtime::Runtime, committers: usize, duration: Duration) {
    let dir = tempfile::Builder::new()
        .prefix("group-commit-bench")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let store =
        Store::open(&dir.path().join("bench.redb"), StoreOptions::default()).expect("open store");
    let payload = Bytes::from(vec![0xa5u8; 200]);
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    rt.block_on(async {
        let mut tasks = Vec::with_capacity(committers);
        for c in 0..committers {
            let store = store.clone();
            let acked = Arc::clone(&acked);
            let message = message(payload.clone());
            tasks.push(tokio::spawn(async move {
                let client_id = format!("client-{c}");
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    let op = Op::PutOutbound {
                        client_id: client_id.clone(),
                        seq,
                        message: message.clone(),
                    };
                    store.commit(vec![op]).await.expect("commit");
                    acked.fetch_add(1, Ordering::Relaxed);
                    seq += 1;
                }
            }));
        }
        for t in tasks {
            t.await.expect("committer task");
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let stats = store.stats();
    store.close().expect("close store");
    let ops = acked.load(Ordering::Relaxed);
    println!(
        "committers {committers:>4}: {:>9.0} ops/s, {:>7.1} ops/commit, {:>6.0} commits/s ({ops} ops in {elapsed:.2} s)",
        ops as f64 / elapsed,
        stats.ops_per_commit(),
        stats.commits as f64 / elapsed,
    );
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let secs = std::env::var("CIVITAS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(if benching { 3.0 } else { 0.2 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("group commit, 200-byte payloads, each committer waits for durability");
    for committers in [1, 16, 256] {
        run(&rt, committers, Duration::from_secs_f64(secs));
    }
}
