//! Opening the log for writing, and the handles that append to it.
//!
//! [`AuditLog::open`] takes the file's exclusive lock, repairs a write cut
//! short by a crash (only ever the final, unterminated line), reads the
//! last records to continue `seq` and `prev`, and starts the writer thread.
//! [`AuditSink`] is the cheap handle everything else holds.

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::checkpoint::{CheckpointSigner, ExportedCheckpoint, key_id};
use crate::clock::{Clock, Timestamp};
use crate::error::AuditError;
use crate::lines::{Fragment, ReverseLines};
use crate::query::{Query, QueryIter};
use crate::record::{Digest, Event, Record, Seq, parse_line};
use crate::verify::VerifyReport;
use crate::writer::{AuditStats, Counters, Head, Request, Writer};

/// Directory of the audit log inside the data directory.
pub const AUDIT_DIR: &str = "audit";
/// File name of the log inside [`AUDIT_DIR`].
pub const LOG_FILE_NAME: &str = "audit.log";

/// `DATA_DIR/audit/audit.log`.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join(AUDIT_DIR).join(LOG_FILE_NAME)
}

/// When checkpoints are written and how batches grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// A checkpoint follows at the latest this many records after the
    /// previous one.
    pub checkpoint_every: u64,
    /// ... or once the oldest unsigned record is this old, whichever comes
    /// first. Also at every clean close.
    pub checkpoint_interval: Duration,
    /// Most requests written in one batch (one `write`).
    pub max_batch: usize,
    /// Group commit: a batch that follows another within this window
    /// waits for the window to close, gathering what arrives meanwhile,
    /// when the previous batch held several requests or when nobody waits
    /// for the new one ([`AuditSink::append_nowait`]). A burst (a
    /// reconnect storm's connect events) or a steady stream (commands to
    /// streetlights) then costs one write per window rather than one per
    /// event. A lone caller that waits for each append, and a request
    /// after a quiet spell, are written at once. Zero writes every batch
    /// at once.
    pub commit_window: Duration,
    /// Batches nobody waits for ([`AuditSink::append_nowait`] events and
    /// scheduled checkpoints) are written at once but fsynced at most once
    /// per this interval: written, they survive the process; only the
    /// machine losing power within the interval could lose them. A batch
    /// somebody waits for, a checkpoint export and the close fsync
    /// everything before them. Zero fsyncs every batch.
    pub sync_interval: Duration,
}

impl Default for AuditOptions {
    fn default() -> AuditOptions {
        AuditOptions {
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            max_batch: 1024,
            commit_window: Duration::from_millis(10),
            sync_interval: Duration::from_millis(100),
        }
    }
}

/// What opening had to repair after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// The file ended in a partial line (a write cut short); it was cut
    /// off. No record in it had been acknowledged.
    TruncatedTail {
        /// Where the partial line started.
        offset: u64,
        /// How many bytes were removed.
        bytes: u64,
    },
    /// The file ended in a complete record without its newline; the
    /// newline was added and the record kept.
    CompletedTail {
        /// That record.
        seq: Seq,
    },
}

/// A cheap, cloneable handle that appends to an open log.
#[derive(Debug, Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Request>,
    closed: Arc<AtomicBool>,
}

impl AuditSink {
    /// Queues `event` and resolves to its `seq` once it is on disk
    /// (written and fsynced). The event is checked and queued when this is
    /// called, not when the future is polled, so records keep call order;
    /// dropping the future does not withdraw it.
    pub fn append(
        &self,
        event: Event,
    ) -> impl Future<Output = Result<Seq, AuditError>> + Send + 'static {
        let (reply, done) = oneshot::channel();
        let sent = event.prepare().and_then(|event| {
            self.send(Request::Append {
                event,
                reply: Some(reply),
            })
        });
        async move {
            sent?;
            // Dropped unanswered only if the writer stopped first.
            done.await.map_err(|_| AuditError::Closed)?
        }
    }

    /// Queues `event` without waiting for it to be written; a failure to
    /// write it is logged. It is written within the commit window and
    /// fsynced within the sync interval (see [`AuditOptions`]). Fails at
    /// once for an invalid event or a closed log.
    pub fn append_nowait(&self, event: Event) -> Result<(), AuditError> {
        let event = event.prepare()?;
        self.send(Request::Append { event, reply: None })
    }

    /// Signs everything appended so far (unless already signed) and
    /// resolves to the latest checkpoint once it is on disk, for keeping
    /// off-site.
    pub fn export_checkpoint(
        &self,
    ) -> impl Future<Output = Result<ExportedCheckpoint, AuditError>> + Send + 'static {
        let (reply, done) = oneshot::channel();
        let sent = self.send(Request::Checkpoint { reply });
        async move {
            sent?;
            done.await.map_err(|_| AuditError::Closed)?
        }
    }

    fn send(&self, request: Request) -> Result<(), AuditError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AuditError::Closed);
        }
        self.tx.send(request).map_err(|_| AuditError::Closed)
    }
}

