//! The crate's error type.
//!
//! `AuditError` is `Clone` because one failed batch is reported to every
//! caller waiting on it; I/O and KMS errors are shared behind an `Arc`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use civitas_kms::KmsError;

/// What can go wrong writing or reading the audit log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Another process holds the log open for writing.
    #[error("{} is already open for writing by another process", .0.display())]
    Locked(PathBuf),
    /// The event cannot be recorded as given.
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
    /// A record cannot be read or encoded.
    #[error("invalid audit record: {0}")]
    InvalidRecord(String),
    /// A line of the log is not a well-formed record.
    #[error("{}: malformed audit record: {reason}", location(path, *line, *offset))]
    Malformed {
        /// The log file.
        path: PathBuf,
        /// One-based line number, when known (reading backwards does not
        /// count lines).
        line: Option<u64>,
        /// Byte offset of the line.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The records the writer would continue from are damaged, so appending
    /// would extend a broken chain.
    #[error("{}: the end of the audit log is damaged ({reason}); run `civitas audit verify`", path.display())]
    TailCorrupt {
        /// The log file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The log's checkpoints are signed with a different key than the one
    /// offered to the writer.
    #[error(
        "the audit log's checkpoints are signed by key {log_key}, not by the configured key {signer_key}"
    )]
    KeyMismatch {
        /// Key id found in the log's last checkpoint.
        log_key: String,
        /// Key id of the signer handed to `open`.
        signer_key: String,
    },
    /// The log was closed.
    #[error("the audit log is closed")]
    Closed,
    /// An earlier write or fsync failed; what reached the disk is unknown,
    /// so the writer refuses to go on.
    #[error("the audit log stopped after a failed write: {0}")]
    Failed(String),
    /// There is no record to checkpoint yet.
    #[error("the audit log has no records yet, so there is no checkpoint")]
    Empty,
    /// The checkpoint key could not be created, loaded or used.
    #[error("audit checkpoint key: {0}")]
    Key(String),
    /// The KMS refused to seal or unseal the checkpoint key.
    #[error("sealing the audit checkpoint key: {0}")]
    Kms(#[source] Arc<KmsError>),
    /// An exported checkpoint could not be read.
    #[error("invalid exported checkpoint: {0}")]
    BadCheckpoint(String),
    /// The writer thread could not be started.
    #[error("starting the audit writer thread: {0}")]
    Thread(#[source] Arc<std::io::Error>),
}

impl AuditError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> AuditError {
        AuditError::Io {
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }
}

fn location(path: &Path, line: Option<u64>, offset: u64) -> String {
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => format!("{} (byte {offset})", path.display()),
    }
}

impl From<KmsError> for AuditError {
    fn from(e: KmsError) -> AuditError {
        AuditError::Kms(Arc::new(e))
    }
}
