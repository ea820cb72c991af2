//! Revocation: the persisted list of revoked serials and the CRL generated
//! from it.
//!
//! `revoked.json` is the source of truth and is written before `crl.pem`, so
//! a failure between the two can only leave a CRL that is behind (fixed by
//! the next revocation or [`CertificateAuthority::refresh_crl`]), never one
//! that forgets a revocation.

use std::path::Path;

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ca::{CertificateAuthority, truncate};
use crate::error::PkiError;
use crate::files::{self, Mode};
use crate::serial;

/// How long a CRL claims to be current (its nextUpdate). The civitas server
/// does not enforce nextUpdate (see `server_tls`), so this only matters to
/// other relying parties; call [`CertificateAuthority::refresh_crl`] well
/// within it.
pub const CRL_VALIDITY: time::Duration = time::Duration::days(30);

const STATE_FORMAT: u32 = 1;

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCert {
    /// Canonical lower-case hex, as in [`crate::PeerIdentity::serial_hex`].
    pub serial_hex: String,
    pub revoked_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RevocationState {
    format: u32,
    /// Bumped for every CRL content change or refresh, never reused.
    crl_number: u64,
    revoked: Vec<StoredRevocation>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRevocation {
    serial_hex: String,
    revoked_at_unix: i64,
}

impl Default for RevocationState {
    fn default() -> Self {
        RevocationState {
            format: STATE_FORMAT,
            crl_number: 1,
            revoked: Vec::new(),
        }
    }
}

impl RevocationState {
    pub(crate) fn load(path: &Path) -> Result<Self, PkiError> {
        let bytes = files::read(path)?;
        let state: RevocationState = serde_json::from_slice(&bytes)
            .map_err(|e| PkiError::corrupt(path, format!("invalid revocation list: {e}")))?;
        if state.format != STATE_FORMAT {
            return Err(PkiError::corrupt(
                path,
                format!("unsupported revocation list format {}", state.format),
            ));
        }
        for entry in &state.revoked {
            serial::parse_hex(&entry.serial_hex)
                .map_err(|e| PkiError::corrupt(path, e.to_string()))?;
            OffsetDateTime::from_unix_timestamp(entry.revoked_at_unix)
                .map_err(|e| PkiError::corrupt(path, format!("invalid revocation time: {e}")))?;
        }
        Ok(state)
    }

    pub(crate) fn save(&self, path: &Path) -> Result<(), PkiError> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| PkiError::corrupt(path, format!("cannot encode revocation list: {e}")))?;
        files::write_atomic(path, &json, Mode::Private)
    }

    pub(crate) fn len(&self) -> usize {
        self.revoked.len()
    }

    fn contains(&self, serial_hex: &str) -> bool {
        self.revoked.iter().any(|r| r.serial_hex == serial_hex)
    }
}

impl CertificateAuthority {
    /// Revokes the certificate with this serial (hex, any case, `:`
    /// separators allowed), persists it in `revoked.json` and rewrites
    /// `crl.pem`. Revoking an already revoked serial changes nothing.
    ///
    /// A server started with the CRL picks the change up on its next reload
    /// (see [`crate::ReloadingServerConfig`]).
    pub fn revoke(&mut self, serial_hex: &str, now: OffsetDateTime) -> Result<(), PkiError> {
        let serial_hex = serial::normalize_serial_hex(serial_hex)?;
        if self.revocations.contains(&serial_hex) {
            return Ok(());
        }
        let now = truncate(now);
        let mut next = self.revocations.clone();
        next.revoked.push(StoredRevocation {
            serial_hex: serial_hex.clone(),
            revoked_at_unix: now.unix_timestamp(),
        });
        next.crl_number += 1;
        next.save(&self.revoked_path())?;
        self.revocations = next;
        self.write_crl(now)?;
        tracing::info!(serial = %serial_hex, "revoked certificate");
        Ok(())
    }

    /// Re-signs `crl.pem` with a fresh thisUpdate/nextUpdate and a new CRL
    /// number, without changing its content.
    pub fn refresh_crl(&mut self, now: OffsetDateTime) -> Result<(), PkiError> {
        let mut next = self.revocations.clone();
        next.crl_number += 1;
        next.save(&self.revoked_path())?;
        self.revocations = next;
        self.write_crl(truncate(now))
    }

    /// Whether this serial (any accepted hex spelling) has been revoked.
    pub fn is_revoked(&self, serial_hex: &str) -> bool {
        serial::normalize_serial_hex(serial_hex)
            .map(|s| self.revocations.contains(&s))
            .unwrap_or(false)
    }

    /// Every revoked certificate, oldest first.
    pub fn revoked(&self) -> Vec<RevokedCert> {
        self.revocations
            .revoked
            .iter()
            .map(|r| RevokedCert {
                serial_hex: r.serial_hex.clone(),
                revoked_at: OffsetDateTime::from_unix_timestamp(r.revoked_at_unix)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            })
            .collect()
    }

    /// A DER CRL of every revoked serial, signed by the issuing CA, valid
    /// from `now` for [`CRL_VALIDITY`].
    pub fn crl_der(&self, now: OffsetDateTime) -> Result<Vec<u8>, PkiError> {
        Ok(self.crl(now)?.der().to_vec())
    }

    /// The same CRL as [`crl_der`](Self::crl_der), PEM-encoded.
    pub fn crl_pem(&self, now: OffsetDateTime) -> Result<String, PkiError> {
        Ok(self.crl(now)?.pem()?)
    }

    fn crl(&self, now: OffsetDateTime) -> Result<rcgen::CertificateRevocationList, PkiError> {
        let now = truncate(now);
        let revoked_certs = self
            .revocations
            .revoked
            .iter()
            .map(|r| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial::parse_hex(&r.serial_hex)?),
                    revocation_time: OffsetDateTime::from_unix_timestamp(r.revoked_at_unix)
                        .unwrap_or(now),
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: now + CRL_VALIDITY,
            crl_number: SerialNumber::from_slice(&self.revocations.crl_number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?)
    }

    pub(crate) fn write_crl(&self, now: OffsetDateTime) -> Result<(), PkiError> {
        let pem = self.crl_pem(now)?;
        files::write_atomic(&self.crl_path(), pem.as_bytes(), Mode::Public)
    }
}
