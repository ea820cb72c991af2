//! Certificates: issuance through the CA (generated key or CSR), status
//! changes, revocation into the CRL, and renewal with an overlap during
//! which both the old and the new certificate work.

use std::time::Duration;

use civitas_pki::{CertificateAuthority, IssuedCert};
use civitas_store::{
    CertificateRecord, CertificateStatus, PolicyTarget, RegistryView, RegistryWrite,
};
use serde::{Deserialize, Serialize};

use crate::clock::{add_ms, from_ms, to_ms};
use crate::error::RegistryError;
use crate::events::Actor;
use crate::names;
use crate::service::{Details, Registry};
use crate::things::require_thing;

/// (De)serializes [`CertificateStatus`] as `ACTIVE`, `INACTIVE`, `REVOKED`.
pub(crate) mod status_text {
    use civitas_store::CertificateStatus;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(s: &CertificateStatus, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<CertificateStatus, D::Error> {
        let text = String::deserialize(de)?;
        CertificateStatus::parse(&text)
            .ok_or_else(|| D::Error::custom(format!("unknown certificate status {text:?}")))
    }
}

/// A certificate as the registry reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Canonical lower-case hex.
    pub serial: String,
    pub thing: Option<String>,
    #[serde(with = "status_text")]
    pub status: CertificateStatus,
    pub common_name: String,
    pub not_before_ms: u64,
    pub not_after_ms: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub replaced_by: Option<String>,
    pub overlap_until_ms: Option<u64>,
    /// Policies attached to the certificate itself.
    pub policies: Vec<String>,
    pub certificate_pem: String,
}

impl Certificate {
    pub(crate) fn from_record(r: CertificateRecord, policies: Vec<String>) -> Certificate {
        Certificate {
            serial: r.serial_hex,
            thing: r.thing,
            status: r.status,
            common_name: r.common_name,
            not_before_ms: r.not_before_ms,
            not_after_ms: r.not_after_ms,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            replaced_by: r.replaced_by,
            overlap_until_ms: r.overlap_until_ms,
            policies,
            certificate_pem: r.certificate_pem,
        }
    }
}

