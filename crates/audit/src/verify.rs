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
use crate::problem::Problem;
use crate::record::{Digest, Seq, parse_line};

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
