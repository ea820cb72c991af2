//! Enrollment tokens — an operator creates one for a thing, the device
//! redeems it once with its CSR — and the ownership tokens of fleet
//! provisioning, which prove that the caller received a certificate made
//! from its CSR.

use std::time::Duration;

use civitas_store::{
    CertificateStatus, EnrollmentTokenRecord, OwnershipTokenRecord, PolicyTarget, RegistryView,
    RegistryWrite,
};
use serde::{Deserialize, Serialize};

use crate::certificates::{IssuedCertificate, record_of};
use crate::clock::add_ms;
use crate::error::RegistryError;
use crate::events::Actor;
use crate::policies::ensure_policy;
use crate::service::Registry;
use crate::things::{NewThing, insert_thing, require_thing};
use crate::tokens;

/// The longest an enrollment token may live.
pub const MAX_ENROLLMENT_TTL: Duration = Duration::from_secs(30 * 86400);
const ENROLLMENT_PREFIX: &str = "cve_";
const OWNERSHIP_PREFIX: &str = "cvo_";

/// A new enrollment token; `token` is shown only here.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    pub token: String,
    pub thing: String,
    pub expires_ms: u64,
    /// Whether the thing was created for this token.
    pub thing_created: bool,
}

impl std::fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentToken")
            .field("thing", &self.thing)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

fn refused(kind: &'static str, reason: &'static str) -> RegistryError {
    RegistryError::TokenRefused { kind, reason }
}

/// Consumes an ownership token inside a write transaction; returns the
/// serial of the certificate it vouches for.
pub(crate) fn take_ownership_token(
    w: &mut RegistryWrite<'_>,
    token: &str,
    now_ms: u64,
) -> Result<String, RegistryError> {
    let hash = tokens::hash(token);
    let record = w
        .ownership_token(&hash)?
        .ok_or_else(|| refused("ownership", "unknown or already used"))?;
    if now_ms >= record.expires_ms {
        w.delete_ownership_token(&hash)?;
        return Err(refused("ownership", "expired"));
    }
    w.delete_ownership_token(&hash)?;
    Ok(record.serial_hex)
}

impl Registry {
    /// Attaches the default device policy (creating the standard one if
    /// needed) to a certificate; returns its name, if one is configured.
    pub(crate) fn attach_default_policy(
        &self,
        w: &mut RegistryWrite<'_>,
        serial: &str,
        now_ms: u64,
    ) -> Result<Option<String>, RegistryError> {
        let Some(policy) = self.settings.default_device_policy.clone() else {
            return Ok(None);
        };
        ensure_policy(w, &policy, now_ms)?;
        w.attach(&policy, &PolicyTarget::Certificate(serial.to_owned()))?;
        Ok(Some(policy))
    }

    /// Creates a one-time token with which a device can obtain a
    /// certificate for `thing` from its own CSR within `ttl`. The thing is
    /// created (without type, attributes or groups) if it does not exist.
    pub fn create_enrollment_token(
        &self,
        actor: &Actor,
        thing: &str,
        ttl: Duration,
    ) -> Result<EnrollmentToken, RegistryError> {
        let now = self.now_ms();
        self.change(
            actor,
            "CreateEnrollmentToken",
            format!("thing:{thing}"),
            |_, details| {
                if ttl.is_zero() || ttl > MAX_ENROLLMENT_TTL {
                    return Err(RegistryError::invalid(
                        "token lifetime",
                        "must be more than 0 s and at most 30 days",
                    ));
                }
                let token = tokens::generate(ENROLLMENT_PREFIX)?;
                let hash = tokens::hash(&token);
                let expires_ms = add_ms(now, ttl);
                let thing_created = self.store.registry_write(|w| {
                    let created = if w.thing(thing)?.is_none() {
                        let new = NewThing {
                            name: thing.to_owned(),
                            ..NewThing::default()
                        };
                        insert_thing(w, &new, now)?;
                        true
                    } else {
                        false
                    };
                    w.put_enrollment_token(
                        &hash,
                        &EnrollmentTokenRecord {
                            thing: thing.to_owned(),
                            created_ms: now,
                            expires_ms,
                            used_ms: None,
                            certificate: None,
                        },
                    )?;
                    Ok::<_, RegistryError>(created)
                })?;
                details.insert("token".into(), tokens::label(&hash));
                details.insert("expires_ms".into(), expires_ms.to_string());
                details.insert("thing_created".into(), thing_created.to_string());
                Ok(EnrollmentToken {
                    token,
                    thing: thing.to_owned(),
                    expires_ms,
                    thing_created,
                })
            },
        )
    }

