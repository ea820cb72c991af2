//! What verification can find wrong with a log, each variant naming the
//! record (by seq) and the line it is on.

use std::fmt;

use crate::record::Seq;

/// The first thing wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A line is not a record at all.
    Malformed {
        /// One-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A record's content no longer matches its hash: it was changed.
    HashMismatch {
        /// The seq the record carries.
        seq: Seq,
        /// Its line.
        line: u64,
    },
    /// A record matches its hash but is not written in canonical form, so
    /// its line was edited.
    NotCanonical {
        /// The seq the record carries.
        seq: Seq,
        /// Its line.
        line: u64,
    },
    /// Records are missing: `expected` is absent, `found` is in its place.
    Gap {
        /// The seq that should have come next.
        expected: Seq,
        /// The seq that came instead.
        found: Seq,
        /// The line of `found`.
        line: u64,
    },
    /// Records are out of order.
    Reordered {
        /// The seq that should have come next.
        expected: Seq,
        /// The seq that came instead.
        found: Seq,
        /// The line of `found`.
        line: u64,
        /// Where `expected` is, if it comes later.
        expected_at: Option<u64>,
    },
    /// A record that does not belong was inserted before `expected`.
    Extra {
        /// The seq that should have come next (and does, on the next line).
        expected: Seq,
        /// The seq the inserted record carries.
        found: Seq,
        /// Its line.
        line: u64,
    },
    /// Two consecutive records claim the same seq: one was inserted.
    Duplicate {
        /// The seq both claim.
        seq: Seq,
        /// The line of the second.
        line: u64,
        /// The line of the first.
        first_line: u64,
    },
    /// A record does not link to the one before it: it was inserted or
    /// its predecessor replaced.
    PrevMismatch {
        /// Its seq.
        seq: Seq,
        /// Its line.
        line: u64,
    },
    /// A checkpoint record's details are not a valid checkpoint.
    BadCheckpoint {
        /// The checkpoint's seq.
        seq: Seq,
        /// Its line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint signs a head the chain no longer has: the records
    /// after `since` (the previous good checkpoint's head) were rewritten.
    CheckpointHeadMismatch {
        /// The checkpoint's seq.
        seq: Seq,
        /// Its line.
        line: u64,
        /// The head it signs (`seq - 1`).
        head_seq: Seq,
        /// The head of the previous good checkpoint, if any.
        since: Option<Seq>,
    },
    /// A checkpoint's signature does not verify.
    BadCheckpointSignature {
        /// The checkpoint's seq.
        seq: Seq,
        /// Its line.
        line: u64,
    },
    /// A checkpoint is signed by another key than the earlier ones.
    CheckpointKeyChanged {
        /// The checkpoint's seq.
        seq: Seq,
        /// Its line.
        line: u64,
        /// Its key id.
        key_id: String,
        /// The key id of the earlier checkpoints.
        expected_key_id: String,
    },
    /// A checkpoint is signed by another key than the trusted checkpoint.
    UntrustedCheckpointKey {
        /// The checkpoint's seq.
        seq: Seq,
        /// Its line.
        line: u64,
        /// Its key id.
        key_id: String,
    },
    /// The trusted checkpoint itself does not verify.
    BadTrustedCheckpoint {
        /// What is wrong.
        reason: String,
    },
    /// The record the trusted checkpoint vouches for has another hash: the
    /// history up to it was rewritten.
    TrustedHeadMismatch {
        /// The trusted checkpoint's head seq.
        seq: Seq,
        /// The line of that record.
        line: u64,
        /// The head of the last good in-log checkpoint before it, if any.
        since: Option<Seq>,
    },
    /// The log ends before the record the trusted checkpoint vouches for.
    TruncatedBeforeTrusted {
        /// The trusted checkpoint's head seq.
        head_seq: Seq,
        /// The last record left, if any.
        last_seq: Option<Seq>,
    },
}

impl Problem {
    /// The seq the problem is about (for an out-of-place record, the seq
    /// that was expected there).
    pub fn seq(&self) -> Option<Seq> {
        match self {
            Problem::Malformed { .. } | Problem::BadTrustedCheckpoint { .. } => None,
            Problem::HashMismatch { seq, .. }
            | Problem::NotCanonical { seq, .. }
            | Problem::PrevMismatch { seq, .. }
            | Problem::Duplicate { seq, .. }
            | Problem::BadCheckpoint { seq, .. }
            | Problem::CheckpointHeadMismatch { seq, .. }
            | Problem::BadCheckpointSignature { seq, .. }
            | Problem::CheckpointKeyChanged { seq, .. }
            | Problem::UntrustedCheckpointKey { seq, .. }
            | Problem::TrustedHeadMismatch { seq, .. } => Some(*seq),
            Problem::Gap { expected, .. }
            | Problem::Reordered { expected, .. }
            | Problem::Extra { expected, .. } => Some(*expected),
            Problem::TruncatedBeforeTrusted { head_seq, .. } => Some(*head_seq),
        }
    }

    /// The line of the file it was found on.
    pub fn line(&self) -> Option<u64> {
        match self {
            Problem::Malformed { line, .. }
            | Problem::HashMismatch { line, .. }
            | Problem::NotCanonical { line, .. }
            | Problem::Gap { line, .. }
            | Problem::Reordered { line, .. }
            | Problem::Extra { line, .. }
            | Problem::PrevMismatch { line, .. }
            | Problem::Duplicate { line, .. }
            | Problem::BadCheckpoint { line, .. }
            | Problem::CheckpointHeadMismatch { line, .. }
            | Problem::BadCheckpointSignature { line, .. }
            | Problem::CheckpointKeyChanged { line, .. }
            | Problem::UntrustedCheckpointKey { line, .. }
            | Problem::TrustedHeadMismatch { line, .. } => Some(*line),
            Problem::BadTrustedCheckpoint { .. } | Problem::TruncatedBeforeTrusted { .. } => None,
        }
    }
}

fn after(since: &Option<Seq>) -> String {
    match since {
        Some(s) => format!("after seq {s}, the previous signed head"),
        None => "before it; no earlier checkpoint narrows it down".into(),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Malformed { reason, .. } => write!(f, "malformed line: {reason}"),
            Problem::HashMismatch { seq, .. } => {
                write!(f, "record changed: hash mismatch at seq {seq}")
            }
            Problem::NotCanonical { seq, .. } => write!(
                f,
                "record changed: the line of seq {seq} is not in canonical form"
            ),
            Problem::Gap {
                expected, found, ..
            } => write!(
                f,
                "record removed: expected seq {expected}, found seq {found}"
            ),
            Problem::Reordered {
                expected,
                found,
                expected_at,
                ..
            } => {
                write!(
                    f,
                    "records reordered: expected seq {expected}, found seq {found}"
                )?;
                match expected_at {
                    Some(l) => write!(f, " (seq {expected} is on line {l})"),
                    None => Ok(()),
                }
            }
            Problem::Extra {
                expected, found, ..
            } => write!(
                f,
                "record injected: a record claiming seq {found} stands before seq {expected}"
            ),
            Problem::Duplicate {
                seq, first_line, ..
            } => write!(
                f,
                "record injected: seq {seq} appears twice (also on line {first_line})"
            ),
            Problem::PrevMismatch { seq, .. } => write!(
                f,
                "record injected: prev mismatch at seq {seq} (it does not link to seq {})",
                seq.saturating_sub(1)
            ),
            Problem::BadCheckpoint { seq, reason, .. } => {
                write!(f, "bad checkpoint at seq {seq}: {reason}")
            }
            Problem::CheckpointHeadMismatch {
                seq,
                head_seq,
                since,
                ..
            } => write!(
                f,
                "history rewritten: the checkpoint at seq {seq} signs a different seq {head_seq} than the log holds; records were rewritten {}",
                after(since)
            ),
            Problem::BadCheckpointSignature { seq, .. } => {
                write!(f, "bad checkpoint signature at seq {seq}")
            }
            Problem::CheckpointKeyChanged {
                seq,
                key_id,
                expected_key_id,
                ..
            } => write!(
                f,
                "checkpoint at seq {seq} is signed by key {key_id}, earlier checkpoints by key {expected_key_id}"
            ),
            Problem::UntrustedCheckpointKey { seq, key_id, .. } => write!(
                f,
                "checkpoint at seq {seq} is signed by key {key_id}, not by the trusted checkpoint's key"
            ),
            Problem::BadTrustedCheckpoint { reason } => {
                write!(f, "the trusted checkpoint does not verify: {reason}")
            }
            Problem::TrustedHeadMismatch { seq, since, .. } => write!(
                f,
                "history rewritten: the record at seq {seq} differs from the trusted checkpoint; records were rewritten {}",
                after(since)
            ),
            Problem::TruncatedBeforeTrusted { head_seq, last_seq } => match last_seq {
                Some(last) => write!(
                    f,
                    "log truncated: it ends at seq {last}, before seq {head_seq} of the trusted checkpoint"
                ),
                None => write!(
                    f,
                    "log truncated: it holds no records, the trusted checkpoint vouches for seq {head_seq}"
                ),
            },
        }
    }
}
