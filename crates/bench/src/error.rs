//! The bench's error type: what went wrong, with the file, process or
//! scenario it concerns.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("certificates: {0}")]
    Pki(#[from] civitas_pki::PkiError),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("MQTT: {0}")]
    Mqtt(String),
    #[error("{broker}: {reason}")]
    Broker { broker: String, reason: String },
    #[error("scenario {scenario} on {broker}: {reason}")]
    Scenario {
        scenario: String,
        broker: String,
        reason: String,
    },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    Usage(String),
    #[error("{failed} scenario run(s) failed; see the report")]
    RunsFailed { failed: usize },
}

impl BenchError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BenchError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = BenchError> = std::result::Result<T, E>;
