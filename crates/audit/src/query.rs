//! Reading records back: the last few ([`tail`]) and those matching a
//! filter ([`query`]), streaming the file without holding it in memory.
//! Neither checks the chain; that is [`crate::verify`]'s job. A final line
//! still being written (no newline yet) is skipped.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::clock::Timestamp;
use crate::error::AuditError;
use crate::lines::{ForwardLines, ReverseLines};
use crate::record::{Outcome, Record, parse_line};

/// Which records [`query`] returns. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Records at or after this time.
    pub since: Option<Timestamp>,
    /// Records before this time.
    pub until: Option<Timestamp>,
    /// Records by exactly this actor.
    pub actor: Option<String>,
    /// Records with exactly this action, or, when it ends in `.*`, with an
    /// action under that prefix (`device.*` matches `device.connect`).
    pub action: Option<String>,
    /// Records with this outcome.
    pub outcome: Option<Outcome>,
    /// At most this many records.
    pub limit: Option<usize>,
}

impl Query {
    /// Whether `r` passes every filter (the limit aside).
    pub fn matches(&self, r: &Record) -> bool {
        self.since.is_none_or(|t| r.time >= t)
            && self.until.is_none_or(|t| r.time < t)
            && self.actor.as_ref().is_none_or(|a| &r.actor == a)
            && self.outcome.is_none_or(|o| r.outcome == o)
            && self
                .action
                .as_ref()
                .is_none_or(|a| match a.strip_suffix(".*") {
                    Some(prefix) => r
                        .action
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('.')),
                    None => &r.action == a,
                })
    }
}

/// The matching records, oldest first. A line that is not a record yields
/// an [`AuditError::Malformed`] naming it; iteration goes on after it.
pub struct QueryIter {
    path: PathBuf,
    lines: ForwardLines,
    query: Query,
    returned: usize,
}

impl Iterator for QueryIter {
    type Item = Result<Record, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.query.limit.is_some_and(|l| self.returned >= l) {
                return None;
            }
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(e) => {
                    self.query.limit = Some(0);
                    return Some(Err(AuditError::io(&self.path, e)));
                }
            };
            if !line.terminated {
                return None;
            }
            let record = match parse_line(&line.bytes) {
                Ok(p) => p.record,
                Err(reason) => {
                    return Some(Err(AuditError::Malformed {
                        path: self.path.clone(),
                        line: Some(line.number),
                        offset: line.offset,
                        reason,
                    }));
                }
            };
            if self.query.matches(&record) {
                self.returned += 1;
                return Some(Ok(record));
            }
        }
    }
}

/// Streams the records of the log at `path` that match `query`.
pub fn query(path: &Path, query: Query) -> Result<QueryIter, AuditError> {
    let file = File::open(path).map_err(|e| AuditError::io(path, e))?;
    Ok(QueryIter {
        path: path.to_path_buf(),
        lines: ForwardLines::new(file),
        query,
        returned: 0,
    })
}

/// The last `n` records of the log at `path`, oldest first, read from the
/// end of the file.
pub fn tail(path: &Path, n: usize) -> Result<Vec<Record>, AuditError> {
    let io = |e| AuditError::io(path, e);
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let (mut lines, _fragment) = ReverseLines::new(file, len).map_err(io)?;
    let mut out = Vec::with_capacity(n.min(1024));
    while out.len() < n {
        let Some((offset, bytes)) = lines.next_line().map_err(io)? else {
            break;
        };
        let record = parse_line(&bytes).map_err(|reason| AuditError::Malformed {
            path: path.to_path_buf(),
            // Counting lines would mean reading the whole file; the byte
            // offset locates it as well.
            line: None,
            offset,
            reason,
        })?;
        out.push(record.record);
    }
    out.reverse();
    Ok(out)
}
