//! Verification: walks the whole chain and every checkpoint, and names the
//! first problem precisely (which record, which line).
//!
//! The chain alone exposes a record that was edited (its hash no longer
//! matches), removed (a gap in `seq`), moved (`seq` out of order) or
//! inserted (its `prev` does not link). Someone who rewrites every record
//! from some point on, recomputing the hashes, is exposed by the next
//! signed checkpoint, which still names the old head; with no checkpoint
//! after the rewrite, or after cutting the log short, only a checkpoint
//! exported earlier and kept elsewhere (`trusted`) tells.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::checkpoint::ExportedCheckpoint;
use crate::error::AuditError;
use crate::lines::{ForwardLines, Line, MAX_LINE_BYTES};
use crate::record::{Digest, Seq, parse_line};

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

/// A final line without its newline: a write still going on, or cut short
/// by a crash (opening the log for writing removes it). Not a problem in
/// itself; no acknowledged record can be in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Its line number.
    pub line: u64,
    /// Its byte offset.
    pub offset: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The file verified.
    pub path: PathBuf,
    /// Records that verified (checkpoints included).
    pub records: u64,
    /// Checkpoints that verified.
    pub checkpoints: u64,
    /// The last record that verified: seq and hash.
    pub head: Option<(Seq, Digest)>,
    /// The last checkpoint that verified, with its own seq.
    pub last_checkpoint: Option<(Seq, ExportedCheckpoint)>,
    /// True when a trusted checkpoint was given and the log matches it.
    pub trusted_matched: bool,
    /// An unterminated final line, if any.
    pub torn_tail: Option<TornTail>,
    /// The first problem, if any; verification stops there.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }

    /// Records after the last checkpoint (not yet signed).
    pub fn unsigned_records(&self) -> u64 {
        let head = self.head.map_or(0, |(s, _)| s);
        let signed = self.last_checkpoint.as_ref().map_or(0, |(s, _)| *s);
        head - signed.min(head)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.problem {
            return match p.line() {
                Some(line) => write!(f, "{}:{line}: {p}", self.path.display()),
                None => write!(f, "{}: {p}", self.path.display()),
            };
        }
        write!(f, "{}: {} records", self.path.display(), self.records)?;
        if let Some((seq, _)) = self.head {
            write!(f, " (seq 1 to {seq})")?;
        }
        write!(f, ", {} checkpoints", self.checkpoints)?;
        if let Some((seq, cp)) = &self.last_checkpoint {
            write!(
                f,
                ", last at seq {seq} signed by key {} through seq {}",
                cp.key_id, cp.head_seq
            )?;
        }
        let unsigned = self.unsigned_records();
        if unsigned > 0 {
            write!(f, ", {unsigned} records after it not yet signed")?;
        }
        if self.trusted_matched {
            write!(f, "; matches the trusted checkpoint")?;
        }
        if let Some(t) = self.torn_tail {
            write!(
                f,
                "; line {} is an unfinished write of {} bytes",
                t.line, t.bytes
            )?;
        }
        Ok(())
    }
}

/// Verifies the log at `path`, against `trusted` (a checkpoint exported
/// earlier) when given. Errors only when the file cannot be read; whatever
/// is wrong inside it is the report's `problem`.
pub fn verify(
    path: &Path,
    trusted: Option<&ExportedCheckpoint>,
) -> Result<VerifyReport, AuditError> {
    let file = File::open(path).map_err(|e| AuditError::io(path, e))?;
    let mut v = Verifier {
        path,
        lines: ForwardLines::new(file),
        trusted,
        report: VerifyReport {
            path: path.to_path_buf(),
            records: 0,
            checkpoints: 0,
            head: None,
            last_checkpoint: None,
            trusted_matched: false,
            torn_tail: None,
            problem: None,
        },
        log_key: None,
    };
    v.report.problem = v.run()?;
    Ok(v.report)
}

struct Verifier<'a> {
    path: &'a Path,
    lines: ForwardLines,
    trusted: Option<&'a ExportedCheckpoint>,
    report: VerifyReport,
    /// Key of the first checkpoint; every later one must use it too.
    log_key: Option<ExportedCheckpoint>,
}

