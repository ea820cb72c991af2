//! civitas' public-key infrastructure: the built-in certificate authority,
//! certificate issuance and revocation, peer identity extraction, and the
//! rustls server configuration (with live reload) the listeners use.
//!
//! Every TLS object is built with the aws-lc-rs provider explicitly.
//!
//! Typical first run: [`CertificateAuthority::open_or_create`] on the data
//! directory; if it was created, [`CertificateAuthority::issue_server`] and
//! [`CertificateAuthority::issue_device`] plus [`IssuedCert::write_bundle`]
//! for the server and an example device; then
//! [`ReloadingServerConfig::new`] with [`CertificateAuthority::tls_files`]
//! and [`ReloadingServerConfig::watch`] in the background, calling
//! [`ReloadingServerConfig::current`] per accepted connection and
//! [`peer_identity`] on the verified client certificate. Validity periods
//! are `std::time::Duration`s; instants are UTC `time::OffsetDateTime`s
//! truncated to whole seconds, as X.509 stores them.

mod ca;
mod crl;
mod error;
mod files;
mod identity;
mod issue;
mod reload;
mod revocation;
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
