//! Seal/open throughput for 200-byte telemetry readings, two ways:
//! a fresh data key per blob (`KeyRing::encrypt` / `decrypt`), and one data
//! key per block of 1000 readings (`generate_data_key` once, then a
//! `RecordCipher` per block), which is how the telemetry store seals.
//!
//! Run with `cargo bench -p civitas-kms --bench envelope`.

use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};

use civitas_kms::{EncryptionContext, KeyId, KeyRing, RootKey};
use zeroize::Zeroizing;

const PAYLOAD: usize = 200;
const BLOBS: usize = 50_000;
const BLOCK: usize = 1_000;
const BLOCKS: usize = 100;

fn main() {
    let mut ring = KeyRing::new(RootKey::from_bytes(Zeroizing::new([7; 32])));
    let key = KeyId::new("telemetry").expect("valid key id");
    ring.create_key(&key, UNIX_EPOCH + Duration::from_secs(1))
        .expect("create key");
    let ctx = EncryptionContext::from([("device", "lamp-1"), ("stream", "telemetry")]);
    let reading = [0x5a_u8; PAYLOAD];

    // One data key per blob.
    let start = Instant::now();
    let blobs: Vec<Vec<u8>> = (0..BLOBS)
        .map(|_| ring.encrypt(&key, black_box(&reading), &ctx).expect("seal"))
        .collect();
    let seal = start.elapsed();
    let start = Instant::now();
    for blob in &blobs {
        black_box(ring.decrypt(black_box(blob), &ctx).expect("open"));
    }
    let open = start.elapsed();
    report("data key per blob", BLOBS, seal, open, blobs[0].len());

    // One data key per block of 1000 readings.
    let start = Instant::now();
    let blocks: Vec<(Vec<u8>, Vec<Vec<u8>>)> = (0..BLOCKS)
        .map(|_| {
            let dk = ring.generate_data_key(&key, &ctx).expect("data key");
            let cipher = dk.record_cipher().expect("cipher");
            let records = (0..BLOCK)
                .map(|i| {
                    let aad = (i as u64).to_be_bytes();
                    cipher.seal(black_box(&reading), &aad).expect("seal")
                })
                .collect();
            (dk.wrapped, records)
        })
        .collect();
    let seal = start.elapsed();
    let start = Instant::now();
    for (wrapped, records) in &blocks {
        let dk = ring.decrypt_data_key(wrapped, &ctx).expect("unwrap");
        let cipher = dk.record_cipher().expect("cipher");
        for (i, record) in records.iter().enumerate() {
            let aad = (i as u64).to_be_bytes();
            black_box(cipher.open(black_box(record), &aad).expect("open"));
        }
    }
    let open = start.elapsed();
    report(
        "data key per 1000-reading block",
        BLOCKS * BLOCK,
        seal,
        open,
        blocks[0].1[0].len(),
    );
}

fn report(name: &str, n: usize, seal: Duration, open: Duration, sealed_len: usize) {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{name}: {PAYLOAD}-byte payloads, {n} of them: seal {:.0}/s, open {:.0}/s, {sealed_len} bytes sealed",
        rate(seal),
        rate(open)
    );
}
