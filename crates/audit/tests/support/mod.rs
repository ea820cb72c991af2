//! Shared helpers: a clock the test moves by hand, a signer, events, and
//! line-level editing of a log file the way an intruder would.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use civitas_audit::{
    AuditLog, AuditOptions, CheckpointSigner, Clock, Digest, Ed25519Signer, Event, Outcome, Record,
};

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new() -> Arc<ManualClock> {
        // 2024-01-01T00:00:00Z
        Arc::new(ManualClock(AtomicU64::new(1_704_067_200_000)))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst))
    }
}

pub fn signer() -> Arc<dyn CheckpointSigner> {
    Arc::new(Ed25519Signer::generate().unwrap().0)
}

pub fn options(every: u64) -> AuditOptions {
    AuditOptions {
        checkpoint_every: every,
        ..AuditOptions::default()
    }
}

pub fn open(path: &Path, signer: &Arc<dyn CheckpointSigner>, every: u64) -> AuditLog {
    AuditLog::open(path, Arc::clone(signer), ManualClock::new(), options(every)).unwrap()
}

/// A varied event: every third a denial by an operator, the rest device
/// connections.
pub fn event(i: u64) -> Event {
    if i.is_multiple_of(3) {
        Event::new(
            "operator:alice",
            "policy.attach",
            format!("policy-{i}"),
            Outcome::Denied,
        )
        .detail("reason", "not an administrator")
    } else {
        Event::new(
            format!("device:lamp-{i}"),
            "device.connect",
            format!("lamp-{i}"),
            Outcome::Success,
        )
        .detail("i", i)
        .detail("addr", "192.0.2.7:50112")
    }
}

pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

pub fn record(line: &str) -> Record {
    Record::from_line(line).unwrap()
}

/// The line for `r` with its hash recomputed.
pub fn rehash(mut r: Record) -> String {
    r.hash = r.compute_hash().unwrap();
    r.to_line().unwrap()
}

/// Relinks every record from index `from` on to its predecessor and
/// recomputes its hash: what someone who rewrites history does to make
/// the chain consistent again.
pub fn rechain(lines: &mut [String], from: usize) {
    for i in from..lines.len() {
        let prev = if i == 0 {
            Digest::ZERO
        } else {
            record(&lines[i - 1]).hash
        };
        let mut r = record(&lines[i]);
        r.prev = prev;
        lines[i] = rehash(r);
    }
}
