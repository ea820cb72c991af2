//! civitas' tamper-evident security record.
//!
//! Every security event (device connects and authentication failures,
//! certificate and policy changes, key operations, operator actions,
//! commands sent to devices) becomes one [`Record`] in an append-only JSON
//! Lines file. Each record carries the SHA-256 of its predecessor's
//! canonical encoding, so editing, removing, reordering or inserting a
//! record breaks the chain; every so often the writer appends a checkpoint
//! signed with an Ed25519 key kept sealed by the KMS, and an exported
//! checkpoint kept off-site also exposes a rewritten or truncated history.
//! The exact format is in `docs/audit-log.md`.
//!
//! Writing: [`AuditLog::open`] on [`log_path`] under the data directory,
//! then [`AuditSink::append`] (resolves once the record is on disk) or
//! [`AuditSink::append_nowait`] from any number of cheap [`AuditSink`]
//! clones; one writer thread groups them into batches, each one `write`,
//! fsynced before any caller waiting for it is answered (batches nobody
//! waits for are fsynced within `AuditOptions::sync_interval`).
//! Reading needs no writer: [`verify`], [`tail`] and [`query`] take a path.
//! Time always comes from a [`Clock`]; nothing here reads one on its own.
//!
//! ```
//! # async fn demo() -> Result<(), civitas_audit::AuditError> {
//! use std::sync::Arc;
//! use civitas_audit::{AuditLog, AuditOptions, Ed25519Signer, Event, Outcome, SystemClock};
//!
//! let data_dir = tempfile::tempdir().expect("temp dir");
//! let path = civitas_audit::log_path(data_dir.path());
//! // In production the key comes from `load_or_create_signer`, sealed by the KMS.
//! let (signer, _pkcs8) = Ed25519Signer::generate()?;
//! let log = AuditLog::open(&path, Arc::new(signer), Arc::new(SystemClock), AuditOptions::default())?;
//! let sink = log.sink(); // cheap to clone; hand it to whatever emits events
//! let seq = sink
//!     .append(
//!         Event::new("operator:alice", "cert.revoke", "serial:0a", Outcome::Success)
//!             .detail("reason", "key compromise"),
//!     )
//!     .await?; // on disk now
//! assert_eq!(seq, 1);
//! let trusted = log.export_checkpoint().await?; // keep this off-site
//! log.close()?; // signs the head once more
//! let report = civitas_audit::verify(&path, Some(&trusted))?;
//! assert!(report.is_ok(), "{report}");
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().expect("runtime").block_on(demo()).expect("demo");
//! ```

mod canonical;
mod checkpoint;
mod clock;
mod error;
mod hex;
mod lines;
mod log;
mod problem;
mod query;
mod record;
mod sealed_key;
mod verify;
mod writer;

pub use checkpoint::{
    CHECKPOINT_ACTION, CheckpointSigner, Ed25519Signer, ExportedCheckpoint, SIGNATURE_DOMAIN,
    checkpoint_message, key_id,
};
pub use clock::{Clock, SystemClock, Timestamp};
pub use error::AuditError;
pub use log::{AUDIT_DIR, AuditLog, AuditOptions, AuditSink, LOG_FILE_NAME, Recovery, log_path};
pub use problem::Problem;
pub use query::{Query, QueryIter, query, tail};
pub use record::{Digest, Event, MAX_DETAILS_BYTES, Outcome, Record, Seq};
pub use sealed_key::{SEALED_KEY_FILE_NAME, kms_context, load_or_create_signer, sealed_key_path};
pub use verify::{TornTail, VerifyReport, verify};
pub use writer::AuditStats;
