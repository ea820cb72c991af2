//! `Store`: the handle the broker holds.
//!
//! Writes go to the commit thread; reads open their own redb snapshot on
//! the caller's thread. Closing (explicitly or by dropping the last handle)
//! flushes what was submitted, stops the thread and releases the file.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase};
use tokio::sync::oneshot;

use crate::commit::{self, Counters, Reply, Request, StoreOptions, StoreStats};
use crate::error::StoreError;
use crate::records::{BrokerState, Op, RuleRecord, ShadowRecord};
use crate::tables;

/// The durable state of the broker. Cheap to clone: all clones share one
/// database and one commit thread.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Sender<Request>,
    closed: AtomicBool,
    /// Taken at close so that the file is released for a later open.
    db: Mutex<Option<Arc<Database>>>,
    /// Held for the whole of `close`, so a second closer waits for the first.
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .field("stats", &self.stats())
            .finish()
    }
}

impl Store {
    /// Opens (creating if absent) the store at `path`, brings its schema up
    /// to date, and starts the commit thread.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let db = Database::create(path)?;
        tables::prepare(&db)?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let thread = commit::spawn(Arc::clone(&db), rx, options, Arc::clone(&counters))
            .map_err(|e| StoreError::Thread(Arc::new(e)))?;
        Ok(Store {
            inner: Arc::new(Inner {
                tx,
                closed: AtomicBool::new(false),
                db: Mutex::new(Some(db)),
                thread: Mutex::new(Some(thread)),
                counters,
            }),
        })
    }

    /// Queues `ops` for the next group commit and waits until they are
    /// durable. The ops of one call are applied atomically, after those of
    /// every earlier `commit`/`submit` call.
    ///
    /// Dropping the future does not withdraw the ops: once queued they are
    /// committed.
    ///
    /// The ops are queued when this is called, not when the future is first
    /// polled: a caller can hold the future while it goes on submitting
    /// later ops, and they still apply in call order.
    pub fn commit(
        &self,
        ops: Vec<Op>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (reply, done) = oneshot::channel();
        let sent = self.send(Request::Ops {
            ops,
            reply: Some(Reply::Async(reply)),
        });
        async move {
            sent?;
            // The sender is dropped unanswered only if the thread stopped first.
            done.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// `commit` for synchronous callers: queues `ops` and blocks the calling
    /// thread until they are durable. Unlike blocking on `commit`'s future,
    /// this is safe from any thread, a runtime's included (where it still
    /// blocks that thread: prefer `spawn_blocking`).
    pub fn commit_blocking(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let (reply, done) = mpsc::channel();
        self.send(Request::Ops {
            ops,
            reply: Some(Reply::Blocking(reply)),
        })?;
        // The sender is dropped unanswered only if the thread stopped first.
        done.recv().map_err(|_| StoreError::Closed)?
    }

    /// Queues `ops` for the next group commit without waiting; they are
    /// still applied atomically and in order with all other calls. A
    /// failure is logged by the commit thread.
    pub fn submit(&self, ops: Vec<Op>) {
        let n = ops.len();
        if let Err(e) = self.send(Request::Ops { ops, reply: None }) {
            tracing::warn!(error = %e, ops = n, "ops submitted to a closed store are dropped");
        }
    }

    /// Reads everything the broker restores at start, from one consistent
    /// snapshot of what has been committed so far (ops still queued are not
    /// included).
    pub fn load_broker_state(&self) -> Result<BrokerState, StoreError> {
        let db = self.db()?;
        tables::load_broker_state(&db)
    }

    /// Reads one device shadow (live or tombstone) from what has been
    /// committed so far. `shadow` is empty for the classic shadow. Shadows
    /// are written with `Op::PutShadow`/`Op::DeleteShadow`.
    pub fn load_shadow(
        &self,
        thing: &str,
        shadow: &str,
    ) -> Result<Option<ShadowRecord>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        tables::shadows::load(&txn, thing, shadow)
    }

    /// The names of the named shadows of `thing` that exist (deleted ones
    /// left out), ascending.
    pub fn shadow_names(&self, thing: &str) -> Result<Vec<String>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        tables::shadows::names(&txn, thing)
    }

    /// Every rules engine rule committed so far, ordered by name. Rules
    /// are written with `Op::PutRule`/`Op::DeleteRule`.
    pub fn load_rules(&self) -> Result<Vec<RuleRecord>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        tables::rules::load(&txn)
    }

    /// Commits everything queued, stops the commit thread and releases the
    /// file. Returns the result of that last commit. Later calls, and
    /// dropping the last handle, do nothing more. Blocks the caller until
    /// the last fsync is done.
    pub fn close(&self) -> Result<(), StoreError> {
        self.inner.close()
    }

    /// Commit counters since open.
    pub fn stats(&self) -> StoreStats {
        self.inner.counters.snapshot()
    }

    pub(crate) fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.inner
            .db
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::Closed)
    }

    fn send(&self, request: Request) -> Result<(), StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        self.inner.tx.send(request).map_err(|_| StoreError::Closed)
    }
}

impl Inner {
    fn close(&self) -> Result<(), StoreError> {
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(handle) = thread.take() else {
            return Ok(());
        };
        self.closed.store(true, Ordering::Release);
        let (reply, done) = mpsc::channel();
        let result = match self.tx.send(Request::Close { reply }) {
            Ok(()) => done.recv().unwrap_or(Err(StoreError::Closed)),
            Err(_) => Err(StoreError::Closed),
        };
        if handle.join().is_err() {
            tracing::error!("the store commit thread panicked");
        }
        self.db
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "closing the store on drop failed");
        }
    }
}
