//! Test support for civitas: a certificate authority in a temp dir, a
//! whole broker on port 0 that can be stopped and restarted over the same
//! data, rustls client configurations for real MQTT clients, and
//! `wait_for` helpers that poll a condition instead of sleeping.

mod assembly;
mod clients;
pub mod external;
mod listeners;
mod pki;
mod server;
mod wait;
mod websocket;

pub use assembly::{Assembly, AssemblyFactory};
pub use clients::{ClientTls, client_config, mtls_tunnel};
pub use listeners::listener;
pub use pki::{DeviceFiles, TestPki};
pub use server::{ServiceFactory, TestBroker, TestBrokerOptions};
pub use wait::{wait_for, wait_for_async};
pub use websocket::{ClientWebSocket, Io, ws_connect, ws_tunnel};

/// Install the aws-lc-rs provider as the process default (rumqttc builds
/// rustls configs through the default provider) and a test log subscriber.
pub fn init() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CIVITAS_TEST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
