//! Errors of the rules SQL: [`SqlError`] when a statement is refused at parse
//! time (with the line and column of the offending text) and [`EvalError`]
//! when evaluating a parsed rule against a message cannot go on.
//!
//! Most evaluation problems are not errors: AWS semantics turn them into
//! `Undefined`. An [`EvalError`] means the rule could not run at all (a
//! missing injected source, a failing shadow lookup), which the runtime
//! reports through the rule's error action.

use std::fmt;

/// A place in the SQL text: 1-based line and column (in characters), plus
/// the byte offset it was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub column: u32,
    pub offset: usize,
}

impl Position {
    /// The line and column of byte `offset` in `src` (clamped to its end).
    pub fn at(src: &str, offset: usize) -> Position {
        let offset = offset.min(src.len());
        let mut line = 1u32;
        let mut column = 1u32;
        for (i, c) in src.char_indices() {
            if i >= offset {
                break;
            }
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Position {
            line,
            column,
            offset,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A statement refused by the parser: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {message}")]
pub struct SqlError {
    pub position: Position,
    pub message: String,
}

impl SqlError {
    pub(crate) fn new(src: &str, offset: usize, message: impl Into<String>) -> SqlError {
        SqlError {
            position: Position::at(src, offset),
            message: message.into(),
        }
    }
}

/// Error reported by an injected shadow lookup (storage failure and the
/// like; a thing or shadow that does not exist is `Ok(None)`, not an error).
pub type ShadowError = Box<dyn std::error::Error + Send + Sync>;

/// Why a rule could not be evaluated against a message.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The rule calls a function whose source the runtime did not inject.
    #[error("{0}() needs a source in the evaluation context, and none was given")]
    MissingSource(&'static str),
    /// The injected shadow lookup failed.
    #[error("get_thing_shadow('{thing}') failed: {source}")]
    ShadowLookup {
        thing: String,
        #[source]
        source: ShadowError,
    },
    /// `SELECT *, …` adds keys to the payload object, which a non-JSON
    /// payload does not have (only a lone `SELECT *` passes raw bytes on).
    #[error("SELECT * with other items needs a JSON object payload, and this payload is not one")]
    PayloadNotObject,
}
