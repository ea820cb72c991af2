//! Many concurrent commits share fsyncs; batch limits hold.

mod common;

use std::time::Duration;

use civitas_store::{Op, OutboundState, Store, StoreOptions};
use common::*;

fn put(client: &str, seq: u64) -> Op {
    Op::PutOutbound {
        client_id: client.into(),
        seq,
        message: outbound("t", OutboundState::Queued, None),
    }
}

async fn commit_concurrently(store: &Store, n: u64) {
    let tasks: Vec<_> = (0..n)
        .map(|seq| {
            let store = store.clone();
            tokio::spawn(async move { store.commit(vec![put("c", seq)]).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_transactions() {
    let dir = temp_dir();
    let store = open(&dir);
    store
        .commit(vec![Op::PutSession(bare_session("c"))])
        .await
        .unwrap();
    let before = store.stats();

    commit_concurrently(&store, 1000).await;

    let stats = store.stats();
    let commits = stats.commits - before.commits;
    assert_eq!(stats.ops - before.ops, 1000);
    assert_eq!(stats.calls - before.calls, 1000);
    assert_eq!(stats.failed_commits, 0);
    // Ops arrive while a commit runs, so they cannot all get one each.
    assert!(commits < 1000, "{commits} commits for 1000 calls");
    assert!(stats.largest_batch_ops > 1);

    let state = store.load_broker_state().unwrap();
    let seqs: Vec<u64> = state.sessions[0].outbound.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..1000).collect::<Vec<_>>());
}

#[tokio::test]
async fn batches_stop_at_max_batch_ops_but_never_split_a_call() {
    let dir = temp_dir();
    let options = StoreOptions {
        max_batch_ops: 10,
        ..StoreOptions::default()
    };
    let store = Store::open(&db_path(&dir), options).unwrap();

    commit_concurrently(&store, 300).await;
    let stats = store.stats();
    assert!(stats.largest_batch_ops <= 10, "{stats:?}");
    assert!(stats.commits >= 30, "{stats:?}");

    let big: Vec<Op> = (1000..1050).map(|seq| put("c", seq)).collect();
    store.commit(big).await.unwrap();
    assert_eq!(store.stats().largest_batch_ops, 50);
}

#[tokio::test]
async fn a_full_batch_commits_without_waiting_out_the_delay() {
    let dir = temp_dir();
    // Were the delay honoured for a full batch, this test would take a minute.
    let options = StoreOptions {
        max_batch_ops: 100,
        max_batch_delay: Duration::from_secs(60),
        ..StoreOptions::default()
    };
    let store = Store::open(&db_path(&dir), options).unwrap();
    commit_concurrently(&store, 100).await;
    let stats = store.stats();
    assert_eq!(stats.commits, 1, "{stats:?}");
    assert_eq!(stats.ops, 100);

    // A close arriving while the thread waits for more ops ends the wait.
    store.submit(vec![put("c", 500)]);
    store.close().unwrap();
    assert_eq!(store.stats().commits, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_commits_share_batches_with_async_ones() {
    let dir = temp_dir();
    let store = open(&dir);
    store
        .commit_blocking(vec![Op::PutSession(bare_session("c"))])
        .unwrap();
    let before = store.stats();

    // Sixteen threads, blocking and async callers mixed.
    let blocking: Vec<_> = (0..8u64)
        .map(|t| {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                for i in 0..50 {
                    store
                        .commit_blocking(vec![put("c", 10_000 + t * 1000 + i)])
                        .unwrap();
                }
            })
        })
        .collect();
    commit_concurrently(&store, 400).await;
    for t in blocking {
        t.await.unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.ops - before.ops, 800);
    assert!(stats.commits - before.commits < 800, "{stats:?}");

    // Even called on a runtime thread (where blocking on `commit`'s future
    // could starve), it returns once durable.
    store.commit_blocking(vec![put("c", 99_999)]).unwrap();
    let state = store.load_broker_state().unwrap();
    assert_eq!(state.sessions[0].outbound.len(), 801);

    store.close().unwrap();
    assert!(matches!(
        store.commit_blocking(vec![put("c", 1)]),
        Err(civitas_store::StoreError::Closed)
    ));
}

#[tokio::test]
async fn a_lone_writer_is_not_held_by_the_commit_window() {
    let dir = temp_dir();
    let options = StoreOptions {
        commit_window: Duration::from_secs(5),
        ..StoreOptions::default()
    };
    let store = Store::open(&db_path(&dir), options).unwrap();
    // One caller at a time, each waiting for its commit: no transaction
    // holds several callers, so none waits for the window.
    let started = std::time::Instant::now();
    for seq in 0..5 {
        store.commit(vec![put("c", seq)]).await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(store.stats().commits, 5);
}

#[tokio::test]
async fn concurrent_writers_within_the_commit_window_share_a_transaction() {
    let dir = temp_dir();
    let options = StoreOptions {
        commit_window: Duration::from_secs(1),
        ..StoreOptions::default()
    };
    let store = Store::open(&db_path(&dir), options).unwrap();
    commit_concurrently(&store, 50).await;
    let before = store.stats().commits;
    // The next burst follows a shared transaction within the window: it
    // waits for the window and goes in together.
    commit_concurrently(&store, 50).await;
    let stats = store.stats();
    assert!(stats.commits - before <= 2, "{stats:?}");
    assert_eq!(stats.ops, 100);
}
