//! The AWS IoT HTTPS device data plane for civitas, for devices that
//! cannot keep an MQTT connection (sleepy sensors, simple gateways).
//!
//! [`DeviceApi`] serves, on its own listener and over the same mutual-TLS
//! configuration as the broker (a client without a civitas certificate
//! never reaches HTTP):
//!
//! - `POST /topics/{topic}?qos=0|1&retain=true|false`: publishes the body
//!   as the device, authorized by `iot:Publish` (and `iot:RetainPublish`)
//!   exactly as an MQTT PUBLISH from the same certificate would be;
//! - `GET`, `POST`, `DELETE /things/{thing}/shadow[?name=NAME]`: the
//!   device shadow, authorized by `iot:GetThingShadow`,
//!   `iot:UpdateThingShadow` and `iot:DeleteThingShadow`, with the
//!   documents and error codes of the MQTT shadow topics.
//!
//! The device is the certificate's CommonName (its thing name, and the
//! client id its policies are resolved for); policies are resolved again
//! on every request, so registry changes apply at once.
//!
//! Layout: `config` the settings, `server` the listener and connections,
//! `routes` the requests, `authz` the policy checks, `target` URL paths and
//! queries, `response` the AWS-shaped answers.

mod authz;
mod config;
mod response;
mod routes;
mod server;
mod target;

pub use config::{DeviceApiConfig, Limits};
pub use server::DeviceApi;

/// Why the device API could not be served.
#[derive(Debug, thiserror::Error)]
pub enum DeviceApiError {
    #[error("device API: cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("device API: {0}")]
    Io(#[from] std::io::Error),
}
