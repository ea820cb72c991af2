//! Shared test fixtures: a CA in a temporary directory, rustls client
//! configurations, and a real TLS handshake over an in-memory duplex pipe.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use civitas_pki::{CertificateAuthority, IssuedCert, TlsFiles};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub const DAY: Duration = Duration::from_secs(86_400);

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub ca: CertificateAuthority,
    pub tls_files: TlsFiles,
}

/// A CA, a server certificate for localhost/127.0.0.1 and mutual-TLS files
/// (client CA = the bundle, CRL = the CA's crl.pem).
pub fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::create(&tmp.path().join("ca"), "Civitas Test", now()).unwrap();
    let server = ca
        .issue_server(
            &["localhost".to_string()],
            &["127.0.0.1".parse().unwrap()],
            DAY,
            now(),
        )
        .unwrap();
    let paths = server
        .write_bundle(&tmp.path().join("server"), "server")
        .unwrap();
    let tls_files = TlsFiles {
        cert: paths.cert,
        key: paths.key.unwrap(),
        client_ca: Some(ca.ca_bundle_path()),
        crl: Some(ca.crl_path()),
    };
    Fixture { tmp, ca, tls_files }
}

fn roots(bundle_pem: &str) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(bundle_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client trusting `ca`'s bundle and presenting `cert` with `key_pem`.
pub fn client_with_cert(
    ca: &CertificateAuthority,
    cert: &IssuedCert,
    key_pem: &str,
) -> Arc<ClientConfig> {
    client_with_cert_versions(ca, cert, key_pem, rustls::DEFAULT_VERSIONS)
}

pub fn client_with_cert_versions(
    ca: &CertificateAuthority,
    cert: &IssuedCert,
    key_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    client_with_provider(ca, cert, key_pem, versions, provider())
}

/// Like [`client_with_cert_versions`], with the given crypto provider
/// (to offer other cipher suites, say).
pub fn client_with_provider(
    ca: &CertificateAuthority,
    cert: &IssuedCert,
    key_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Arc<ClientConfig> {
    let chain = CertificateDer::pem_slice_iter(cert.fullchain_pem().as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots(ca.ca_bundle_pem()))
        .with_client_auth_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// A client trusting `ca`'s bundle that presents no certificate.
pub fn client_without_cert(ca: &CertificateAuthority) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(ca.ca_bundle_pem()))
        .with_no_client_auth();
    Arc::new(config)
}

/// An established TLS session, both ends.
#[derive(Debug)]
pub struct Session {
    pub client: tokio_rustls::client::TlsStream<DuplexStream>,
    pub server: tokio_rustls::server::TlsStream<DuplexStream>,
}

impl Session {
    /// Sends a message each way and checks it arrives: proves the session
    /// is usable, not just that the handshake messages were exchanged.
    pub async fn round_trip(&mut self) -> std::io::Result<()> {
        self.client.write_all(b"ping").await?;
        self.client.flush().await?;
        let mut buf = [0u8; 4];
        self.server.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        self.server.write_all(b"pong").await?;
        self.server.flush().await?;
        self.client.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"pong");
        Ok(())
    }
}

/// Runs a real handshake between `client` and `server` and then a round
/// trip of application data. Returns the session, or the first error seen
/// on either side (in TLS 1.3 a refused client certificate surfaces on the
/// client only when it next reads, hence the round trip).
pub async fn connect(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> Result<Session, String> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let acceptor = TlsAcceptor::from(server);
    let connector = TlsConnector::from(client);
    let name = ServerName::try_from("localhost").unwrap();
    let deadline = Duration::from_secs(10);
    let (s, c) = tokio::time::timeout(deadline, async {
        tokio::join!(
            acceptor.accept(server_io),
            connector.connect(name, client_io)
        )
    })
    .await
    .map_err(|_| "handshake timed out".to_string())?;
    let server = s.map_err(|e| format!("server: {e}"))?;
    let client = c.map_err(|e| format!("client: {e}"))?;
    let mut session = Session { client, server };
    tokio::time::timeout(deadline, session.round_trip())
        .await
        .map_err(|_| "round trip timed out".to_string())?
        .map_err(|e| format!("round trip: {e}"))?;
    Ok(session)
}
