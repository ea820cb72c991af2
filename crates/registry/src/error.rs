//! The registry's error type, and the stable codes the admin protocol
//! reports it with.

use civitas_pki::PkiError;
use civitas_policy::PolicyError;
use civitas_store::{CertificateStatus, StoreError};

/// Why a registry operation failed. Messages name the offending object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A name breaks the AWS IoT naming rules for its kind.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        kind: &'static str,
        name: String,
        reason: String,
    },

    /// An argument other than a name is unusable.
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },

    /// A policy document was refused; the message points into it
    /// (`Statement[1].Action[0]: ...`).
    #[error("{0}")]
    InvalidPolicy(#[from] PolicyError),

    #[error("{kind} {name:?} does not exist")]
    NotFound { kind: &'static str, name: String },

    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: &'static str, name: String },

    /// The change contradicts what is stored (a policy still attached, a
    /// group cycle, a revoked certificate reactivated, ...).
    #[error("{0}")]
    Conflict(String),

    /// A certificate is known but may not be used to connect.
    #[error("certificate {serial} is {status}")]
    CertificateNotActive {
        serial: String,
        status: CertificateStatus,
    },

    /// An enrollment or ownership token was refused. The reason is for
    /// operators; devices should be told no more than "refused".
    #[error("{kind} token refused: {reason}")]
    TokenRefused {
        kind: &'static str,
        reason: &'static str,
    },

    #[error("certificate authority: {0}")]
    Pki(#[from] PkiError),

    #[error("registry store: {0}")]
    Store(#[from] StoreError),

    /// Something stored could not be used (a stored document that no
    /// longer parses, for example).
    #[error("registry data is inconsistent: {0}")]
    Corrupt(String),
}

impl RegistryError {
    /// A stable, machine-readable code: `invalid`, `not_found`,
    /// `already_exists`, `conflict`, `refused` or `internal`.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::InvalidName { .. }
            | RegistryError::Invalid { .. }
            | RegistryError::InvalidPolicy(_) => "invalid",
            RegistryError::Pki(
                PkiError::InvalidCsr(_)
                | PkiError::InvalidName { .. }
                | PkiError::InvalidSerial { .. }
                | PkiError::InvalidValidity(_),
            ) => "invalid",
            RegistryError::NotFound { .. } => "not_found",
            RegistryError::AlreadyExists { .. } => "already_exists",
            RegistryError::Conflict(_) => "conflict",
            RegistryError::CertificateNotActive { .. } | RegistryError::TokenRefused { .. } => {
                "refused"
            }
            RegistryError::Pki(_) | RegistryError::Store(_) | RegistryError::Corrupt(_) => {
                "internal"
            }
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> RegistryError {
        RegistryError::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(kind: &'static str, name: impl Into<String>) -> RegistryError {
        RegistryError::NotFound {
            kind,
            name: name.into(),
        }
    }

    pub(crate) fn exists(kind: &'static str, name: impl Into<String>) -> RegistryError {
        RegistryError::AlreadyExists {
            kind,
            name: name.into(),
        }
    }
}
