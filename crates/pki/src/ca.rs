//! The certificate authority on disk: creation, loading, file layout.
//!
//! Two tiers: a self-signed root (10 years) that only ever signs the issuing
//! CA, and the issuing CA (5 years) that signs every server and device
//! certificate and the CRL. Only the issuing key is needed day to day, so the
//! root key may be moved offline and the CA keeps working.

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

use crate::crl::RevocationState;
use crate::error::PkiError;
use crate::files::{self, Mode};
use crate::serial;
use crate::server_tls::TlsFiles;

/// Self-signed root certificate.
pub const ROOT_CERT_FILE: &str = "root-ca.pem";
/// Root private key; may be removed for offline keeping.
pub const ROOT_KEY_FILE: &str = "root-ca.key";
/// Issuing (intermediate) CA certificate.
pub const ISSUING_CERT_FILE: &str = "issuing-ca.pem";
/// Issuing CA private key; required for every issuance and CRL.
pub const ISSUING_KEY_FILE: &str = "issuing-ca.key";
/// Issuing CA followed by root: the CA file for servers and devices.
pub const CA_BUNDLE_FILE: &str = "ca-bundle.pem";
/// Revoked serials, the source of truth the CRL is generated from.
pub const REVOKED_FILE: &str = "revoked.json";
/// The current CRL signed by the issuing CA.
pub const CRL_FILE: &str = "crl.pem";

/// Every file `create` writes; the presence of any one means a CA lives here.
const CA_FILES: [&str; 7] = [
    ROOT_CERT_FILE,
    ROOT_KEY_FILE,
    ISSUING_CERT_FILE,
    ISSUING_KEY_FILE,
    CA_BUNDLE_FILE,
    REVOKED_FILE,
    CRL_FILE,
];

const ROOT_VALIDITY: time::Duration = time::Duration::days(3653);
const ISSUING_VALIDITY: time::Duration = time::Duration::days(1826);
/// CA certificates start slightly in the past so a device whose clock lags
/// the CA host's by a little still accepts a freshly created CA.
const CA_BACKDATE: time::Duration = time::Duration::hours(1);
/// Room left in the 64-character CommonName for the " Issuing CA" suffix.
const MAX_ORG_LEN: usize = 48;

