//! Telemetry store throughput and query time.
//!
//! 1. Durable appends of 200-byte readings (each with a 183-byte raw
//!    message: 200 bytes in the block) from 4 concurrent writers, in
//!    batches of 250 readings spread over 10 devices, one reading a second
//!    per device so periods roll over and blocks are sealed as they go:
//!    sealed (AES-256-GCM under per-block KMS data keys) against the same
//!    code path writing unsealed blocks. Runs alternate to share the
//!    disk's moods; the median of the per-round ratios is reported, with
//!    the CPU time per reading of each mode. Device keys are
//!    created before timing: they are a once-per-device cost.
//! 2. A 24-hour chart of one device at one reading a second (86 400
//!    readings): per-minute aggregation (1440 buckets), the same as a
//!    300-point downsampled series, and a newest-first listing of 100.
//!
//! Run with `cargo bench -p civitas-telemetry --bench telemetry`.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use civitas_kms::{KeyRing, RootKey};
use civitas_store::{Store, StoreOptions};
use civitas_telemetry::{
    AggregateQuery, Bucketing, LocalKeys, NewReading, Query, TelemetryOptions, TelemetryStore,
};
use zeroize::Zeroizing;

const T0: u64 = 1_699_999_200_000;
const DEVICES: u64 = 10;
const WRITERS: u64 = 4;
const BATCH: u64 = 250;
const BATCHES_PER_WRITER: u64 = 200;
const RAW_LEN: usize = 183;
const ROUNDS: usize = 7;

async fn open(dir: &Path, unsealed: bool) -> (Store, TelemetryStore) {
    let ring = KeyRing::new(RootKey::from_bytes(Zeroizing::new([7; 32])));
    let keys = Arc::new(LocalKeys::new(
        Arc::new(RwLock::new(ring)),
        Some(dir.join("keyring.sealed")),
    ));
    let store = Store::open(&dir.join("state.redb"), StoreOptions::default()).expect("store");
    let options = TelemetryOptions {
        unsealed_baseline: unsealed,
        ..TelemetryOptions::default()
    };
    let telemetry = TelemetryStore::open(store.clone(), keys, options)
        .await
        .expect("telemetry");
    (store, telemetry)
}

/// CPU time (user + system) of the whole process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Readings per second of one write run, and CPU µs per reading.
async fn write_run(unsealed: bool) -> (f64, f64) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let (store, telemetry) = open(dir.path(), unsealed).await;
    let raw = vec![0x5a_u8; RAW_LEN];
    // Device keys are made once per device, not per reading: make them
    // (and the first blocks) before the clock starts, in both modes.
    let warm_up = (0..DEVICES)
        .map(|d| NewReading::new(format!("lamp-{d}"), "power", T0, 0.0))
        .collect();
    telemetry.append(warm_up).await.expect("warm-up");
    let start = Instant::now();
    let cpu = cpu_time();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let telemetry = telemetry.clone();
            let raw = raw.clone();
            tokio::spawn(async move {
                for b in 0..BATCHES_PER_WRITER {
                    let batch = (0..BATCH)
                        .map(|i| {
                            let n = (b * WRITERS + w) * BATCH + i;
                            let device = n % DEVICES;
                            NewReading::new(
                                format!("lamp-{device}"),
                                "power",
                                T0 + (n / DEVICES) * 1000,
                                n as f64,
                            )
                            .with_raw(raw.clone())
                        })
                        .collect();
                    telemetry.append(batch).await.expect("append");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let elapsed = start.elapsed();
    let cpu = cpu_time() - cpu;
    telemetry.flush().await.expect("flush");
    store.close().expect("close");
    let n = (WRITERS * BATCHES_PER_WRITER * BATCH) as f64;
    (n / elapsed.as_secs_f64(), cpu.as_secs_f64() * 1e6 / n)
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

async fn timed<T>(runs: usize, mut f: impl AsyncFnMut() -> T) -> Duration {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        std::hint::black_box(f().await);
        times.push(start.elapsed());
    }
    median(times)
}

async fn query_runs(raw_len: Option<usize>) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let (store, telemetry) = open(dir.path(), false).await;
    let raw = raw_len.map(|n| vec![0x5a_u8; n]);
    for chunk in 0..(86_400 / 3600) {
        let batch = (0..3600u64)
            .map(|i| {
                let s = chunk * 3600 + i;
                let r = NewReading::new("lamp-1", "power", T0 + s * 1000, (s % 600) as f64);
                match &raw {
                    Some(raw) => r.with_raw(raw.clone()),
                    None => r,
                }
            })
            .collect();
        telemetry.append(batch).await.expect("append");
    }
    telemetry.flush().await.expect("flush");
    let day = T0 + 86_400_000;
    let agg = AggregateQuery {
        thing: "lamp-1".into(),
        metric: "power".into(),
        from_ms: T0,
        to_ms: day,
        bucketing: Bucketing::Width(Duration::from_secs(60)),
    };
    let a = telemetry.aggregate(agg.clone()).await.expect("aggregate");
    assert_eq!(a.buckets.len(), 1440);
    assert_eq!(a.buckets.iter().map(|b| b.count).sum::<u64>(), 86_400);
    let aggregate = timed(5, async || telemetry.aggregate(agg.clone()).await).await;
    let chart = timed(5, async || {
        telemetry.chart("lamp-1", "power", T0, day, 300).await
    })
    .await;
    let latest = timed(5, async || {
        telemetry
            .query(Query::thing("lamp-1").newest_first().limit(100))
            .await
    })
    .await;
    let label = match raw_len {
        Some(n) => format!("readings with a {n}-byte raw message"),
        None => "value-only readings".to_owned(),
    };
    println!("24 h of one device at 1 reading/s (86 400 {label}):");
    println!(
        "  1-minute aggregation, 1440 buckets: {:>7.1} ms",
        ms(aggregate)
    );
    println!(
        "  LTTB chart, 300 points:             {:>7.1} ms",
        ms(chart)
    );
    println!(
        "  newest 100 readings:                {:>7.1} ms",
        ms(latest)
    );
    store.close().expect("close");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let total = WRITERS * BATCHES_PER_WRITER * BATCH;
        println!(
            "durable appends: {total} readings of 200 bytes, {WRITERS} writers, batches of {BATCH}, {DEVICES} devices"
        );
        let (mut ratios, mut sealed, mut plain, mut cpu) = (vec![], vec![], vec![], vec![]);
        for round in 0..ROUNDS {
            // Alternate which mode goes first, so neither always inherits
            // the other's disk state; compare within a round, where both
            // saw the same machine.
            let ((s, s_cpu), (p, p_cpu)) = if round % 2 == 0 {
                let s = write_run(false).await;
                (s, write_run(true).await)
            } else {
                let p = write_run(true).await;
                (write_run(false).await, p)
            };
            println!(
                "  round {round}: sealed {s:>7.0}/s ({s_cpu:.2} CPU µs each)   unsealed {p:>7.0}/s ({p_cpu:.2} CPU µs each)   ratio {:.3}",
                s / p
            );
            ratios.push(s / p);
            sealed.push(s);
            plain.push(p);
            cpu.push(s_cpu - p_cpu);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let ratio = median(ratios);
        println!(
            "  median: sealed {:.0} readings/s, unsealed {:.0} readings/s; sealed/unsealed throughput {ratio:.3} \
             (encryption costs {:.1}%), {:.2} CPU µs more per reading",
            median(sealed),
            median(plain),
            (1.0 - ratio) * 100.0,
            median(cpu),
        );
        query_runs(None).await;
        query_runs(Some(183)).await;
    });
}
