//! TLS for the real MQTT clients used in tests.
//!
//! rumqttc's own TLS support pulls a second crypto provider into the
//! build, so tests run rumqttc over plain TCP into a local tunnel that
//! speaks real mutual TLS (rustls with aws-lc-rs, the device's own
//! certificate) to the broker. The broker sees exactly what a device with
//! that certificate would send.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use crate::pki::DeviceFiles;

/// What a test client presents and trusts.
pub enum ClientTls<'a> {
    /// A device certificate (mutual TLS).
    Device(&'a DeviceFiles),
    /// Only verify the server (no client certificate).
    ServerOnly(&'a Path),
}

/// A rustls client config built with aws-lc-rs.
pub fn client_config(tls: ClientTls<'_>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let ca_path = match &tls {
        ClientTls::Device(d) => d.ca.as_path(),
        ClientTls::ServerOnly(ca) => ca,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_path)
        .with_context(|| format!("reading {}", ca_path.display()))?
    {
        roots.add(cert?)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let config = match tls {
        ClientTls::Device(d) => {
            let certs = CertificateDer::pem_file_iter(&d.cert)?.collect::<Result<Vec<_>, _>>()?;
            let key = PrivateKeyDer::from_pem_file(&d.key)?;
            builder.with_client_auth_cert(certs, key)?
        }
        ClientTls::ServerOnly(_) => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Start a local plain-TCP endpoint whose every connection is carried to
/// `broker` over TLS with `config`. A refused handshake closes the local
/// connection, which the client sees as a failed connect.
pub async fn mtls_tunnel(
    broker: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?;
    let connector = TlsConnector::from(config);
    tokio::spawn(async move {
        while let Ok((mut plain, _)) = listener.accept().await {
            let connector = connector.clone();
            tokio::spawn(async move {
                let _ = plain.set_nodelay(true);
                let Ok(tcp) = TcpStream::connect(broker).await else {
                    return;
                };
                let _ = tcp.set_nodelay(true);
                let name = ServerName::try_from("localhost").expect("static name");
                let Ok(mut tls) = connector.connect(name, tcp).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
            });
        }
    });
    Ok(local)
}