/// A two-tier certificate authority stored in one directory.
pub struct CertificateAuthority {
    pub(crate) dir: PathBuf,
    pub(crate) root_cert_pem: String,
    pub(crate) issuing_cert_pem: String,
    pub(crate) bundle_pem: String,
    pub(crate) issuer: Issuer<'static, KeyPair>,
    pub(crate) issuing_not_after: OffsetDateTime,
    pub(crate) root_key_present: bool,
    pub(crate) revocations: RevocationState,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("dir", &self.dir)
            .field("issuing_not_after", &self.issuing_not_after)
            .field("root_key_present", &self.root_key_present)
            .field("revoked", &self.revocations.len())
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a new root and issuing CA in `dir` (created if absent, mode
    /// 0700) and an empty revocation list. Refuses if any CA file is already
    /// there.
    pub fn create(dir: &Path, org: &str, now: OffsetDateTime) -> Result<Self, PkiError> {
        validate_org(org)?;
        files::ensure_private_dir(dir)?;
        if let Some(existing) = existing_ca_file(dir) {
            return Err(PkiError::AlreadyExists { path: existing });
        }
        let now = truncate(now);
        let not_before = now - CA_BACKDATE;

        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let root_params = ca_params(
            format!("{org} Root CA"),
            org,
            1,
            not_before,
            now + ROOT_VALIDITY,
        )?;
        let root = CertifiedIssuer::self_signed(root_params, root_key)?;

        let issuing_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut issuing_params = ca_params(
            format!("{org} Issuing CA"),
            org,
            0,
            not_before,
            now + ISSUING_VALIDITY,
        )?;
        issuing_params.use_authority_key_identifier_extension = true;
        let issuing_key_pem = issuing_key.serialize_pem();
        let issuing = CertifiedIssuer::signed_by(issuing_params, issuing_key, &root)?;

        let root_cert_pem = root.pem();
        let issuing_cert_pem = issuing.pem();
        let bundle_pem = format!("{issuing_cert_pem}{root_cert_pem}");

        // Keys first and the root certificate last: an interrupted create
        // leaves a directory that `load` reports precisely instead of a CA
        // that looks complete.
        let path = |name: &str| dir.join(name);
        files::write_atomic(
            &path(ROOT_KEY_FILE),
            root.key().serialize_pem().as_bytes(),
            Mode::Private,
        )?;
        files::write_atomic(
            &path(ISSUING_KEY_FILE),
            issuing_key_pem.as_bytes(),
            Mode::Private,
        )?;
        files::write_atomic(
            &path(ISSUING_CERT_FILE),
            issuing_cert_pem.as_bytes(),
            Mode::Public,
        )?;
        files::write_atomic(&path(CA_BUNDLE_FILE), bundle_pem.as_bytes(), Mode::Public)?;

        let issuer = issuer_from(
            &path(ISSUING_CERT_FILE),
            issuing.der(),
            &path(ISSUING_KEY_FILE),
            &issuing_key_pem,
        )?;
        let ca = CertificateAuthority {
            dir: dir.to_path_buf(),
            root_cert_pem,
            issuing_cert_pem,
            bundle_pem,
            issuer,
            issuing_not_after: now + ISSUING_VALIDITY,
            root_key_present: true,
            revocations: RevocationState::default(),
        };
        ca.revocations.save(&ca.revoked_path())?;
        ca.write_crl(now)?;
        files::write_atomic(
            &path(ROOT_CERT_FILE),
            ca.root_cert_pem.as_bytes(),
            Mode::Public,
        )?;
        tracing::info!(dir = %dir.display(), org, "created certificate authority");
        Ok(ca)
    }

    /// Loads a CA created by [`create`](Self::create). The root key may be
    /// absent; every other file must be present and well-formed, and errors
    /// name the offending file.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let path = |name: &str| dir.join(name);

        let root_path = path(ROOT_CERT_FILE);
        let root_cert_pem = files::read_string(&root_path)?;
        let root_der = single_cert(&root_path, root_cert_pem.as_bytes())?;

        let root_key_path = path(ROOT_KEY_FILE);
        let root_key_present = root_key_path.exists();
        if root_key_present {
            let pem = files::read_string(&root_key_path)?;
            check_key_matches(&root_key_path, &pem, &root_path, &root_der)?;
        }

        let issuing_path = path(ISSUING_CERT_FILE);
        let issuing_cert_pem = files::read_string(&issuing_path)?;
        let issuing_der = single_cert(&issuing_path, issuing_cert_pem.as_bytes())?;
        let issuing_key_path = path(ISSUING_KEY_FILE);
        let issuing_key_pem = files::read_string(&issuing_key_path)?;
        let issuer = issuer_from(
            &issuing_path,
            &issuing_der,
            &issuing_key_path,
            &issuing_key_pem,
        )?;
        check_signed_by(&issuing_path, &issuing_der, &root_path, &root_der)?;
        let issuing_not_after = parse(&issuing_path, &issuing_der)?
            .validity()
            .not_after
            .to_datetime();

        let bundle_path = path(CA_BUNDLE_FILE);
        let bundle_pem = files::read_string(&bundle_path)?;
        let bundle = files::parse_certs(&bundle_path, bundle_pem.as_bytes())?;
        if !bundle.contains(&issuing_der) || !bundle.contains(&root_der) {
            return Err(PkiError::corrupt(
                &bundle_path,
                format!("does not contain both {ISSUING_CERT_FILE} and {ROOT_CERT_FILE}"),
            ));
        }

        let revocations = RevocationState::load(&path(REVOKED_FILE))?;

        Ok(CertificateAuthority {
            dir: dir.to_path_buf(),
            root_cert_pem,
            issuing_cert_pem,
            bundle_pem,
            issuer,
            issuing_not_after,
            root_key_present,
            revocations,
        })
    }

    /// Loads the CA in `dir`, or creates one if the directory holds no CA
    /// file at all. The flag is true when a CA was created.
    pub fn open_or_create(
        dir: &Path,
        org: &str,
        now: OffsetDateTime,
    ) -> Result<(Self, bool), PkiError> {
        if existing_ca_file(dir).is_some() {
            Ok((Self::load(dir)?, false))
        } else {
            Ok((Self::create(dir, org, now)?, true))
        }
    }

    /// The directory holding the CA.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ca-bundle.pem`: the CA file for servers verifying devices and for
    /// devices verifying the server.
    pub fn ca_bundle_path(&self) -> PathBuf {
        self.dir.join(CA_BUNDLE_FILE)
    }

    /// `crl.pem`: the current CRL, rewritten by every revocation.
    pub fn crl_path(&self) -> PathBuf {
        self.dir.join(CRL_FILE)
    }

