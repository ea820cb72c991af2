//! The group commit: one thread owns every write transaction.
//!
//! Callers hand their ops over a channel. The thread takes what has
//! arrived (up to `max_batch_ops`), applies it in arrival order in one
//! transaction, commits with an fsync, and only then answers every caller
//! in the batch. While one fsync runs, the next batch accumulates, so the
//! number of fsyncs tracks the disk's speed rather than the number of
//! callers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability};
use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::records::Op;
use crate::tables::WriteTables;

/// How the commit thread groups ops into transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// A batch stops growing once it holds this many ops. One call's ops
    /// are never split, so a single larger call makes a larger batch.
    pub max_batch_ops: usize,
    /// How long the thread waits for more ops after the first one of a
    /// batch. Zero commits as soon as the previous commit finishes; the
    /// batching then comes from ops that arrive during a commit.
    pub max_batch_delay: Duration,
    /// Group commit under load: when the previous transaction held the
    /// ops of several callers (writers are concurrent) and was committed
    /// less than this long ago, the next waits for the window to close,
    /// gathering what arrives meanwhile, so a steady stream (a city's
    /// telemetry) costs at most one transaction per window instead of one
    /// per fsync. A lone writer (one caller per transaction) and the first
    /// op after a quiet spell commit at once. Zero turns it off.
    pub commit_window: Duration,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            max_batch_ops: 4096,
            max_batch_delay: Duration::ZERO,
            commit_window: Duration::from_millis(5),
        }
    }
}

/// Counters of the commit thread since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Transactions committed (each one fsync).
    pub commits: u64,
    /// Ops in committed transactions.
    pub ops: u64,
    /// `commit`/`submit` calls in committed transactions.
    pub calls: u64,
    /// Transactions that failed; their callers got the error.
    pub failed_commits: u64,
    /// The most ops one committed transaction held.
    pub largest_batch_ops: u64,
}

