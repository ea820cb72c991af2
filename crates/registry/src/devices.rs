//! `add_device`: the one-step registration behind `civitas device add` —
//! thing, certificate and policy together, so that a refused step leaves
//! nothing half-made behind.

use std::time::Duration;

use civitas_store::{CertificateStatus, PolicyTarget, RegistryView};
use serde::{Deserialize, Serialize};

use crate::certificates::{IssuedCertificate, record_of};
use crate::error::RegistryError;
use crate::events::Actor;
use crate::policies::ensure_policy;
use crate::service::{Registry, STANDARD_DEVICE_POLICY};
use crate::things::{NewThing, Thing, check_new_thing, insert_thing};

/// Which policy a new device's certificate gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DevicePolicy {
    /// The registry's default device policy (see
    /// [`crate::RegistrySettings::default_device_policy`]).
    #[default]
    Default,
    /// An existing policy (or the standard one, created on first use).
    Named(String),
    /// None: the device can connect to nothing until a policy reaches it.
    Nothing,
}

/// What `add_device` needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDevice {
    pub thing: NewThing,
    /// The device's own CSR (PEM); without one civitas generates the key.
    #[serde(default)]
    pub csr: Option<String>,
    /// Certificate validity; the registry's default when absent.
    #[serde(default)]
    pub validity_secs: Option<u64>,
    #[serde(default)]
    pub policy: DevicePolicy,
}

/// What `add_device` made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAdded {
    pub thing: Thing,
    pub certificate: IssuedCertificate,
    pub policy: Option<String>,
}

impl Registry {
    /// Creates a thing, issues its certificate (CN = thing name, ACTIVE)
    /// and attaches a policy to the certificate, all or nothing.
    pub fn add_device(
        &self,
        actor: &Actor,
        device: NewDevice,
    ) -> Result<DeviceAdded, RegistryError> {
        let now = self.now_ms();
        let name = device.thing.name.clone();
        self.change(
            actor,
            "AddDevice",
            format!("thing:{name}"),
            |ca, details| {
                let policy = match &device.policy {
                    DevicePolicy::Default => self.settings.default_device_policy.clone(),
                    DevicePolicy::Named(p) => Some(p.clone()),
                    DevicePolicy::Nothing => None,
                };
                // Everything that can be refused is checked before signing, so
                // a typo does not cost a revoked certificate.
                let read = self.store.registry_read()?;
                check_new_thing(&read, &device.thing)?;
                if let Some(p) = &policy
                    && p != STANDARD_DEVICE_POLICY
                    && read.policy(p)?.is_none()
                {
                    return Err(RegistryError::not_found("policy", p));
                }
                drop(read);
                let validity = device.validity_secs.map(Duration::from_secs);
                let issued = self.sign(ca, &name, device.csr.as_deref(), validity)?;
                details.insert("serial".into(), issued.serial_hex.clone());
                details.insert("from_csr".into(), device.csr.is_some().to_string());
                let thing = self.commit_issued(ca, &issued, |w| {
                    let thing = insert_thing(w, &device.thing, now)?;
                    w.put_certificate(&record_of(
                        &issued,
                        Some(&name),
                        &name,
                        CertificateStatus::Active,
                        now,
                    ))?;
                    if let Some(p) = &policy {
                        ensure_policy(w, p, now)?;
                        w.attach(p, &PolicyTarget::Certificate(issued.serial_hex.clone()))?;
                    }
                    Ok(thing)
                })?;
                if let Some(p) = &policy {
                    details.insert("policy".into(), p.clone());
                }
                self.bump();
                Ok(DeviceAdded {
                    thing: thing.into(),
                    certificate: IssuedCertificate::new(&issued, Some(&name), &name),
                    policy,
                })
            },
        )
    }
}