/// A certificate just issued, with everything a device bundle needs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCertificate {
    pub serial: String,
    pub thing: Option<String>,
    pub common_name: String,
    /// The leaf alone.
    pub certificate_pem: String,
    /// Present when civitas generated the key; `None` for a CSR.
    pub private_key_pem: Option<String>,
    /// The CA bundle (issuing CA, then root).
    pub ca_bundle_pem: String,
    /// The issuing CA alone, to present after the leaf.
    pub issuer_pem: String,
    pub not_before_ms: u64,
    pub not_after_ms: u64,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("serial", &self.serial)
            .field("thing", &self.thing)
            .field(
                "private_key_pem",
                &self.private_key_pem.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl IssuedCertificate {
    pub(crate) fn new(issued: &IssuedCert, thing: Option<&str>, common_name: &str) -> Self {
        IssuedCertificate {
            serial: issued.serial_hex.clone(),
            thing: thing.map(str::to_owned),
            common_name: common_name.to_owned(),
            certificate_pem: issued.cert_pem.clone(),
            private_key_pem: issued.key_pem.clone(),
            ca_bundle_pem: issued.chain_pem.clone(),
            issuer_pem: issued.issuer_pem.clone(),
            not_before_ms: to_ms(issued.not_before),
            not_after_ms: to_ms(issued.not_after),
        }
    }

    /// The CA's form, whose `write_bundle` writes `NAME.pem`, `NAME.key`
    /// and `ca.pem`.
    pub fn to_issued_cert(&self) -> IssuedCert {
        IssuedCert {
            cert_pem: self.certificate_pem.clone(),
            key_pem: self.private_key_pem.clone(),
            serial_hex: self.serial.clone(),
            not_before: from_ms(self.not_before_ms),
            not_after: from_ms(self.not_after_ms),
            chain_pem: self.ca_bundle_pem.clone(),
            issuer_pem: self.issuer_pem.clone(),
        }
    }
}

/// The registry record of a certificate just issued.
pub(crate) fn record_of(
    issued: &IssuedCert,
    thing: Option<&str>,
    common_name: &str,
    status: CertificateStatus,
    now_ms: u64,
) -> CertificateRecord {
    CertificateRecord {
        serial_hex: issued.serial_hex.clone(),
        thing: thing.map(str::to_owned),
        status,
        common_name: common_name.to_owned(),
        certificate_pem: issued.cert_pem.clone(),
        not_before_ms: to_ms(issued.not_before),
        not_after_ms: to_ms(issued.not_after),
        created_ms: now_ms,
        updated_ms: now_ms,
        replaced_by: None,
        overlap_until_ms: None,
    }
}

pub(crate) fn require_certificate(
    view: &impl RegistryView,
    serial: &str,
) -> Result<CertificateRecord, RegistryError> {
    view.certificate(serial)?
        .ok_or_else(|| RegistryError::not_found("certificate", serial))
}

/// Whether a certificate in this state may be used to connect at `now_ms`:
/// active, and not past the overlap that a renewal gave it.
pub(crate) fn usable(cert: &CertificateRecord, now_ms: u64) -> bool {
    cert.status == CertificateStatus::Active
        && cert.overlap_until_ms.is_none_or(|until| now_ms < until)
}

impl Registry {
    /// Signs a device certificate with CN `common_name`, for the key in
    /// `csr` or a generated one.
    pub(crate) fn sign(
        &self,
        ca: &CertificateAuthority,
        common_name: &str,
        csr: Option<&str>,
        validity: Option<Duration>,
    ) -> Result<IssuedCert, RegistryError> {
        let validity = validity.unwrap_or(self.settings.device_certificate_validity);
        let now = self.now();
        Ok(match csr {
            Some(csr) => ca.issue_device_from_csr(csr, common_name, validity, now)?,
            None => ca.issue_device(common_name, validity, now)?,
        })
    }

    /// Records a certificate that was just signed. If the store refuses,
    /// the certificate is revoked: a signed certificate the registry does
    /// not know about must not stay usable.
    pub(crate) fn commit_issued<T>(
        &self,
        ca: &mut CertificateAuthority,
        issued: &IssuedCert,
        write: impl FnOnce(&mut RegistryWrite<'_>) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let result = self.store.registry_write(write);
        if result.is_err()
            && let Err(e) = ca.revoke(&issued.serial_hex, self.now())
        {
            tracing::error!(serial = %issued.serial_hex, error = %e, "could not revoke a certificate the registry failed to record");
        }
        result
    }

    /// Issues a certificate for an existing thing (CN = thing name),
    /// attached to it and ACTIVE. No policy is attached.
    pub fn issue_certificate_for(
        &self,
        actor: &Actor,
        thing: &str,
        csr: Option<&str>,
        validity: Option<Duration>,
    ) -> Result<IssuedCertificate, RegistryError> {
        let now = self.now_ms();
        self.change(
            actor,
            "CreateCertificate",
            format!("thing:{thing}"),
            |ca, details| {
                require_thing(&self.store.registry_read()?, thing)?;
                let issued = self.sign(ca, thing, csr, validity)?;
                details.insert("serial".into(), issued.serial_hex.clone());
                details.insert("from_csr".into(), csr.is_some().to_string());
                self.commit_issued(ca, &issued, |w| {
                    require_thing(w, thing)?;
                    w.put_certificate(&record_of(
                        &issued,
                        Some(thing),
                        thing,
                        CertificateStatus::Active,
                        now,
                    ))?;
                    Ok(())
                })?;
                self.bump();
                Ok(IssuedCertificate::new(&issued, Some(thing), thing))
            },
        )
    }

    /// Switches a certificate between ACTIVE and INACTIVE. Revoked
    /// certificates stay revoked; use [`Self::revoke_certificate`] to revoke.
    pub fn set_certificate_status(
        &self,
        actor: &Actor,
        serial: &str,
        status: CertificateStatus,
    ) -> Result<Certificate, RegistryError> {
        let serial = names::serial(serial)?;
        let now = self.now_ms();
        self.change(
            actor,
            "UpdateCertificate",
            format!("cert:{serial}"),
            |_, details| {
                details.insert("status".into(), status.as_str().into());
                if status == CertificateStatus::Revoked {
                    return Err(RegistryError::invalid(
                        "status",
                        "REVOKED is set by revoking the certificate",
                    ));
                }
                let cert = self.store.registry_write(|w| {
                    let mut cert = require_certificate(w, &serial)?;
                    set_status(&mut cert, status, now)?;
                    w.put_certificate(&cert)?;
                    let policies = w.target_policies(&PolicyTarget::Certificate(serial.clone()))?;
                    Ok::<_, RegistryError>(Certificate::from_record(cert, policies))
                })?;
                self.bump();
                Ok(cert)
            },
        )
    }

    /// Revokes a certificate at the CA (the CRL is rewritten; servers pick
    /// it up on their next reload), marks it REVOKED and detaches its
    /// policies. Revoking twice is not an error.
    pub fn revoke_certificate(
        &self,
        actor: &Actor,
        serial: &str,
    ) -> Result<Certificate, RegistryError> {
        let serial = names::serial(serial)?;
        self.change(
            actor,
            "RevokeCertificate",
            format!("cert:{serial}"),
            |ca, details| {
                let cert = self.revoke_locked(ca, &serial, details)?;
                self.bump();
                Ok(cert)
            },
        )
    }

    fn revoke_locked(
        &self,
        ca: &mut CertificateAuthority,
        serial: &str,
        details: &mut Details,
    ) -> Result<Certificate, RegistryError> {
        let now = self.now_ms();
        require_certificate(&self.store.registry_read()?, serial)?;
        ca.revoke(serial, self.now())?;
        self.store.registry_write(|w| {
            let mut cert = require_certificate(w, serial)?;
            let detached = w.detach_all(&PolicyTarget::Certificate(serial.to_owned()))?;
            if !detached.is_empty() {
                details.insert("detached_policies".into(), detached.join(","));
            }
            cert.status = CertificateStatus::Revoked;
            cert.updated_ms = now;
            w.put_certificate(&cert)?;
            Ok(Certificate::from_record(cert, Vec::new()))
        })
    }

    /// Revokes every certificate of a thing that is not revoked yet;
    /// returns their serials.
    pub fn revoke_thing_certificates(
        &self,
        actor: &Actor,
        thing: &str,
    ) -> Result<Vec<String>, RegistryError> {
        self.change(
            actor,
            "RevokeThingCertificates",
            format!("thing:{thing}"),
            |ca, details| {
                let read = self.store.registry_read()?;
                require_thing(&read, thing)?;
                let certs = read.certificates_of_thing(thing)?;
                drop(read);
                let mut revoked = Vec::new();
                for cert in certs {
                    if cert.status != CertificateStatus::Revoked {
                        self.revoke_locked(ca, &cert.serial_hex, details)?;
                        revoked.push(cert.serial_hex);
                    }
                }
                details.insert("revoked".into(), revoked.join(","));
                self.bump();
                Ok(revoked)
            },
        )
    }

    /// Sets every non-revoked certificate of a thing ACTIVE or INACTIVE;
    /// returns the serials changed.
    pub fn set_thing_certificates_status(
        &self,
        actor: &Actor,
        thing: &str,
        status: CertificateStatus,
    ) -> Result<Vec<String>, RegistryError> {
        let now = self.now_ms();
        self.change(
            actor,
            "UpdateThingCertificates",
            format!("thing:{thing}"),
            |_, details| {
                details.insert("status".into(), status.as_str().into());
                if status == CertificateStatus::Revoked {
                    return Err(RegistryError::invalid(
                        "status",
                        "REVOKED is set by revoking the certificates",
                    ));
                }
                let changed = self.store.registry_write(|w| {
                    require_thing(w, thing)?;
                    let mut changed = Vec::new();
                    for mut cert in w.certificates_of_thing(thing)? {
                        // Reactivating the whole device must not bring back
                        // certificates that a renewal replaced.
                        let replaced = cert.replaced_by.is_some();
                        if cert.status != CertificateStatus::Revoked
                            && cert.status != status
                            && !(replaced && status == CertificateStatus::Active)
                        {
                            set_status(&mut cert, status, now)?;
                            w.put_certificate(&cert)?;
                            changed.push(cert.serial_hex);
                        }
                    }
                    Ok::<_, RegistryError>(changed)
                })?;
                details.insert("changed".into(), changed.join(","));
                self.bump();
                Ok(changed)
            },
        )
    }

    /// Issues a successor for a certificate: same thing and CN, the old
    /// certificate's policies attached to it too. The old one keeps working
    /// for `overlap`, then counts as inactive (and is marked INACTIVE by
    /// [`Self::retire_replaced_certificates`]).
    pub fn renew_certificate(
        &self,
        actor: &Actor,
        serial: &str,
        csr: Option<&str>,
        overlap: Duration,
    ) -> Result<IssuedCertificate, RegistryError> {
        self.renew(actor, "RenewCertificate", serial, csr, overlap, false)
    }

    /// A device renewing the certificate it is connected with, from its
    /// CSR: as [`Self::renew_certificate`], but only for a certificate of a
    /// thing and only once — a certificate that already has a successor
    /// cannot be renewed again, so a copy of an old key cannot keep
    /// extending its own overlap or mint more certificates.
    pub fn renew_own_certificate(
        &self,
        actor: &Actor,
        serial: &str,
        csr: &str,
        overlap: Duration,
    ) -> Result<IssuedCertificate, RegistryError> {
        self.renew(
            actor,
            "RenewOwnCertificate",
            serial,
            Some(csr),
            overlap,
            true,
        )
    }

    fn renew(
        &self,
        actor: &Actor,
        action: &str,
        serial: &str,
        csr: Option<&str>,
        overlap: Duration,
        by_device: bool,
    ) -> Result<IssuedCertificate, RegistryError> {
        let serial = names::serial(serial)?;
        let now = self.now_ms();
        self.change(actor, action, format!("cert:{serial}"), |ca, details| {
                let old = require_certificate(&self.store.registry_read()?, &serial)?;
                if !usable(&old, now) {
                    return Err(RegistryError::Conflict(format!(
                        "certificate {serial} is {} and cannot be renewed",
                        if old.status == CertificateStatus::Active {
                            "past its renewal overlap"
                        } else {
                            old.status.as_str()
                        }
                    )));
                }
                if by_device {
                    if old.thing.is_none() {
                        return Err(RegistryError::Conflict(format!(
                            "certificate {serial} belongs to no thing; only a thing's certificate is renewed by its device"
                        )));
                    }
                    if let Some(successor) = &old.replaced_by {
                        return Err(RegistryError::Conflict(format!(
                            "certificate {serial} was already renewed (by {successor})"
                        )));
                    }
                }
                let issued = self.sign(ca, &old.common_name, csr, None)?;
                details.insert("new_serial".into(), issued.serial_hex.clone());
                let thing = old.thing.clone();
                self.commit_issued(ca, &issued, |w| {
                    let mut old = require_certificate(w, &serial)?;
                    let new = record_of(
                        &issued,
                        thing.as_deref(),
                        &old.common_name,
                        CertificateStatus::Active,
                        now,
                    );
                    w.put_certificate(&new)?;
                    let old_target = PolicyTarget::Certificate(serial.clone());
                    let new_target = PolicyTarget::Certificate(issued.serial_hex.clone());
                    for policy in w.target_policies(&old_target)? {
                        w.attach(&policy, &new_target)?;
                    }
                    old.replaced_by = Some(issued.serial_hex.clone());
                    old.overlap_until_ms = Some(add_ms(now, overlap));
                    if overlap.is_zero() {
                        old.status = CertificateStatus::Inactive;
                    }
                    old.updated_ms = now;
                    w.put_certificate(&old)?;
                    Ok(())
                })?;
                self.bump();
                Ok(IssuedCertificate::new(
                    &issued,
                    thing.as_deref(),
                    &old.common_name,
                ))
            },
        )
    }

    /// Marks INACTIVE every replaced certificate whose overlap has ended;
    /// returns their serials. Run it periodically.
    pub fn retire_replaced_certificates(
        &self,
        actor: &Actor,
    ) -> Result<Vec<String>, RegistryError> {
        let now = self.now_ms();
        let due = |c: &CertificateRecord| {
            c.status == CertificateStatus::Active && c.overlap_until_ms.is_some_and(|u| u <= now)
        };
        // A read first, so that the common case (nothing due) neither takes
        // the lock nor records an event.
        if !self.store.registry_read()?.certificates()?.iter().any(due) {
            return Ok(Vec::new());
        }
        self.change(
            actor,
            "RetireReplacedCertificates",
            "certificates",
            |_, details| {
                let retired = self.store.registry_write(|w| {
                    let mut retired = Vec::new();
                    for mut cert in w.certificates()? {
                        if due(&cert) {
                            cert.status = CertificateStatus::Inactive;
                            cert.updated_ms = now;
                            w.put_certificate(&cert)?;
                            retired.push(cert.serial_hex);
                        }
                    }
                    Ok::<_, RegistryError>(retired)
                })?;
                details.insert("retired".into(), retired.join(","));
                self.bump();
                Ok(retired)
            },
        )
    }

    pub fn describe_certificate(&self, serial: &str) -> Result<Certificate, RegistryError> {
        let serial = names::serial(serial)?;
        let read = self.store.registry_read()?;
        let cert = require_certificate(&read, &serial)?;
        let policies = read.target_policies(&PolicyTarget::Certificate(serial))?;
        Ok(Certificate::from_record(cert, policies))
    }

    /// Every certificate, by serial.
    pub fn list_certificates(&self) -> Result<Vec<Certificate>, RegistryError> {
        let read = self.store.registry_read()?;
        read.certificates()?
            .into_iter()
            .map(|cert| {
                let policies =
                    read.target_policies(&PolicyTarget::Certificate(cert.serial_hex.clone()))?;
                Ok(Certificate::from_record(cert, policies))
            })
            .collect()
    }
}

fn set_status(
    cert: &mut CertificateRecord,
    status: CertificateStatus,
    now_ms: u64,
) -> Result<(), RegistryError> {
    if cert.status == CertificateStatus::Revoked {
        return Err(RegistryError::Conflict(format!(
            "certificate {} is revoked; revocation is final",
            cert.serial_hex
        )));
    }
    if status == CertificateStatus::Active {
        // An explicit activation is the operator's decision to use this
        // certificate, so a renewal overlap no longer limits it.
        cert.overlap_until_ms = None;
    }
    cert.status = status;
    cert.updated_ms = now_ms;
    Ok(())
}
