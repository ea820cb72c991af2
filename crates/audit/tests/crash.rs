//! SIGKILL in the middle of a stream of appends: after reopening, every
//! record the writer acknowledged is there and the chain verifies.
//!
//! The child is this test binary run again with `CRASH_CHILD_DIR` set; it
//! appends from many tasks at once and prints `ack <seq>` for each record
//! once `append` has resolved. The checkpoint key is sealed by the KMS, as
//! in production.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::SystemTime;

use civitas_audit::{
    AuditLog, AuditOptions, Ed25519Signer, Query, SystemClock, load_or_create_signer, log_path,
    query, sealed_key_path, verify,
};
use civitas_kms::{KeyId, KeyRing, RootKey};

const CHILD_ENV: &str = "CRASH_CHILD_DIR";

fn kms(dir: &Path) -> KeyRing {
    let key_file = dir.join("root.key");
    let ring_file = dir.join("keyring.sealed");
    if ring_file.exists() {
        return KeyRing::load(&ring_file, RootKey::load_key_file(&key_file).unwrap()).unwrap();
    }
    let mut ring = KeyRing::new(RootKey::create_key_file(&key_file).unwrap());
    ring.create_key(&KeyId::new("audit").unwrap(), SystemTime::now())
        .unwrap();
    ring.save(&ring_file).unwrap();
    ring
}

fn checkpoint_signer(dir: &Path) -> Ed25519Signer {
    let ring = kms(dir);
    load_or_create_signer(&sealed_key_path(dir), &ring, &KeyId::new("audit").unwrap()).unwrap()
}

fn options() -> AuditOptions {
    AuditOptions {
        checkpoint_every: 50,
        ..AuditOptions::default()
    }
}

/// The child's body; does nothing when run as an ordinary test.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let signer = Arc::new(checkpoint_signer(dir));
    let log = AuditLog::open(&log_path(dir), signer, Arc::new(SystemClock), options()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let sink = log.sink();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let seq = sink
                        .append(support::event(t * 1_000_000 + i))
                        .await
                        .unwrap();
                    println!("ack {seq}");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let signer = Arc::new(checkpoint_signer(data));

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if let Some(seq) = line.unwrap().strip_prefix("ack ") {
            acked.push(seq.parse::<u64>().unwrap());
            if acked.len() == 400 {
                break;
            }
        }
    }
    assert_eq!(acked.len(), 400, "the child stopped early");
    // SIGKILL: no destructors, no closing checkpoint, writes cut anywhere.
    child.kill().unwrap();
    child.wait().unwrap();
    // Acknowledgements already in the pipe count too.
    for line in lines {
        if let Some(seq) = line.unwrap().strip_prefix("ack ") {
            acked.push(seq.parse().unwrap());
        }
    }

    let path = log_path(data);
    let log = AuditLog::open(&path, signer, Arc::new(SystemClock), options()).unwrap();
    let present: std::collections::HashSet<u64> = query(&path, Query::default())
        .unwrap()
        .map(|r| r.unwrap().seq)
        .collect();
    for seq in &acked {
        assert!(present.contains(seq), "acknowledged seq {seq} is missing");
    }
    let report = verify(&path, None).unwrap();
    assert!(report.is_ok(), "{report}");
    assert!(report.checkpoints >= 400 / 50, "{report}");
    // The log goes on from where it stood.
    let head = report.head.unwrap().0;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let seq = runtime.block_on(log.append(support::event(1))).unwrap();
    assert_eq!(seq, head + 1);
    log.close().unwrap();
    assert!(verify(&path, None).unwrap().is_ok());
}