impl StoreStats {
    /// Average ops per committed transaction.
    pub fn ops_per_commit(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.ops as f64 / self.commits as f64
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    commits: AtomicU64,
    ops: AtomicU64,
    calls: AtomicU64,
    failed_commits: AtomicU64,
    largest_batch_ops: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> StoreStats {
        StoreStats {
            commits: self.commits.load(Ordering::Relaxed),
            ops: self.ops.load(Ordering::Relaxed),
            calls: self.calls.load(Ordering::Relaxed),
            failed_commits: self.failed_commits.load(Ordering::Relaxed),
            largest_batch_ops: self.largest_batch_ops.load(Ordering::Relaxed),
        }
    }
}

/// Where a committer waits for its answer: a future, or a blocked thread.
pub(crate) enum Reply {
    Async(oneshot::Sender<Result<(), StoreError>>),
    Blocking(Sender<Result<(), StoreError>>),
}

impl Reply {
    fn send(self, result: Result<(), StoreError>) {
        // A caller that stopped waiting does not need the answer.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(result);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

pub(crate) enum Request {
    Ops {
        ops: Vec<Op>,
        reply: Option<Reply>,
    },
    /// Commit everything sent before, answer with that last batch's result,
    /// and stop.
    Close {
        reply: Sender<Result<(), StoreError>>,
    },
}

pub(crate) fn spawn(
    db: Arc<Database>,
    rx: Receiver<Request>,
    options: StoreOptions,
    counters: Arc<Counters>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("civitas-store-commit".into())
        .spawn(move || CommitThread::new(db, rx, options, counters).run())
}

struct CommitThread {
    db: Arc<Database>,
    rx: Receiver<Request>,
    max_ops: usize,
    delay: Duration,
    window: Duration,
    /// When the last transaction with several callers was committed, for
    /// the commit window.
    last_shared_commit: Option<Instant>,
    counters: Arc<Counters>,
    /// A request that did not fit the previous batch.
    carry: Option<Request>,
}

#[derive(Default)]
struct Batch {
    calls: Vec<(Vec<Op>, Option<Reply>)>,
    ops: usize,
}

impl CommitThread {
    fn new(
        db: Arc<Database>,
        rx: Receiver<Request>,
        options: StoreOptions,
        counters: Arc<Counters>,
    ) -> CommitThread {
        CommitThread {
            db,
            rx,
            max_ops: options.max_batch_ops.max(1),
            delay: options.max_batch_delay,
            window: options.commit_window,
            last_shared_commit: None,
            counters,
            carry: None,
        }
    }

    fn run(mut self) {
        loop {
            let first = match self.carry.take() {
                Some(r) => r,
                None => match self.rx.recv() {
                    Ok(r) => r,
                    // Every handle is gone without a close: nothing can
                    // arrive any more.
                    Err(_) => return,
                },
            };
            if !matches!(first, Request::Close { .. })
                && let Some(last) = self.last_shared_commit
            {
                // Sleep (not wake per request) until the window closes.
                let closes = last + self.window;
                let now = Instant::now();
                if closes > now {
                    std::thread::sleep(closes - now);
                }
            }
            let (batch, close) = self.gather(first);
            let shared = batch.calls.len() > 1;
            let result = self.write(batch);
            self.last_shared_commit = shared.then(Instant::now);
            if let Some(reply) = close {
                // The closer may have given up waiting; nothing to do then.
                let _ = reply.send(result);
                return;
            }
        }
    }

    /// Collects one batch starting with `first`: everything already queued
    /// (or arriving within `max_batch_delay`), up to `max_ops`.
    fn gather(&mut self, first: Request) -> (Batch, Option<Sender<Result<(), StoreError>>>) {
        let mut batch = Batch::default();
        match first {
            Request::Ops { ops, reply } => batch.push(ops, reply),
            Request::Close { reply } => return (batch, Some(reply)),
        }
        let deadline = Instant::now() + self.delay;
        while batch.ops < self.max_ops {
            let next = if self.delay.is_zero() {
                match self.rx.try_recv() {
                    Ok(r) => r,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            } else {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.rx.recv_timeout(left) {
                    Ok(r) => r,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            };
            match next {
                Request::Ops { ops, reply } => {
                    if batch.ops + ops.len() > self.max_ops {
                        self.carry = Some(Request::Ops { ops, reply });
                        break;
                    }
                    batch.push(ops, reply);
                }
                Request::Close { reply } => return (batch, Some(reply)),
            }
        }
        (batch, None)
    }

    /// Commits one batch and answers its callers.
    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        let result = if batch.ops == 0 {
            // Earlier batches are already durable: nothing to wait for.
            Ok(())
        } else {
            self.transact(&batch)
        };
        match &result {
            Ok(()) if batch.ops > 0 => {
                let c = &self.counters;
                c.commits.fetch_add(1, Ordering::Relaxed);
                c.ops.fetch_add(batch.ops as u64, Ordering::Relaxed);
                c.calls
                    .fetch_add(batch.calls.len() as u64, Ordering::Relaxed);
                c.largest_batch_ops
                    .fetch_max(batch.ops as u64, Ordering::Relaxed);
            }
            Ok(()) => {}
            Err(e) => {
                self.counters.failed_commits.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    error = %e,
                    ops = batch.ops,
                    calls = batch.calls.len(),
                    "group commit failed; its ops are lost and every waiter is told"
                );
            }
        }
        for (_, reply) in batch.calls {
            if let Some(reply) = reply {
                reply.send(result.clone());
            }
        }
        result
    }

    fn transact(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut tables = WriteTables::open(&txn)?;
            for op in batch.calls.iter().flat_map(|(ops, _)| ops) {
                tables.apply(op)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

impl Batch {
    fn push(&mut self, ops: Vec<Op>, reply: Option<Reply>) {
        self.ops += ops.len();
        self.calls.push((ops, reply));
    }
}