/// The open log: owns the writer thread. Dropping it closes the log.
#[derive(Debug)]
pub struct AuditLog {
    sink: AuditSink,
    path: PathBuf,
    recovery: Option<Recovery>,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AuditLog {
    /// Opens (creating it, and its directory with mode 0700, if absent) the
    /// log at `path` for appending. Fails with [`AuditError::Locked`] if
    /// another process has it open, with [`AuditError::TailCorrupt`] if the
    /// last record is damaged, and with [`AuditError::KeyMismatch`] if the
    /// log's last checkpoint was signed by another key than `signer`'s.
    pub fn open(
        path: &Path,
        signer: Arc<dyn CheckpointSigner>,
        clock: Arc<dyn Clock>,
        options: AuditOptions,
    ) -> Result<AuditLog, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let io = |e| AuditError::io(path, e);
        let mut opts = OpenOptions::new();
        opts.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path).map_err(io)?;
        file.try_lock().map_err(|e| match e {
            fs::TryLockError::WouldBlock => AuditError::Locked(path.to_path_buf()),
            fs::TryLockError::Error(e) => io(e),
        })?;
        let checkpoint_every = options.checkpoint_every.max(1);
        let (head, len, recovery) = recover(path, &file, checkpoint_every)?;
        let public = signer.public_key();
        if let Some(cp) = &head.last_checkpoint
            && cp.public_key != public
        {
            return Err(AuditError::KeyMismatch {
                log_key: cp.key_id.clone(),
                signer_key: key_id(&public),
            });
        }
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            file,
            path: path.to_path_buf(),
            len,
            rx,
            clock,
            signer,
            checkpoint_every,
            checkpoint_interval: options.checkpoint_interval,
            max_batch: options.max_batch.max(1),
            commit_window: options.commit_window,
            sync_interval: options.sync_interval,
            unsynced_since: None,
            last_write: None,
            head,
            counters: Arc::clone(&counters),
            failed: None,
        };
        let thread = std::thread::Builder::new()
            .name("civitas-audit-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| AuditError::Thread(Arc::new(e)))?;
        Ok(AuditLog {
            sink: AuditSink {
                tx,
                closed: Arc::new(AtomicBool::new(false)),
            },
            path: path.to_path_buf(),
            recovery,
            counters,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What opening repaired, if anything.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// A handle for appending from elsewhere.
    pub fn sink(&self) -> AuditSink {
        self.sink.clone()
    }

    /// See [`AuditSink::append`].
    pub fn append(
        &self,
        event: Event,
    ) -> impl Future<Output = Result<Seq, AuditError>> + Send + 'static {
        self.sink.append(event)
    }

    /// See [`AuditSink::append_nowait`].
    pub fn append_nowait(&self, event: Event) -> Result<(), AuditError> {
        self.sink.append_nowait(event)
    }

    /// See [`AuditSink::export_checkpoint`].
    pub fn export_checkpoint(
        &self,
    ) -> impl Future<Output = Result<ExportedCheckpoint, AuditError>> + Send + 'static {
        self.sink.export_checkpoint()
    }

    /// The last `n` records, oldest first (reads the file).
    pub fn tail(&self, n: usize) -> Result<Vec<Record>, AuditError> {
        crate::query::tail(&self.path, n)
    }

    /// Records matching `query` (reads the file).
    pub fn query(&self, query: Query) -> Result<QueryIter, AuditError> {
        crate::query::query(&self.path, query)
    }

    /// Verifies the file as written so far.
    pub fn verify(&self, trusted: Option<&ExportedCheckpoint>) -> Result<VerifyReport, AuditError> {
        crate::verify::verify(&self.path, trusted)
    }

    /// Writer counters since open.
    pub fn stats(&self) -> AuditStats {
        self.counters.snapshot()
    }

    /// Writes everything queued, signs the head with a final checkpoint,
    /// stops the writer and releases the file. Blocks until the last fsync
    /// is done. Later calls do nothing.
    pub fn close(&self) -> Result<(), AuditError> {
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(handle) = thread.take() else {
            return Ok(());
        };
        self.sink.closed.store(true, Ordering::Release);
        let (reply, done) = mpsc::channel();
        let result = match self.sink.tx.send(Request::Close { reply }) {
            Ok(()) => done.recv().unwrap_or(Err(AuditError::Closed)),
            Err(_) => Err(AuditError::Closed),
        };
        if handle.join().is_err() {
            tracing::error!("the audit writer thread panicked");
        }
        result
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "closing the audit log");
        }
    }
}

