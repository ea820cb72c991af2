//! Who a TLS peer is, read from its certificate.
//!
//! The broker maps the verified client certificate to a thing name (its CN)
//! and checks its serial against revocations and the registry.

use time::OffsetDateTime;

use crate::error::PkiError;
use crate::serial;

/// The identity carried by a (verified) peer certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject CommonName: the thing name for device certificates.
    pub common_name: String,
    /// Canonical lower-case hex, as in [`crate::IssuedCert::serial_hex`].
    pub serial_hex: String,
    pub not_after: OffsetDateTime,
}

/// Extracts the identity of a DER certificate. Does not verify anything:
/// call it on certificates the TLS layer has already verified.
pub fn peer_identity(cert_der: &[u8]) -> Result<PeerIdentity, PkiError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| PkiError::InvalidCertificate(e.to_string()))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .ok_or_else(|| PkiError::InvalidCertificate("subject has no CommonName".into()))?
        .as_str()
        .map_err(|e| PkiError::InvalidCertificate(format!("CommonName is not a string: {e}")))?
        .to_owned();
    Ok(PeerIdentity {
        common_name,
        serial_hex: serial::to_hex(cert.raw_serial()),
        not_after: cert.validity().not_after.to_datetime(),
    })
}