    /// Redeems an enrollment token: issues a certificate for the token's
    /// thing from `csr`, ACTIVE, with the default device policy. Works once;
    /// refused once used or expired. A CSR that is refused does not use the
    /// token up.
    pub fn redeem_enrollment_token(
        &self,
        actor: &Actor,
        token: &str,
        csr: &str,
    ) -> Result<IssuedCertificate, RegistryError> {
        let hash = tokens::hash(token);
        let now = self.now_ms();
        self.change(
            actor,
            "RedeemEnrollmentToken",
            tokens::label(&hash),
            |ca, details| {
                let read = self.store.registry_read()?;
                let record = read
                    .enrollment_token(&hash)?
                    .ok_or_else(|| refused("enrollment", "unknown"))?;
                if record.used_ms.is_some() {
                    return Err(refused("enrollment", "already used"));
                }
                if now >= record.expires_ms {
                    return Err(refused("enrollment", "expired"));
                }
                let thing = record.thing.clone();
                details.insert("thing".into(), thing.clone());
                require_thing(&read, &thing)?;
                drop(read);
                let issued = self.sign(ca, &thing, Some(csr), None)?;
                details.insert("serial".into(), issued.serial_hex.clone());
                self.commit_issued(ca, &issued, |w| {
                    w.put_certificate(&record_of(
                        &issued,
                        Some(&thing),
                        &thing,
                        CertificateStatus::Active,
                        now,
                    ))?;
                    w.put_enrollment_token(
                        &hash,
                        &EnrollmentTokenRecord {
                            used_ms: Some(now),
                            certificate: Some(issued.serial_hex.clone()),
                            ..record
                        },
                    )?;
                    if let Some(policy) = self.attach_default_policy(w, &issued.serial_hex, now)? {
                        details.insert("policy".into(), policy);
                    }
                    Ok(())
                })?;
                self.bump();
                Ok(IssuedCertificate::new(&issued, Some(&thing), &thing))
            },
        )
    }

    /// Fleet provisioning, step one (AWS `CreateCertificateFromCsr`):
    /// signs `csr` with a generated CommonName (`fleet-…`), stores the
    /// certificate INACTIVE and attached to nothing, and returns it with an
    /// ownership token valid for the configured time (default 1 h). Step
    /// two is [`Self::register_with_ownership_token`].
    pub fn create_certificate_from_csr(
        &self,
        actor: &Actor,
        csr: &str,
    ) -> Result<(IssuedCertificate, String), RegistryError> {
        self.create_unregistered(actor, "CreateCertificateFromCsr", Some(csr))
    }

    /// Fleet provisioning, step one (AWS `CreateKeysAndCertificate`): as
    /// [`Self::create_certificate_from_csr`], with a key pair civitas
    /// generates; the private key is in the returned certificate and
    /// nowhere else.
    pub fn create_keys_and_certificate(
        &self,
        actor: &Actor,
    ) -> Result<(IssuedCertificate, String), RegistryError> {
        self.create_unregistered(actor, "CreateKeysAndCertificate", None)
    }

    fn create_unregistered(
        &self,
        actor: &Actor,
        action: &str,
        csr: Option<&str>,
    ) -> Result<(IssuedCertificate, String), RegistryError> {
        let now = self.now_ms();
        self.change(actor, action, "certificate", |ca, details| {
            let label = tokens::generate("")?;
            let common_name: String = format!(
                "fleet-{}",
                label
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(16)
                    .collect::<String>()
            );
            let issued = self.sign(ca, &common_name, csr, None)?;
            let token = tokens::generate(OWNERSHIP_PREFIX)?;
            let hash = tokens::hash(&token);
            let expires_ms = add_ms(now, self.settings.ownership_token_ttl);
            details.insert("serial".into(), issued.serial_hex.clone());
            details.insert("ownership_token".into(), tokens::label(&hash));
            self.commit_issued(ca, &issued, |w| {
                w.put_certificate(&record_of(
                    &issued,
                    None,
                    &common_name,
                    CertificateStatus::Inactive,
                    now,
                ))?;
                w.put_ownership_token(
                    &hash,
                    &OwnershipTokenRecord {
                        serial_hex: issued.serial_hex.clone(),
                        created_ms: now,
                        expires_ms,
                    },
                )?;
                Ok(())
            })?;
            Ok((IssuedCertificate::new(&issued, None, &common_name), token))
        })
    }

    /// Deletes expired ownership tokens and enrollment tokens that are past
    /// their expiry; returns how many. Run it periodically.
    pub fn purge_expired_tokens(&self) -> Result<usize, RegistryError> {
        let now = self.now_ms();
        let _guard = self.lock();
        self.store.registry_write(|w| {
            let mut purged = 0;
            for (hash, token) in w.ownership_tokens()? {
                if now >= token.expires_ms {
                    w.delete_ownership_token(&hash)?;
                    purged += 1;
                }
            }
            for (hash, token) in w.enrollment_tokens()? {
                if now >= token.expires_ms {
                    w.delete_enrollment_token(&hash)?;
                    purged += 1;
                }
            }
            Ok(purged)
        })
    }
}
