//! The `[device_api]` settings and the limits they turn into.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[device_api]` section of the civitas configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceApiConfig {
    /// Off unless asked for: a second public port is a deliberate choice.
    pub enabled: bool,
    pub bind: SocketAddr,
    /// Connections served at once; further ones are closed on accept.
    pub max_connections: usize,
    /// Seconds a client has for the TLS handshake and for each request
    /// (headers, body and answer).
    pub request_timeout_secs: u64,
    /// Largest publish or shadow request body, in bytes (AWS: 128 KiB).
    pub max_payload_bytes: usize,
}

impl Default for DeviceApiConfig {
    fn default() -> Self {
        DeviceApiConfig {
            enabled: true,
            bind: SocketAddr::from(([0, 0, 0, 0], 8443)),
            max_connections: 1024,
            request_timeout_secs: 10,
            max_payload_bytes: 128 * 1024,
        }
    }
}

impl DeviceApiConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections.max(1),
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            max_payload_bytes: self.max_payload_bytes,
        }
    }
}

/// What one [`crate::DeviceApi`] allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub request_timeout: Duration,
    pub max_payload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        DeviceApiConfig::default().limits()
    }
}
