//! The crate's error type.
//!
//! Every failure that concerns a file carries its path, so an operator reading
//! a log line knows which file to inspect without guessing.

use std::path::PathBuf;

/// Errors from the certificate authority, certificate parsing and TLS setup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read, written or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file that must be present is absent.
    #[error("{}: file is missing", path.display())]
    Missing { path: PathBuf },

    /// A file exists but its content is not what it should be.
    #[error("{}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },

    /// Creating a CA would overwrite one that already exists.
    #[error("{}: a certificate authority already exists here; refusing to overwrite it", path.display())]
    AlreadyExists { path: PathBuf },

    /// Key generation, signing or DER encoding failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),

    /// A certificate signing request was malformed, carried a bad signature
    /// or asked for something this CA does not issue.
    #[error("certificate signing request refused: {0}")]
    InvalidCsr(String),

    /// A subject name (thing name, DNS name) cannot be put in a certificate.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },

    /// A serial number given as hex could not be understood.
    #[error("invalid serial number {serial:?}: {reason}")]
    InvalidSerial { serial: String, reason: String },

    /// A requested validity period is empty, negative or out of range.
    #[error("invalid validity period: {0}")]
    InvalidValidity(String),

    /// The system's cryptographic library failed (no randomness, for example).
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),

    /// A DER certificate (for example a TLS peer's) could not be parsed.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),

    /// A TLS configuration asks for something contradictory.
    #[error("invalid TLS configuration: {0}")]
    Config(String),

    /// rustls refused the configuration built from the named files.
    #[error("TLS configuration from {files}: {source}")]
    Tls {
        files: String,
        #[source]
        source: rustls::Error,
    },

    /// The client-certificate verifier could not be built from the named CA/CRL files.
    #[error("client certificate verifier from {files}: {source}")]
    Verifier {
        files: String,
        #[source]
        source: rustls::server::VerifierBuilderError,
    },

    /// A client resumed a TLS session, but its certificate no longer
    /// passes verification (revoked since, expired, or its CA removed).
    #[error("resumed TLS session refused: {0}")]
    ResumedClientRefused(String),
}

impl PkiError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            PkiError::Missing { path }
        } else {
            PkiError::Io { path, source }
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        PkiError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
