//! Client-certificate revocation, checked against CRLs verified once.
//!
//! The CRL file is checked when it is loaded: every CRL must be signed by
//! a CA in the client CA bundle. Handshakes then look the end-entity
//! serial up in a set, instead of verifying the CRL's signature again on
//! every handshake (rustls-webpki's CRL support does; at a reconnect
//! storm's rate that was one ECDSA verification in six). The policy is
//! the one the webpki verifier was configured with before:
//! - only the end-entity certificate is checked (the issuing CA publishes
//!   the CRL; the root publishes none for it);
//! - unknown status fails closed: a certificate whose issuer has no CRL
//!   in the file is refused;
//! - a CRL past its nextUpdate is still used: what it revokes stays
//!   revoked, and a missed refresh must not lock every device out.
//!
//! The same set answers for resumed TLS sessions, which skip certificate
//! verification altogether.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::error::PkiError;

/// The revoked serials of each CA that published a CRL, keyed by the
/// CA's subject (DER), as a certificate names it in its issuer field.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    by_issuer: HashMap<Vec<u8>, HashSet<Vec<u8>>>,
}

impl Revocations {
    /// Reads `crls` (from `path`), each verified against the CA in
    /// `cas` that issued it.
    pub(crate) fn load(
        path: &Path,
        crls: &[CertificateRevocationListDer<'_>],
        cas: &[CertificateDer<'_>],
    ) -> Result<Revocations, PkiError> {
        let mut issuers = Vec::new();
        for ca in cas {
            let (_, cert) = X509Certificate::from_der(ca.as_ref())
                .map_err(|e| PkiError::corrupt(path, format!("unreadable CA certificate: {e}")))?;
            issuers.push(cert);
        }
        let mut by_issuer: HashMap<Vec<u8>, HashSet<Vec<u8>>> = HashMap::new();
        for der in crls {
            let (_, crl) = CertificateRevocationList::from_der(der.as_ref())
                .map_err(|e| PkiError::corrupt(path, format!("unreadable CRL: {e}")))?;
            let issuer = issuers
                .iter()
                .find(|ca| ca.subject().as_raw() == crl.issuer().as_raw())
                .ok_or_else(|| {
                    PkiError::corrupt(
                        path,
                        format!(
                            "CRL issued by {}, which is not in the client CA bundle",
                            crl.issuer()
                        ),
                    )
                })?;
            crl.verify_signature(issuer.public_key()).map_err(|e| {
                PkiError::corrupt(path, format!("CRL signature does not verify: {e}"))
            })?;
            let serials = by_issuer.entry(crl.issuer().as_raw().to_vec()).or_default();
            for revoked in crl.iter_revoked_certificates() {
                serials.insert(revoked.raw_serial().to_vec());
            }
        }
        Ok(Revocations { by_issuer })
    }

    /// Whether `end_entity` may be used: its issuer published a CRL and
    /// the CRL does not list it.
    pub(crate) fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), CertificateError> {
        let (_, cert) = X509Certificate::from_der(end_entity.as_ref())
            .map_err(|_| CertificateError::BadEncoding)?;
        self.check_parsed(&cert)
    }

    /// [`check`](Self::check) for a certificate already parsed.
    pub(crate) fn check_parsed(&self, cert: &X509Certificate<'_>) -> Result<(), CertificateError> {
        match self.by_issuer.get(cert.issuer().as_raw()) {
            None => Err(CertificateError::UnknownRevocationStatus),
            Some(revoked) if revoked.contains(cert.raw_serial()) => Err(CertificateError::Revoked),
            Some(_) => Ok(()),
        }
    }
}

/// A client-certificate verifier: the webpki chain verification, then
/// the revocation check against [`Revocations`].
#[derive(Debug)]
pub(crate) struct RevocationCheckingVerifier {
    pub(crate) chain: Arc<dyn ClientCertVerifier>,
    pub(crate) revocations: Arc<Revocations>,
}

impl ClientCertVerifier for RevocationCheckingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.chain.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.chain.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        self.revocations.check(end_entity)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}
