//! A writer killed with SIGKILL loses nothing it was told is durable.
//!
//! The test binary plays both parts: run normally, `crash_writer` returns
//! at once; spawned by the parent with `CRASH_WRITER_ENV` set, it commits
//! in a loop and prints every acknowledged seq until it is killed.
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

use civitas_store::{Op, OutboundState, Store, StoreOptions};
use common::*;

const CRASH_WRITER_ENV: &str = "CIVITAS_STORE_CRASH_WRITER";
const CLIENT: &str = "crash";
const ACKS_BEFORE_KILL: usize = 300;

fn ops_for(seq: u64) -> Vec<Op> {
    // Two tables per call, so a torn transaction would show.
    vec![
        Op::PutOutbound {
            client_id: CLIENT.into(),
            seq,
            message: outbound("t", OutboundState::Queued, None),
        },
        Op::PutRetained {
            topic: format!("crash/{seq}"),
            message: bare_message(&format!("crash/{seq}"), b"r"),
        },
    ]
}

fn write_until_killed(path: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(path, StoreOptions::default()).unwrap();
        store
            .commit(vec![Op::PutSession(bare_session(CLIENT))])
            .await
            .unwrap();
        let next = Arc::new(AtomicU64::new(0));
        // A bound, so that an orphaned writer does not run forever.
        let stop_at = Instant::now() + Duration::from_secs(60);
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let next = Arc::clone(&next);
                tokio::spawn(async move {
                    while Instant::now() < stop_at {
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        store.commit(ops_for(seq)).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ack {seq}").unwrap();
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
    if let Some(path) = std::env::var_os(CRASH_WRITER_ENV) {
        write_until_killed(Path::new(&path));
    }
}

#[test]
fn acknowledged_commits_survive_sigkill() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_writer", "--nocapture", "--test-threads=1"])
        .env(CRASH_WRITER_ENV, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let mut acked = BTreeSet::new();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(seq) = line.strip_prefix("ack ") {
            acked.insert(seq.parse::<u64>().unwrap());
            if acked.len() >= ACKS_BEFORE_KILL {
                break;
            }
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        acked.len(),
        ACKS_BEFORE_KILL,
        "writer stopped early: {status:?}"
    );
    assert_eq!(
        status.signal(),
        Some(9),
        "writer was not killed: {status:?}"
    );

    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let state = store.load_broker_state().unwrap();
    assert_eq!(state.sessions.len(), 1);
    let stored: BTreeSet<u64> = state.sessions[0].outbound.iter().map(|(s, _)| *s).collect();
    let missing: Vec<&u64> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");

    // Each call's two ops landed together or not at all.
    let retained: BTreeSet<u64> = state
        .retained
        .iter()
        .map(|m| m.topic.strip_prefix("crash/").unwrap().parse().unwrap())
        .collect();
    assert_eq!(retained, stored);
}
