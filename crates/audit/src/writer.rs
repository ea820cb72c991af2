//! The writer thread: the only code that appends to the log.
//!
//! Callers send prepared events over a channel. The thread takes what has
//! arrived (up to `max_batch` requests), assigns sequence numbers, links
//! each record to the one before, adds a signed checkpoint where one is
//! due, writes the whole batch with one `write` on the O_APPEND file and
//! one fsync, and only then answers the callers. While one fsync runs the
//! next batch accumulates, so the number of fsyncs follows the disk's
//! speed rather than the number of callers; and a batch that follows the
//! previous one within the commit window waits for the window to close
//! when that one held several requests or when nobody waits for the new
//! one, so a burst or a steady stream of events costs at most one write
//! per window, while a lone caller waiting for each append is not held.
//!
//! A batch nobody waits for (events recorded in passing, such as commands
//! sent to devices) is written at once but fsynced at most once per
//! `sync_interval`: written, it survives the process (a crash, a kill -9);
//! only the machine losing power within the interval could lose it. Any
//! batch somebody waits for, a checkpoint export and the close fsync
//! everything before them too. A steady stream of commands then costs a
//! write per window and an fsync per interval, not an fsync per window:
//! on a virtual disk each fsync is a trip to the host.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::canonical::write_object;
use crate::checkpoint::{CHECKPOINT_ACTION, CheckpointSigner, ExportedCheckpoint};
use crate::clock::{Clock, Timestamp};
use crate::error::AuditError;
use crate::record::{Digest, Fields, Outcome, Prepared, Seq, add_hash, encode_unhashed_into};

/// Longest real-time wait before the clock is asked again while records
/// wait to be signed.
const CLOCK_POLL: Duration = Duration::from_secs(1);

pub(crate) type AppendReply = oneshot::Sender<Result<Seq, AuditError>>;
pub(crate) type CheckpointReply = oneshot::Sender<Result<ExportedCheckpoint, AuditError>>;

pub(crate) enum Request {
    Append {
        event: Prepared,
        reply: Option<AppendReply>,
    },
    /// Sign the head now (unless it is signed already) and return the
    /// latest checkpoint once durable.
    Checkpoint { reply: CheckpointReply },
    /// Write everything sent before, sign the head, and stop.
    Close {
        reply: Sender<Result<(), AuditError>>,
    },
}

/// Where the chain stands.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) seq: Seq,
    pub(crate) hash: Digest,
    /// Time of the last record; later records never go back before it.
    pub(crate) time: Timestamp,
    /// Records after the last checkpoint.
    pub(crate) unsigned: u64,
    /// Time of the first of those.
    pub(crate) first_unsigned: Option<Timestamp>,
    pub(crate) last_checkpoint: Option<ExportedCheckpoint>,
}