impl Verifier<'_> {
    fn next_line(&mut self) -> Result<Option<Line>, AuditError> {
        self.lines
            .next_line()
            .map_err(|e| AuditError::io(self.path, e))
    }

    fn run(&mut self) -> Result<Option<Problem>, AuditError> {
        if let Some(t) = self.trusted
            && let Err(reason) = t.verify_signature()
        {
            return Ok(Some(Problem::BadTrustedCheckpoint { reason }));
        }
        let mut expected: Seq = 1;
        let mut prev = Digest::ZERO;
        while let Some(line) = self.next_line()? {
            if !line.terminated {
                self.report.torn_tail = Some(TornTail {
                    line: line.number,
                    offset: line.offset,
                    bytes: line.bytes.len() as u64,
                });
                break;
            }
            let n = line.number;
            if line.too_long {
                return Ok(Some(Problem::Malformed {
                    line: n,
                    reason: format!("longer than {MAX_LINE_BYTES} bytes"),
                }));
            }
            let parsed = match parse_line(&line.bytes) {
                Ok(p) => p,
                Err(reason) => return Ok(Some(Problem::Malformed { line: n, reason })),
            };
            let r = parsed.record;
            if parsed.computed != r.hash {
                return Ok(Some(Problem::HashMismatch {
                    seq: r.seq,
                    line: n,
                }));
            }
            if !parsed.canonical {
                return Ok(Some(Problem::NotCanonical {
                    seq: r.seq,
                    line: n,
                }));
            }
            if r.seq != expected {
                return self.misplaced(expected, r.seq, n).map(Some);
            }
            if r.prev != prev {
                return Ok(Some(Problem::PrevMismatch {
                    seq: r.seq,
                    line: n,
                }));
            }
            if r.is_checkpoint()
                && let Some(p) = self.checkpoint(r.seq, n, &r.details, &prev)
            {
                return Ok(Some(p));
            }
            if let Some(t) = self.trusted
                && t.head_seq == r.seq
            {
                if t.head_hash != r.hash {
                    return Ok(Some(Problem::TrustedHeadMismatch {
                        seq: r.seq,
                        line: n,
                        since: self.signed_head(),
                    }));
                }
                self.report.trusted_matched = true;
            }
            prev = r.hash;
            expected += 1;
            self.report.records += 1;
            self.report.head = Some((r.seq, r.hash));
        }
        if let Some(t) = self.trusted
            && !self.report.trusted_matched
        {
            return Ok(Some(Problem::TruncatedBeforeTrusted {
                head_seq: t.head_seq,
                last_seq: self.report.head.map(|(s, _)| s),
            }));
        }
        Ok(None)
    }

    /// The head of the last checkpoint that verified.
    fn signed_head(&self) -> Option<Seq> {
        self.report
            .last_checkpoint
            .as_ref()
            .map(|(_, cp)| cp.head_seq)
    }

    fn checkpoint(
        &mut self,
        seq: Seq,
        line: u64,
        details: &serde_json::Map<String, serde_json::Value>,
        prev: &Digest,
    ) -> Option<Problem> {
        let cp = match ExportedCheckpoint::from_details(details) {
            Ok(cp) => cp,
            Err(reason) => return Some(Problem::BadCheckpoint { seq, line, reason }),
        };
        if cp.head_seq != seq - 1 {
            return Some(Problem::BadCheckpoint {
                seq,
                line,
                reason: format!("it signs seq {}, not the record before it", cp.head_seq),
            });
        }
        if let Err(reason) = cp.verify_signature() {
            return Some(if cp.key_id == crate::checkpoint::key_id(&cp.public_key) {
                Problem::BadCheckpointSignature { seq, line }
            } else {
                Problem::BadCheckpoint { seq, line, reason }
            });
        }
        if cp.head_hash != *prev {
            return Some(Problem::CheckpointHeadMismatch {
                seq,
                line,
                head_seq: cp.head_seq,
                since: self.signed_head(),
            });
        }
        if let Some(t) = self.trusted
            && t.public_key != cp.public_key
        {
            return Some(Problem::UntrustedCheckpointKey {
                seq,
                line,
                key_id: cp.key_id,
            });
        }
        match &self.log_key {
            Some(first) if first.public_key != cp.public_key => {
                return Some(Problem::CheckpointKeyChanged {
                    seq,
                    line,
                    key_id: cp.key_id,
                    expected_key_id: first.key_id.clone(),
                });
            }
            Some(_) => {}
            None => self.log_key = Some(cp.clone()),
        }
        self.report.checkpoints += 1;
        self.report.last_checkpoint = Some((seq, cp));
        None
    }

    /// Tells a removed record from moved or inserted ones by looking at
    /// the seqs that follow.
    fn misplaced(&mut self, expected: Seq, found: Seq, line: u64) -> Result<Problem, AuditError> {
        if found + 1 == expected {
            return Ok(Problem::Duplicate {
                seq: found,
                line,
                first_line: line - 1,
            });
        }
        // (line number, seq) of what follows; bounded, as this only runs
        // once a problem is certain.
        let mut rest: Vec<(u64, Option<Seq>)> = Vec::new();
        while rest.len() < LOOKAHEAD
            && let Some(l) = self.next_line()?
            && l.terminated
        {
            let seq = serde_json::from_slice::<SeqOnly>(&l.bytes)
                .ok()
                .map(|s| s.seq);
            rest.push((l.number, seq));
        }
        let seqs = || rest.iter().filter_map(|&(_, s)| s);
        let expected_at = rest
            .iter()
            .find(|&&(_, s)| s == Some(expected))
            .map(|&(l, _)| l);
        let Some(expected_at) = expected_at else {
            return Ok(if found > expected {
                Problem::Gap {
                    expected,
                    found,
                    line,
                }
            } else {
                Problem::Reordered {
                    expected,
                    found,
                    line,
                    expected_at: None,
                }
            });
        };
        // `expected` comes later. If `found` has no place of its own among
        // the rest it was moved here; otherwise it is an intruder.
        let last = seqs().max().unwrap_or(expected);
        let moved = !seqs().any(|s| s == found) && found > expected && found <= last + 1;
        Ok(if moved || expected_at != line + 1 {
            Problem::Reordered {
                expected,
                found,
                line,
                expected_at: Some(expected_at),
            }
        } else {
            Problem::Extra {
                expected,
                found,
                line,
            }
        })
    }
}

/// How many lines past a misplaced record are read to classify it.
const LOOKAHEAD: usize = 1 << 20;

#[derive(Deserialize)]
struct SeqOnly {
    seq: Seq,
}
