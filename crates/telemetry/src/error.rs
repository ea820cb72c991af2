//! The crate's error type, and the per-block problems a query reports
//! instead of failing.
//!
//! A query over many blocks does not fail because one block is unreadable:
//! the block is left out of the data and named in the result as an
//! [`Unreadable`], with its location, so that one tampered block or one
//! shredded device cannot hide everyone else's readings.

use std::fmt;

use civitas_kms::KmsError;
use civitas_store::StoreError;

use crate::signature::SignatureError;

/// Everything that can make a telemetry operation fail as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// A reading breaks a rule; nothing of its batch was stored.
    #[error("invalid reading for {thing:?}: {reason}")]
    InvalidReading { thing: String, reason: String },

    /// The device's key was destroyed: its telemetry is shredded and no new
    /// readings are accepted for it.
    #[error("telemetry of {thing:?} was shredded; its key is destroyed")]
    KeyDestroyed { thing: String },

    /// The key-management service refused.
    #[error("key management: {0}")]
    Kms(#[from] KmsError),

    /// The store failed (I/O, closed, ...).
    #[error("store: {0}")]
    Store(#[from] StoreError),

    /// The store's telemetry was cut into periods of another length.
    #[error(
        "the telemetry in this store uses periods of {stored_ms} ms, the configuration asks for \
         {configured_ms} ms; the period cannot change once telemetry is stored"
    )]
    PeriodMismatch { stored_ms: u64, configured_ms: u64 },

    /// Options out of their documented bounds.
    #[error("invalid telemetry options: {0}")]
    InvalidOptions(&'static str),

    /// A query that cannot be answered as asked.
    #[error("invalid query: {0}")]
    InvalidQuery(String),

    /// A reading's signature did not verify.
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),

    /// A blocking task panicked or was cancelled.
    #[error("a telemetry task failed: {0}")]
    Task(String),
}

/// Where a block lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlockLocation {
    pub thing: String,
    /// Start of the block's period, unix ms.
    pub period_start_ms: u64,
    pub block: u32,
}

impl fmt::Display for BlockLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "thing {:?}, period starting {} ms, block {}",
            self.thing, self.period_start_ms, self.block
        )
    }
}

/// Data a query left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The device's key was destroyed: `blocks` blocks in range were skipped
    /// (reported once per device).
    Shredded { thing: String, blocks: u64 },
    /// A block failed authentication or does not parse: it was altered,
    /// moved to another place (wrong context), or damaged. `chunk` names
    /// the chunk when one chunk is at fault.
    Corrupt {
        location: BlockLocation,
        chunk: Option<u32>,
        reason: String,
    },
    /// The key needed is not usable for another reason (unknown key,
    /// retired version, KMS failure).
    KeyUnavailable {
        location: BlockLocation,
        reason: String,
    },
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreadable::Shredded { thing, blocks } => {
                write!(
                    f,
                    "telemetry of {thing:?} is shredded ({blocks} block(s) skipped)"
                )
            }
            Unreadable::Corrupt {
                location,
                chunk: Some(chunk),
                reason,
            } => write!(f, "corrupt block ({location}, chunk {chunk}): {reason}"),
            Unreadable::Corrupt {
                location,
                chunk: None,
                reason,
            } => write!(f, "corrupt block ({location}): {reason}"),
            Unreadable::KeyUnavailable { location, reason } => {
                write!(f, "key unavailable for block ({location}): {reason}")
            }
        }
    }
}