/// Counters of the writer since the log was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditStats {
    /// Batches written, each with one `write`.
    pub batches: u64,
    /// fsyncs of the log file.
    pub syncs: u64,
    /// Event records written.
    pub records: u64,
    /// Checkpoint records written.
    pub checkpoints: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    batches: AtomicU64,
    syncs: AtomicU64,
    records: AtomicU64,
    checkpoints: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> AuditStats {
        AuditStats {
            batches: self.batches.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct Writer {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    /// Length of the well-formed part of the file (written; durable once
    /// `unsynced_since` is `None`).
    pub(crate) len: u64,
    pub(crate) rx: Receiver<Request>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) signer: Arc<dyn CheckpointSigner>,
    pub(crate) checkpoint_every: u64,
    pub(crate) checkpoint_interval: Duration,
    pub(crate) max_batch: usize,
    pub(crate) commit_window: Duration,
    pub(crate) sync_interval: Duration,
    /// When the oldest write not yet fsynced was made.
    pub(crate) unsynced_since: Option<Instant>,
    /// When the last batch was written, for the commit window.
    pub(crate) last_write: Option<Instant>,
    pub(crate) head: Head,
    pub(crate) counters: Arc<Counters>,
    /// Set once a write or fsync failed beyond repair.
    pub(crate) failed: Option<String>,
}

/// What one batch produced before it is written.
#[derive(Default)]
struct Staged {
    out: String,
    /// The batch's time as records show it, formatted once.
    now_text: String,
    records: u64,
    checkpoints: u64,
    appended: Vec<(Option<AppendReply>, Seq)>,
    /// Somebody waits for this batch to be durable.
    awaited: bool,
    exports: Vec<CheckpointReply>,
    sign_error: Option<AuditError>,
    close: Option<Sender<Result<(), AuditError>>>,
}

impl Writer {
    pub(crate) fn run(mut self) {
        loop {
            let Some(first) = self.next_request() else {
                // Every handle is gone without a close: still sign the tail.
                self.process(Vec::new(), true);
                return;
            };
            // A request nobody waits for (an event recorded in passing,
            // such as a command sent to a device) within the commit window
            // of the previous write waits for the window to close, then
            // goes with what queued meanwhile. After a batch of several
            // requests the writer has already slept through the window
            // (below); a lone writer that waits for each append is never
            // held, and after a quiet spell a request is written at once.
            if matches!(first, Request::Append { reply: None, .. })
                && let Some(last) = self.last_write
            {
                let closes = last + self.commit_window;
                let now = Instant::now();
                if closes > now {
                    std::thread::sleep(closes - now);
                }
            }
            let mut batch = vec![first];
            while batch.len() < self.max_batch
                && !matches!(batch.last(), Some(Request::Close { .. }))
            {
                match self.rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let shared = batch.len() > 1;
            let unwaited = batch
                .iter()
                .all(|r| matches!(r, Request::Append { reply: None, .. }));
            let stop = self.process(batch, false);
            self.last_write = Some(Instant::now());
            if stop {
                return;
            }
            // After a batch the window would hold the next one for anyway
            // (shared, or nobody waited), sleep through the window now
            // rather than park on the channel: the next request then
            // costs its sender no wake-up, and a steady stream one wake
            // of this thread per window instead of two.
            if shared || unwaited {
                std::thread::sleep(self.commit_window);
            }
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(self.clock.now()).max(self.head.time)
    }

    /// The next request, signing the unsigned tail whenever it has waited
    /// `checkpoint_interval` meanwhile. `None` once every sender is gone.
    fn next_request(&mut self) -> Option<Request> {
        let interval_ms = i64::try_from(self.checkpoint_interval.as_millis()).unwrap_or(i64::MAX);
        let mut signing_failed = false;
        loop {
            // Writes nobody waited for become durable within the sync
            // interval even if nothing else arrives.
            let sync_wait = match self.unsynced_since {
                Some(since) => {
                    let due = since + self.sync_interval;
                    let now = Instant::now();
                    if now >= due {
                        // A failure is logged and fails every later append.
                        let _ = self.sync();
                        continue;
                    }
                    Some(due - now)
                }
                None => None,
            };
            let checkpoint_wait = match self.head.first_unsigned {
                Some(first)
                    if self.failed.is_none() && self.head.unsigned > 0 && !signing_failed =>
                {
                    let now = self.now();
                    let due = first.unix_millis().saturating_add(interval_ms);
                    if now.unix_millis() >= due {
                        self.process(Vec::new(), false);
                        // If signing failed, the next request retries.
                        signing_failed = self.head.unsigned > 0;
                        continue;
                    }
                    // The clock decides when a checkpoint is due; the real
                    // wait only bounds how often it is asked, so a clock
                    // that is set or stepped is noticed within a second.
                    let left = u64::try_from(due - now.unix_millis()).unwrap_or(0);
                    Some(Duration::from_millis(left).min(CLOCK_POLL))
                }
                _ => None,
            };
            let wait = match (sync_wait, checkpoint_wait) {
                (None, None) => return self.rx.recv().ok(),
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
            };
            match self.rx.recv_timeout(wait.max(Duration::from_millis(1))) {
                Ok(r) => return Some(r),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Writes one batch and answers its callers; true when the writer
    /// should stop.
    fn process(&mut self, batch: Vec<Request>, closing: bool) -> bool {
        let now = self.now();
        let mut head = self.head.clone();
        let mut s = Staged {
            now_text: now.to_string(),
            ..Staged::default()
        };
        for request in batch {
            match request {
                Request::Append { event, reply } => {
                    if let Some(reason) = &self.failed {
                        answer(reply, Err(AuditError::Failed(reason.clone())));
                        continue;
                    }
                    self.push_event(&mut head, &mut s, now, &event);
                    s.awaited |= reply.is_some();
                    s.appended.push((reply, head.seq));
                    if head.unsigned >= self.checkpoint_every {
                        self.push_checkpoint(&mut head, &mut s, now);
                    }
                }
                Request::Checkpoint { reply } => {
                    if head.unsigned > 0 && self.failed.is_none() {
                        self.push_checkpoint(&mut head, &mut s, now);
                    }
                    s.exports.push(reply);
                }
                Request::Close { reply } => s.close = Some(reply),
            }
        }
        let interval_ms = i64::try_from(self.checkpoint_interval.as_millis()).unwrap_or(i64::MAX);
        let timer_due = head
            .first_unsigned
            .is_some_and(|t| now.unix_millis() >= t.unix_millis().saturating_add(interval_ms));
        let stopping = closing || s.close.is_some();
        if head.unsigned > 0 && self.failed.is_none() && (stopping || timer_due) {
            self.push_checkpoint(&mut head, &mut s, now);
        }

        let durable = s.awaited || !s.exports.is_empty() || stopping;
        let result = if s.out.is_empty() {
            Ok(())
        } else {
            self.write(&s.out)
        };
        let result = result.and_then(|()| {
            let due = self
                .unsynced_since
                .is_some_and(|t| t.elapsed() >= self.sync_interval);
            if durable || due { self.sync() } else { Ok(()) }
        });
        match &result {
            Ok(()) => {
                if !s.out.is_empty() {
                    self.counters.batches.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .records
                        .fetch_add(s.records, Ordering::Relaxed);
                    self.counters
                        .checkpoints
                        .fetch_add(s.checkpoints, Ordering::Relaxed);
                }
                self.head = head;
            }
            Err(e) => tracing::error!(
                error = %e,
                path = %self.path.display(),
                records = s.records,
                "audit batch not written; every waiter is told"
            ),
        }
        for (reply, seq) in s.appended {
            answer(reply, result.clone().map(|()| seq));
        }
        for reply in s.exports {
            let exported = match (&result, &s.sign_error, &self.failed) {
                (Err(e), _, _) | (Ok(()), Some(e), _) => Err(e.clone()),
                (Ok(()), None, Some(reason)) => Err(AuditError::Failed(reason.clone())),
                (Ok(()), None, None) => self.head.last_checkpoint.clone().ok_or(AuditError::Empty),
            };
            // A caller that stopped waiting does not need the answer.
            let _ = reply.send(exported);
        }
        if let Some(reply) = s.close {
            let closed = match (&result, &self.failed) {
                (Err(e), _) => Err(e.clone()),
                (Ok(()), Some(reason)) => Err(AuditError::Failed(reason.clone())),
                (Ok(()), None) => Ok(()),
            };
            let _ = reply.send(closed);
            return true;
        }
        false
    }

    fn push_event(&self, head: &mut Head, s: &mut Staged, now: Timestamp, e: &Prepared) {
        push_line(
            head,
            &mut s.out,
            (now, &s.now_text),
            e.actor.as_str(),
            &e.action,
            &e.target,
            e.outcome,
            &e.details,
        );
        head.unsigned += 1;
        head.first_unsigned.get_or_insert(now);
        s.records += 1;
    }

    fn push_checkpoint(&self, head: &mut Head, s: &mut Staged, now: Timestamp) {
        let cp = match ExportedCheckpoint::sign(self.signer.as_ref(), head.seq, head.hash) {
            Ok(cp) => cp,
            Err(e) => {
                tracing::error!(error = %e, head_seq = head.seq, "audit checkpoint not signed");
                s.sign_error = Some(e);
                return;
            }
        };
        let mut details = String::new();
        if let Err(e) = write_object(&mut details, &cp.to_details()) {
            s.sign_error = Some(AuditError::Key(format!("encoding a checkpoint: {e}")));
            return;
        }
        push_line(
            head,
            &mut s.out,
            (now, &s.now_text),
            "system",
            CHECKPOINT_ACTION,
            "audit",
            Outcome::Success,
            &details,
        );
        head.unsigned = 0;
        head.first_unsigned = None;
        head.last_checkpoint = Some(cp);
        s.checkpoints += 1;
    }

    fn write(&mut self, out: &str) -> Result<(), AuditError> {
        if let Err(e) = self.file.write_all(out.as_bytes()) {
            // Cut off whatever part of the batch got in, so the file still
            // ends on a record boundary and the chain goes on from the
            // unchanged head.
            let err = AuditError::io(&self.path, e);
            if let Err(cut) = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.sync_data())
            {
                self.failed = Some(format!(
                    "a write failed ({err}) and the partial batch could not be removed: {cut}"
                ));
            }
            return Err(err);
        }
        self.len += out.len() as u64;
        self.unsynced_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Makes everything written so far durable.
    fn sync(&mut self) -> Result<(), AuditError> {
        if let Some(reason) = &self.failed {
            // Nothing written can be made durable any more.
            self.unsynced_since = None;
            return Err(AuditError::Failed(reason.clone()));
        }
        if self.unsynced_since.is_none() {
            return Ok(());
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the kernel may have dropped the pages:
            // nothing written since the last good fsync can be trusted.
            let reason = format!("fsync of {} failed: {e}", self.path.display());
            tracing::error!(%reason, "audit log can no longer be trusted; every later append fails");
            self.failed = Some(reason.clone());
            return Err(AuditError::Failed(reason));
        }
        self.unsynced_since = None;
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn push_line(
    head: &mut Head,
    out: &mut String,
    (now, now_text): (Timestamp, &str),
    actor: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: &str,
) {
    let seq = head.seq + 1;
    let start = out.len();
    encode_unhashed_into(
        out,
        &Fields {
            seq,
            time: now,
            actor,
            action,
            target,
            outcome,
            details,
            prev: &head.hash,
        },
        now_text,
    );
    let hash = Digest::of(&out.as_bytes()[start..]);
    add_hash(out, &hash);
    out.push('\n');
    head.seq = seq;
    head.hash = hash;
    head.time = now;
}

fn answer(reply: Option<AppendReply>, result: Result<Seq, AuditError>) {
    match reply {
        // A caller that stopped waiting does not need the answer.
        Some(reply) => {
            let _ = reply.send(result);
        }
        None => {
            if let Err(e) = result {
                tracing::error!(error = %e, "audit record submitted without waiting was not written");
            }
        }
    }
}