/// Creates `dir` (and its parents) owner-only if it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), AuditError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| AuditError::io(dir, e))
}

/// Repairs a torn final line and reads where the chain stands: the last
/// record, and up to `checkpoint_every` records before it to find the last
/// checkpoint.
fn recover(
    path: &Path,
    file: &File,
    checkpoint_every: u64,
) -> Result<(Head, u64, Option<Recovery>), AuditError> {
    let io = |e| AuditError::io(path, e);
    let corrupt = |reason: String| AuditError::TailCorrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut len = file.metadata().map_err(io)?.len();
    let reader = file.try_clone().map_err(io)?;
    let (mut lines, fragment) = ReverseLines::new(reader, len).map_err(io)?;
    let mut last = match lines.next_line().map_err(io)? {
        Some((offset, bytes)) => Some(
            read_record(&bytes)
                .map_err(|e| corrupt(format!("the last record (at byte {offset}) {e}")))?,
        ),
        None => None,
    };

    let mut recovery = None;
    if let Some(Fragment { offset, bytes }) = fragment {
        match parse_line(&bytes) {
            Ok(p) => {
                // A whole record whose newline never made it: keep it if it
                // continues the chain, refuse to guess otherwise.
                let (seq, prev) = last.as_ref().map_or((0, Digest::ZERO), |r| (r.seq, r.hash));
                if !p.canonical
                    || p.computed != p.record.hash
                    || p.record.seq != seq + 1
                    || p.record.prev != prev
                {
                    return Err(corrupt(format!(
                        "the unterminated last line (at byte {offset}) is a record that does not continue the chain"
                    )));
                }
                let mut append: &File = file;
                append.write_all(b"\n").map_err(io)?;
                file.sync_data().map_err(io)?;
                len += 1;
                tracing::warn!(path = %path.display(), seq = p.record.seq, "audit log ended without a newline after its last record; completed it");
                recovery = Some(Recovery::CompletedTail { seq: p.record.seq });
                last = Some(p.record);
            }
            Err(_) => {
                file.set_len(offset).map_err(io)?;
                file.sync_data().map_err(io)?;
                let bytes = len - offset;
                len = offset;
                tracing::warn!(path = %path.display(), offset, bytes, "audit log ended in a partial line (an interrupted write); removed it");
                recovery = Some(Recovery::TruncatedTail { offset, bytes });
            }
        }
    }

    let Some(last) = last else {
        let head = Head {
            seq: 0,
            hash: Digest::ZERO,
            time: Timestamp::EPOCH,
            unsigned: 0,
            first_unsigned: None,
            last_checkpoint: None,
        };
        return Ok((head, len, recovery));
    };
    let mut head = Head {
        seq: last.seq,
        hash: last.hash,
        time: last.time,
        unsigned: 0,
        first_unsigned: None,
        last_checkpoint: None,
    };
    // Walk back to the last checkpoint; records that are not one are the
    // unsigned tail. Damage further back is for verify to report.
    let mut record = Some(last);
    let mut walked = 0u64;
    while let Some(r) = record {
        if r.is_checkpoint() {
            head.last_checkpoint = ExportedCheckpoint::from_details(&r.details).ok();
            break;
        }
        head.unsigned += 1;
        head.first_unsigned = Some(r.time);
        walked += 1;
        if walked > checkpoint_every {
            break;
        }
        record = match lines.next_line().map_err(io)? {
            Some((_, bytes)) => read_record(&bytes).ok(),
            None => None,
        };
    }
    Ok((head, len, recovery))
}

/// A line that must be an intact record.
fn read_record(bytes: &[u8]) -> Result<Record, String> {
    let p = parse_line(bytes).map_err(|e| format!("is malformed: {e}"))?;
    if !p.canonical || p.computed != p.record.hash {
        return Err(format!("(seq {}) does not match its hash", p.record.seq));
    }
    Ok(p.record)
}
