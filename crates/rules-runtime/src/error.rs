//! Errors of rule administration. Failures while rules run are not
//! errors to a caller: they go to the rule's error action, the metrics
//! and the log.

use civitas_store::StoreError;

use crate::document::DocumentError;

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The document (or the rule name) was refused; names the field.
    #[error("invalid rule: {0}")]
    Invalid(#[from] DocumentError),
    #[error("rule {0} does not exist")]
    NotFound(String),
    #[error("rule {0} already exists")]
    AlreadyExists(String),
    /// A `rule test` request that cannot run as given.
    #[error("{0}")]
    BadRequest(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl RulesError {
    /// A stable code for the admin protocol.
    pub fn code(&self) -> &'static str {
        match self {
            RulesError::Invalid(_) | RulesError::BadRequest(_) => "invalid",
            RulesError::NotFound(_) => "not_found",
            RulesError::AlreadyExists(_) => "already_exists",
            RulesError::Store(_) => "internal",
        }
    }
}