    pub(crate) fn revoked_path(&self) -> PathBuf {
        self.dir.join(REVOKED_FILE)
    }

    /// The issuing CA certificate followed by the root, PEM.
    pub fn ca_bundle_pem(&self) -> &str {
        &self.bundle_pem
    }

    /// The root certificate, PEM.
    pub fn root_cert_pem(&self) -> &str {
        &self.root_cert_pem
    }

    /// The issuing CA certificate, PEM.
    pub fn issuing_cert_pem(&self) -> &str {
        &self.issuing_cert_pem
    }

    /// When the issuing CA expires; no certificate it signs outlives it.
    pub fn issuing_not_after(&self) -> OffsetDateTime {
        self.issuing_not_after
    }

    /// Mutual-TLS files for a server certificate issued by this CA: client
    /// certificates must chain to the CA bundle and are checked against
    /// `crl.pem`.
    pub fn tls_files(&self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsFiles {
        TlsFiles {
            cert: cert.into(),
            key: key.into(),
            client_ca: Some(self.ca_bundle_path()),
            crl: Some(self.crl_path()),
        }
    }

    /// Whether the root private key is present in the CA directory.
    pub fn has_root_key(&self) -> bool {
        self.root_key_present
    }
}

fn existing_ca_file(dir: &Path) -> Option<PathBuf> {
    CA_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.exists())
}

fn validate_org(org: &str) -> Result<(), PkiError> {
    let invalid = |reason: &str| PkiError::InvalidName {
        name: org.to_owned(),
        reason: reason.to_owned(),
    };
    if org.trim().is_empty() {
        return Err(invalid("organization name is empty"));
    }
    if org.chars().count() > MAX_ORG_LEN {
        return Err(invalid("organization name is longer than 48 characters"));
    }
    if org.chars().any(char::is_control) {
        return Err(invalid("organization name contains control characters"));
    }
    Ok(())
}

/// X.509 times have one-second resolution; truncating up front makes the
/// times we report equal the ones in the certificate.
pub(crate) fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(0).unwrap_or(t)
}

fn ca_params(
    common_name: String,
    org: &str,
    path_len: u8,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(SerialNumber::from_slice(&serial::random_serial()?));
    Ok(params)
}

fn parse<'a>(path: &Path, der: &'a [u8]) -> Result<X509Certificate<'a>, PkiError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert)
        .map_err(|e| PkiError::corrupt(path, format!("invalid X.509 certificate: {e}")))
}

fn single_cert(path: &Path, pem: &[u8]) -> Result<CertificateDer<'static>, PkiError> {
    let mut certs = files::parse_certs(path, pem)?;
    if certs.len() != 1 {
        return Err(PkiError::corrupt(
            path,
            format!("expected exactly one certificate, found {}", certs.len()),
        ));
    }
    Ok(certs.remove(0))
}

fn parse_key(path: &Path, pem: &str) -> Result<KeyPair, PkiError> {
    KeyPair::from_pem(pem).map_err(|e| PkiError::corrupt(path, format!("invalid private key: {e}")))
}

fn check_key_matches(
    key_path: &Path,
    key_pem: &str,
    cert_path: &Path,
    cert_der: &[u8],
) -> Result<KeyPair, PkiError> {
    let key = parse_key(key_path, key_pem)?;
    let cert = parse(cert_path, cert_der)?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(PkiError::corrupt(
            key_path,
            format!("private key does not match {}", cert_path.display()),
        ));
    }
    Ok(key)
}

fn check_signed_by(
    cert_path: &Path,
    cert_der: &[u8],
    issuer_path: &Path,
    issuer_der: &[u8],
) -> Result<(), PkiError> {
    let cert = parse(cert_path, cert_der)?;
    let issuer = parse(issuer_path, issuer_der)?;
    cert.verify_signature(Some(issuer.public_key()))
        .map_err(|_| {
            PkiError::corrupt(
                cert_path,
                format!("not signed by {}", issuer_path.display()),
            )
        })
}

fn issuer_from(
    cert_path: &Path,
    cert_der: &CertificateDer<'_>,
    key_path: &Path,
    key_pem: &str,
) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key = check_key_matches(key_path, key_pem, cert_path, cert_der)?;
    Issuer::from_ca_cert_der(cert_der, key)
        .map_err(|e| PkiError::corrupt(cert_path, format!("unusable CA certificate: {e}")))
}
