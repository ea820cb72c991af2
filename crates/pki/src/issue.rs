//! Issuing leaf certificates: servers, devices with a generated key, and
//! devices that bring their own key in a CSR.
//!
//! Every leaf gets a random 16-byte serial, a single EKU matching its role
//! and a validity clipped to the issuing CA's, so nothing outlives the chain
//! that vouches for it.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::ca::{CertificateAuthority, truncate};
use crate::error::PkiError;
use crate::files::{self, Mode};
use crate::serial;

/// Leaf certificates start this much before "now" so a peer whose clock
/// lags slightly does not see a not-yet-valid certificate.
const LEAF_BACKDATE: time::Duration = time::Duration::minutes(5);
/// RFC 5280's upper bound for a CommonName.
const MAX_CN_LEN: usize = 64;
const MIN_RSA_BITS: usize = 2048;
/// Used when a server certificate has only IP addresses.
const DEFAULT_SERVER_CN: &str = "civitas";

/// A freshly signed certificate and, when the CA generated it, its key.
#[derive(Clone)]
pub struct IssuedCert {
    /// The leaf certificate alone, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8 PEM); `None` when issued from a CSR.
    pub key_pem: Option<String>,
    /// Canonical lower-case hex serial (as [`crate::peer_identity`] reports it).
    pub serial_hex: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The CA bundle (issuing CA, then root), PEM.
    pub chain_pem: String,
    /// The issuing CA certificate alone, PEM: appended to the leaf in
    /// [`write_bundle`](Self::write_bundle) so peers that trust only the
    /// root can still build the chain.
    pub issuer_pem: String,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("serial_hex", &self.serial_hex)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("key_pem", &self.key_pem.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// Where [`IssuedCert::write_bundle`] put its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlePaths {
    /// `NAME.pem`: the leaf followed by the issuing CA.
    pub cert: PathBuf,
    /// `NAME.key`, mode 0600; `None` when the certificate has no key here.
    pub key: Option<PathBuf>,
    /// `ca.pem`: the CA bundle to verify the other side with.
    pub ca: PathBuf,
}

impl IssuedCert {
    /// The leaf followed by the issuing CA certificate: what a TLS endpoint
    /// presents.
    pub fn fullchain_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.issuer_pem)
    }

    /// Writes `NAME.pem` (leaf + issuing CA), `NAME.key` (0600, if the key
    /// is known) and `ca.pem` (the CA bundle) into `dir`, creating it.
    pub fn write_bundle(&self, dir: &Path, name: &str) -> Result<BundlePaths, PkiError> {
        if name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\\'])
            || name.chars().any(char::is_control)
        {
            return Err(PkiError::InvalidName {
                name: name.to_owned(),
                reason: "not usable as a file name".to_owned(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| PkiError::io(dir, e))?;
        let cert = dir.join(format!("{name}.pem"));
        let ca = dir.join("ca.pem");
        let key = match &self.key_pem {
            Some(pem) => {
                let path = dir.join(format!("{name}.key"));
                files::write_atomic(&path, pem.as_bytes(), Mode::Private)?;
                Some(path)
            }
            None => None,
        };
        files::write_atomic(&cert, self.fullchain_pem().as_bytes(), Mode::Public)?;
        files::write_atomic(&ca, self.chain_pem.as_bytes(), Mode::Public)?;
        Ok(BundlePaths { cert, key, ca })
    }
}

impl CertificateAuthority {
    /// A server certificate (server-auth EKU) for these DNS names and IP
    /// addresses, with a generated ECDSA P-256 key.
    pub fn issue_server(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        if dns_names.is_empty() && ips.is_empty() {
            return Err(PkiError::InvalidName {
                name: String::new(),
                reason: "a server certificate needs at least one DNS name or IP address".into(),
            });
        }
        let mut sans = Vec::with_capacity(dns_names.len() + ips.len());
        for name in dns_names {
            let ia5 = name
                .as_str()
                .try_into()
                .map_err(|_| PkiError::InvalidName {
                    name: name.clone(),
                    reason: "not an ASCII DNS name".into(),
                })?;
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(PkiError::InvalidName {
                    name: name.clone(),
                    reason: "not a DNS name".into(),
                });
            }
            sans.push(SanType::DnsName(ia5));
        }
        sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        let cn = dns_names
            .first()
            .filter(|n| n.len() <= MAX_CN_LEN)
            .map_or(DEFAULT_SERVER_CN, String::as_str);

        let (not_before, not_after) = self.window_from(validity, now)?;
        let mut params = leaf_params(
            cn,
            not_before,
            not_after,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        params.subject_alt_names = sans;
        self.sign_generated(params)
    }

    /// A device certificate: CN = `thing_name`, client-auth EKU, generated
    /// ECDSA P-256 key.
    pub fn issue_device(
        &self,
        thing_name: &str,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        validate_thing_name(thing_name)?;
        let (not_before, not_after) = self.window_from(validity, now)?;
        let params = leaf_params(
            thing_name,
            not_before,
            not_after,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        self.sign_generated(params)
    }

    /// A device certificate with an explicit validity window, not clipped
    /// to the issuing CA: lets tests make expired or not-yet-valid
    /// certificates.
    pub fn issue_device_with_validity_window(
        &self,
        thing_name: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        validate_thing_name(thing_name)?;
        let (not_before, not_after) = (truncate(not_before), truncate(not_after));
        if not_after <= not_before {
            return Err(PkiError::InvalidValidity(
                "not_after must be later than not_before".into(),
            ));
        }
        let params = leaf_params(
            thing_name,
            not_before,
            not_after,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        self.sign_generated(params)
    }

    /// A device certificate for the key in a PEM CSR. The CSR's signature
    /// must verify (proof the requester holds the key); its subject and
    /// requested extensions are ignored: CN = `thing_name`, client-auth EKU.
    pub fn issue_device_from_csr(
        &self,
        csr_pem: &str,
        thing_name: &str,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        validate_thing_name(thing_name)?;
        let public_key = csr_public_key(csr_pem)?;
        let (not_before, not_after) = self.window_from(validity, now)?;
        let params = leaf_params(
            thing_name,
            not_before,
            not_after,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        self.sign(&params, &public_key, None)
    }

    /// `[now - backdate, now + validity]`, clipped to the issuing CA.
    fn window_from(
        &self,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
        let now = truncate(now);
        let validity = time::Duration::try_from(validity)
            .map_err(|_| PkiError::InvalidValidity("validity is too long".into()))?;
        if validity < time::Duration::SECOND {
            return Err(PkiError::InvalidValidity(
                "validity must be at least one second".into(),
            ));
        }
        let requested = now
            .checked_add(validity)
            .ok_or_else(|| PkiError::InvalidValidity("validity is too long".into()))?;
        let not_after = requested.min(self.issuing_not_after);
        if not_after <= now {
            return Err(PkiError::InvalidValidity(
                "the issuing CA has expired; no certificate can be issued".into(),
            ));
        }
        if not_after < requested {
            tracing::warn!(
                %not_after,
                "certificate validity clipped to the issuing CA's expiry"
            );
        }
        Ok((now - LEAF_BACKDATE, not_after))
    }

    fn sign_generated(&self, params: CertificateParams) -> Result<IssuedCert, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        self.sign(&params, &key, Some(key.serialize_pem()))
    }

    fn sign(
        &self,
        params: &CertificateParams,
        public_key: &impl PublicKeyData,
        key_pem: Option<String>,
    ) -> Result<IssuedCert, PkiError> {
        let cert = params.signed_by(public_key, &self.issuer)?;
        let serial_hex = params
            .serial_number
            .as_ref()
            .map(|s| serial::to_hex(s.as_ref()))
            .unwrap_or_default();
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem,
            serial_hex,
            not_before: params.not_before,
            not_after: params.not_after,
            chain_pem: self.bundle_pem.clone(),
            issuer_pem: self.issuing_cert_pem.clone(),
        })
    }
}

/// Thing names are what the registry and MQTT client ids use: the AWS IoT
/// alphabet, limited to what fits in a CommonName.
fn validate_thing_name(name: &str) -> Result<(), PkiError> {
    let invalid = |reason: &str| PkiError::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() {
        return Err(invalid("thing name is empty"));
    }
    if name.len() > MAX_CN_LEN {
        return Err(invalid("thing name is longer than 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
    {
        return Err(invalid(
            "thing name may contain only ASCII letters, digits and - _ : .",
        ));
    }
    Ok(())
}

fn leaf_params(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(SerialNumber::from_slice(&serial::random_serial()?));
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// The public key of a CSR whose self-signature verifies, if its algorithm
/// and size are acceptable.
fn csr_public_key(csr_pem: &str) -> Result<SubjectPublicKeyInfo, PkiError> {
    let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .map_err(|e| PkiError::InvalidCsr(format!("not a PEM certificate request: {e}")))?;
    let (_, csr) = X509CertificationRequest::from_der(der.as_ref())
        .map_err(|e| PkiError::InvalidCsr(format!("malformed certificate request: {e}")))?;
    csr.verify_signature()
        .map_err(|_| PkiError::InvalidCsr("signature does not verify".into()))?;
    let spki = &csr.certification_request_info.subject_pki;
    if let Ok(PublicKey::RSA(rsa)) = spki.parsed()
        && rsa.key_size() < MIN_RSA_BITS
    {
        return Err(PkiError::InvalidCsr(format!(
            "RSA key of {} bits is too small (minimum {MIN_RSA_BITS})",
            rsa.key_size()
        )));
    }
    SubjectPublicKeyInfo::from_der(spki.raw)
        .map_err(|e| PkiError::InvalidCsr(format!("unsupported public key: {e}")))
}
