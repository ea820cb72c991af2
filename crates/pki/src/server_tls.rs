//! rustls server configuration from PEM files.
//!
//! Always the aws-lc-rs provider, passed explicitly (never a process-wide
//! default), TLS 1.2 and 1.3 only. With a client CA the server demands a
//! client certificate chaining to it (mutual TLS for device listeners);
//! without one it asks for none (password or anonymous listeners).
//!
//! The server picks the cipher suite in its own order, AES-128-GCM first,
//! as AWS IoT Core's TLS 1.3 security policies list them: clients (rustls,
//! OpenSSL, mbedTLS) mostly offer AES-256-GCM-SHA384 first, and its
//! SHA-384 key schedule has no hardware path on some CPUs (aws-lc runs
//! SHA-512 in portable C on AMD), where it was a seventh of the CPU of a
//! full mutual-TLS handshake. A client that offers only ChaCha20 (a device
//! without AES hardware) still gets it.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use crate::error::PkiError;
use crate::files;
use crate::revocation::{RevocationCheckingVerifier, Revocations};

/// The files a TLS listener is configured from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Server certificate, PEM; may be followed by intermediates.
    pub cert: PathBuf,
    /// Server private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// CA bundle client certificates must chain to; `None` disables client
    /// certificate authentication.
    pub client_ca: Option<PathBuf>,
    /// CRL(s), PEM, checked for client certificates; needs `client_ca`.
    pub crl: Option<PathBuf>,
}

impl TlsFiles {
    fn all(&self) -> impl Iterator<Item = &PathBuf> {
        [
            Some(&self.cert),
            Some(&self.key),
            self.client_ca.as_ref(),
            self.crl.as_ref(),
        ]
        .into_iter()
        .flatten()
    }

    pub(crate) fn describe(&self) -> String {
        files::display_paths(self.all())
    }
}

/// The raw bytes of every configured file, read once so the content that
/// is compared for changes is exactly the content that gets parsed.
#[derive(PartialEq, Eq)]
pub(crate) struct Material {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
    crl: Option<Vec<u8>>,
}

impl Material {
    /// Whether `other` has the same server certificate, key and client CA
    /// bundle, i.e. differs at most in its CRL.
    pub(crate) fn same_identity_and_trust(&self, other: &Material) -> bool {
        self.cert == other.cert && self.key == other.key && self.client_ca == other.client_ca
    }

    pub(crate) fn read(files: &TlsFiles) -> Result<Self, PkiError> {
        Ok(Material {
            cert: files::read(&files.cert)?,
            key: files::read(&files.key)?,
            client_ca: files.client_ca.as_deref().map(files::read).transpose()?,
            crl: files.crl.as_deref().map(files::read).transpose()?,
        })
    }
}

/// Builds a server configuration from `files`, advertising `alpn`.
pub fn server_config(files: &TlsFiles, alpn: &[Vec<u8>]) -> Result<Arc<ServerConfig>, PkiError> {
    let material = Material::read(files)?;
    build(files, &material, alpn).map(|built| Arc::new(built.config))
}

/// A server configuration, and what a resumed session (which skips
/// certificate verification) is checked against.
pub(crate) struct Built {
    pub config: ServerConfig,
    /// Whether clients authenticate with certificates.
    pub client_auth: bool,
    /// The revocations the verifier checks, when a CRL is configured.
    pub revocations: Option<Arc<Revocations>>,
}

pub(crate) fn build(
    files: &TlsFiles,
    material: &Material,
    alpn: &[Vec<u8>],
) -> Result<Built, PkiError> {
    let provider = Arc::new(server_provider());
    let chain = files::parse_certs(&files.cert, &material.cert)?;
    let key = files::parse_key(&files.key, &material.key)?;

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| PkiError::Tls {
            files: files.describe(),
            source,
        })?;

    let mut revocations = None;
    let builder = match (&files.client_ca, &material.client_ca) {
        (Some(ca_path), Some(ca_pem)) => {
            let (verifier, loaded) = client_verifier(files, ca_path, ca_pem, material, provider)?;
            revocations = loaded;
            builder.with_client_cert_verifier(verifier)
        }
        _ => {
            if files.crl.is_some() {
                return Err(PkiError::Config(format!(
                    "CRL {} is configured without a client CA",
                    files::display_paths(files.crl.as_ref())
                )));
            }
            builder.with_no_client_auth()
        }
    };

    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|source| PkiError::Tls {
            files: files::display_paths([&files.cert, &files.key]),
            source,
        })?;
    config.alpn_protocols = alpn.to_vec();
    config.ignore_client_order = true;
    Ok(Built {
        config,
        client_auth: files.client_ca.is_some(),
        revocations,
    })
}

/// aws-lc-rs with its cipher suites in the server's order of preference:
/// AES-128-GCM, then AES-256-GCM, then the rest as aws-lc-rs lists them.
fn server_provider() -> CryptoProvider {
    use rustls::CipherSuite as S;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.sort_by_key(|s| match s.suite() {
        S::TLS13_AES_128_GCM_SHA256
        | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
        S::TLS13_AES_256_GCM_SHA384
        | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
        _ => 2,
    });
    provider
}

/// A client-certificate verifier and the revocations it checks.
type ClientVerification = (Arc<dyn ClientCertVerifier>, Option<Arc<Revocations>>);

/// The client-certificate verifier: webpki's chain verification against
/// the CA bundle and, when a CRL is configured, the revocation check (see
/// [`crate::revocation`] for its policy), whose CRLs are verified here,
/// once.
fn client_verifier(
    files: &TlsFiles,
    ca_path: &PathBuf,
    ca_pem: &[u8],
    material: &Material,
    provider: Arc<CryptoProvider>,
) -> Result<ClientVerification, PkiError> {
    let cas = files::parse_certs(ca_path, ca_pem)?;
    let mut roots = RootCertStore::empty();
    for cert in &cas {
        roots
            .add(cert.clone())
            .map_err(|e| PkiError::corrupt(ca_path, format!("unusable CA certificate: {e}")))?;
    }
    let chain = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|source| PkiError::Verifier {
            files: files::display_paths([ca_path]),
            source,
        })?;
    match (&files.crl, &material.crl) {
        (Some(crl_path), Some(crl_pem)) => {
            let crls = files::parse_crls(crl_path, crl_pem)?;
            let revocations = Arc::new(Revocations::load(crl_path, &crls, &cas)?);
            let verifier = RevocationCheckingVerifier {
                chain,
                revocations: revocations.clone(),
            };
            Ok((Arc::new(verifier), Some(revocations)))
        }
        _ => Ok((chain, None)),
    }
}
