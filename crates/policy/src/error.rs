//! The one error type of this crate: why a policy document was refused.
//!
//! Messages name the place in the document (`Statement[2].Resource[0]`, plus
//! the statement's `Sid` when it has one) so that an operator can fix the
//! document without guessing which of several similar statements is wrong.

use std::fmt;

use thiserror::Error;

/// Where in a policy document a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Index of the statement in `Statement` (0 when `Statement` is a single
    /// object), or `None` for a top-level field.
    pub statement: Option<usize>,
    /// The statement's `Sid`, when it has a valid one.
    pub sid: Option<String>,
    /// The field, with an index for list elements: `Resource[1]`, `Effect`.
    pub field: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.statement {
            Some(index) if self.field.is_empty() => write!(f, "Statement[{index}]")?,
            Some(index) => write!(f, "Statement[{index}].{}", self.field)?,
            None => f.write_str(&self.field)?,
        }
        if let Some(sid) = &self.sid {
            write!(f, " (Sid {sid:?})")?;
        }
        Ok(())
    }
}

/// A policy document or policy name that civitas refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// The text is not JSON at all.
    #[error("policy document is not valid JSON: {0}")]
    Json(String),
    /// Over the AWS IoT size limit (counted without whitespace).
    #[error("policy document has {chars} characters excluding whitespace; the limit is {limit}")]
    TooLarge { chars: usize, limit: usize },
    /// Valid JSON, but not a valid policy.
    #[error("{location}: {problem}")]
    Invalid { location: Location, problem: String },
    /// A policy name AWS IoT would refuse.
    #[error("policy name {name:?} is invalid: {problem}")]
    InvalidName { name: String, problem: &'static str },
}

impl PolicyError {
    pub(crate) fn top(field: &str, problem: impl Into<String>) -> Self {
        PolicyError::Invalid {
            location: Location {
                statement: None,
                sid: None,
                field: field.to_owned(),
            },
            problem: problem.into(),
        }
    }
}
