//! civitas' public-key infrastructure: the built-in certificate authority,
//! certificate issuance and revocation, peer identity extraction, and the
//! rustls server configuration (with live reload) the listeners use.
//!
//! Every TLS object is built with the aws-lc-rs provider explicitly.

mod ca;
mod crl;
mod error;
mod files;
mod identity;
mod issue;
mod reload;
mod serial;
mod server_tls;

pub use ca::{
    CA_BUNDLE_FILE, CRL_FILE, CertificateAuthority, ISSUING_CERT_FILE, ISSUING_KEY_FILE,
    REVOKED_FILE, ROOT_CERT_FILE, ROOT_KEY_FILE,
};
pub use crl::{CRL_VALIDITY, RevokedCert};
pub use error::PkiError;
pub use identity::{PeerIdentity, peer_identity};
pub use issue::{BundlePaths, IssuedCert};
pub use reload::ReloadingServerConfig;
pub use serial::normalize_serial_hex;
pub use server_tls::{TlsFiles, server_config};
