//! Policies: named, versioned AWS IoT policy documents (validated by
//! civitas-policy), and their attachments to certificates, things and
//! thing groups.

use std::collections::BTreeMap;

use civitas_policy::{PolicyDocument, standard_device_policy, validate_policy_name};
use civitas_store::{PolicyRecord, PolicyTarget, PolicyVersionRecord, RegistryView, RegistryWrite};
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;
use crate::events::Actor;
use crate::names;
use crate::service::{Registry, STANDARD_DEVICE_POLICY};

/// AWS IoT keeps at most five versions of a policy.
pub const MAX_POLICY_VERSIONS: usize = 5;

/// One version of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub version: u32,
    pub is_default: bool,
    pub created_ms: u64,
    pub document: String,
}

/// A policy with its versions and where it is attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub default_version: u32,
    pub versions: Vec<PolicyVersion>,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// `cert:…`, `thing:…`, `group:…`.
    pub targets: Vec<String>,
    /// Policy variables in the default version that civitas never
    /// resolves: statements using them never apply.
    pub warnings: Vec<String>,
}

fn view(record: PolicyRecord, targets: Vec<PolicyTarget>) -> Policy {
    let warnings = record
        .versions
        .get(&record.default_version)
        .and_then(|v| PolicyDocument::parse(&v.document).ok())
        .map(|doc| {
            doc.unsupported_variables()
                .into_iter()
                .map(|v| format!("policy variable ${{{v}}} is never resolved by civitas; statements using it never apply"))
                .collect()
        })
        .unwrap_or_default();
    Policy {
        versions: record
            .versions
            .iter()
            .map(|(version, v)| PolicyVersion {
                version: *version,
                is_default: *version == record.default_version,
                created_ms: v.created_ms,
                document: v.document.clone(),
            })
            .collect(),
        name: record.name,
        default_version: record.default_version,
        created_ms: record.created_ms,
        updated_ms: record.updated_ms,
        targets: targets.iter().map(PolicyTarget::key).collect(),
        warnings,
    }
}

fn require_policy(view: &impl RegistryView, name: &str) -> Result<PolicyRecord, RegistryError> {
    view.policy(name)?
        .ok_or_else(|| RegistryError::not_found("policy", name))
}

fn new_record(name: &str, document: &str, now_ms: u64) -> PolicyRecord {
    PolicyRecord {
        name: name.to_owned(),
        versions: BTreeMap::from([(
            1,
            PolicyVersionRecord {
                document: document.to_owned(),
                created_ms: now_ms,
            },
        )]),
        default_version: 1,
        next_version: 2,
        created_ms: now_ms,
        updated_ms: now_ms,
    }
}

/// Makes sure the policy exists: the standard device policy is created on
/// first use, any other name must have been created by an operator.
pub(crate) fn ensure_policy(
    w: &mut RegistryWrite<'_>,
    name: &str,
    now_ms: u64,
) -> Result<(), RegistryError> {
    if w.policy(name)?.is_some() {
        return Ok(());
    }
    if name != STANDARD_DEVICE_POLICY {
        return Err(RegistryError::not_found("policy", name));
    }
    let document = standard_device_policy();
    w.put_policy(&new_record(name, document.source(), now_ms))?;
    Ok(())
}

/// Stores a new policy at version 1, for policies civitas makes itself
/// (claim policies); the name and document are checked all the same.
pub(crate) fn put_new_policy(
    w: &mut RegistryWrite<'_>,
    name: &str,
    document: &str,
    now_ms: u64,
) -> Result<(), RegistryError> {
    validate_policy_name(name)?;
    PolicyDocument::parse(document)?;
    w.put_policy(&new_record(name, document, now_ms))?;
    Ok(())
}

/// Normalises a certificate target's serial and checks the target exists.
pub(crate) fn resolve_target(
    view: &impl RegistryView,
    target: &PolicyTarget,
) -> Result<PolicyTarget, RegistryError> {
    let target = match target {
        PolicyTarget::Certificate(serial) => PolicyTarget::Certificate(names::serial(serial)?),
        other => other.clone(),
    };
    let exists = match &target {
        PolicyTarget::Certificate(serial) => view.certificate(serial)?.is_some(),
        PolicyTarget::Thing(name) => view.thing(name)?.is_some(),
        PolicyTarget::Group(name) => view.thing_group(name)?.is_some(),
    };
    if !exists {
        let kind = match &target {
            PolicyTarget::Certificate(_) => "certificate",
            PolicyTarget::Thing(_) => "thing",
            PolicyTarget::Group(_) => "thing group",
        };
        let name = target.key();
        let name = name.split_once(':').map_or(name.as_str(), |(_, n)| n);
        return Err(RegistryError::not_found(kind, name));
    }
    Ok(target)
}

impl Registry {
    /// Creates a policy at version 1 from a document that civitas-policy
    /// accepts; errors point into the document.
    pub fn create_policy(
        &self,
        actor: &Actor,
        name: &str,
        document: &str,
    ) -> Result<Policy, RegistryError> {
        let now = self.now_ms();
        self.change(actor, "CreatePolicy", format!("policy:{name}"), |_, _| {
            validate_policy_name(name)?;
            PolicyDocument::parse(document)?;
            let record = self.store.registry_write(|w| {
                if w.policy(name)?.is_some() {
                    return Err(RegistryError::exists("policy", name));
                }
                let record = new_record(name, document, now);
                w.put_policy(&record)?;
                Ok(record)
            })?;
            Ok(view(record, Vec::new()))
        })
    }

    /// Adds a version; with `set_default` it becomes the one evaluated.
    pub fn create_policy_version(
        &self,
        actor: &Actor,
        name: &str,
        document: &str,
        set_default: bool,
    ) -> Result<Policy, RegistryError> {
        let now = self.now_ms();
        self.change(actor, "CreatePolicyVersion", format!("policy:{name}"), |_, details| {
            PolicyDocument::parse(document)?;
            let policy = self.store.registry_write(|w| {
                let mut record = require_policy(w, name)?;
                if record.versions.len() >= MAX_POLICY_VERSIONS {
                    return Err(RegistryError::Conflict(format!(
                        "policy {name:?} has {MAX_POLICY_VERSIONS} versions, the maximum; delete one first"
                    )));
                }
                let version = record.next_version;
                record.next_version += 1;
                record.versions.insert(
                    version,
                    PolicyVersionRecord {
                        document: document.to_owned(),
                        created_ms: now,
                    },
                );
                if set_default {
                    record.default_version = version;
                }
                record.updated_ms = now;
                w.put_policy(&record)?;
                details.insert("version".into(), version.to_string());
                details.insert("set_default".into(), set_default.to_string());
                let targets = w.policy_targets(name)?;
                Ok(view(record, targets))
            })?;
            if set_default {
                self.bump();
            }
            Ok(policy)
        })
    }

    /// Makes an existing version the one evaluated.
    pub fn set_default_policy_version(
        &self,
        actor: &Actor,
        name: &str,
        version: u32,
    ) -> Result<Policy, RegistryError> {
        let now = self.now_ms();
        self.change(
            actor,
            "SetDefaultPolicyVersion",
            format!("policy:{name}"),
            |_, details| {
                details.insert("version".into(), version.to_string());
                let policy = self.store.registry_write(|w| {
                    let mut record = require_policy(w, name)?;
                    if !record.versions.contains_key(&version) {
                        return Err(RegistryError::not_found(
                            "policy version",
                            format!("{name} v{version}"),
                        ));
                    }
                    record.default_version = version;
                    record.updated_ms = now;
                    w.put_policy(&record)?;
                    let targets = w.policy_targets(name)?;
                    Ok(view(record, targets))
                })?;
                self.bump();
                Ok(policy)
            },
        )
    }

    /// Deletes a version other than the default.
    pub fn delete_policy_version(
        &self,
        actor: &Actor,
        name: &str,
        version: u32,
    ) -> Result<Policy, RegistryError> {
        let now = self.now_ms();
        self.change(actor, "DeletePolicyVersion", format!("policy:{name}"), |_, details| {
            details.insert("version".into(), version.to_string());
            self.store.registry_write(|w| {
                let mut record = require_policy(w, name)?;
                if record.default_version == version {
                    return Err(RegistryError::Conflict(format!(
                        "version {version} is the default of policy {name:?}; make another version the default first"
                    )));
                }
                if record.versions.remove(&version).is_none() {
                    return Err(RegistryError::not_found(
                        "policy version",
                        format!("{name} v{version}"),
                    ));
                }
                record.updated_ms = now;
                w.put_policy(&record)?;
                let targets = w.policy_targets(name)?;
                Ok(view(record, targets))
            })
        })
    }

    pub fn get_policy(&self, name: &str) -> Result<Policy, RegistryError> {
        let read = self.store.registry_read()?;
        let record = require_policy(&read, name)?;
        let targets = read.policy_targets(name)?;
        Ok(view(record, targets))
    }

    /// Every policy, by name.
    pub fn list_policies(&self) -> Result<Vec<Policy>, RegistryError> {
        let read = self.store.registry_read()?;
        read.policies()?
            .into_iter()
            .map(|record| {
                let targets = read.policy_targets(&record.name)?;
                Ok(view(record, targets))
            })
            .collect()
    }

    /// Attaches a policy to a certificate, thing or group (which must
    /// exist). Returns false if it was attached already.
    pub fn attach_policy(
        &self,
        actor: &Actor,
        name: &str,
        target: &PolicyTarget,
    ) -> Result<bool, RegistryError> {
        self.change(
            actor,
            "AttachPolicy",
            format!("policy:{name}"),
            |_, details| {
                details.insert("target".into(), target.key());
                let attached = self.store.registry_write(|w| {
                    require_policy(w, name)?;
                    let target = resolve_target(w, target)?;
                    Ok::<_, RegistryError>(w.attach(name, &target)?)
                })?;
                self.bump();
                Ok(attached)
            },
        )
    }

    /// Detaches a policy; returns false if it was not attached there.
    pub fn detach_policy(
        &self,
        actor: &Actor,
        name: &str,
        target: &PolicyTarget,
    ) -> Result<bool, RegistryError> {
        self.change(
            actor,
            "DetachPolicy",
            format!("policy:{name}"),
            |_, details| {
                details.insert("target".into(), target.key());
                let detached = self.store.registry_write(|w| {
                    require_policy(w, name)?;
                    let target = match target {
                        PolicyTarget::Certificate(s) => {
                            PolicyTarget::Certificate(names::serial(s)?)
                        }
                        other => other.clone(),
                    };
                    Ok::<_, RegistryError>(w.detach(name, &target)?)
                })?;
                self.bump();
                Ok(detached)
            },
        )
    }

    /// Deletes a policy; refused while it is attached anywhere.
    pub fn delete_policy(&self, actor: &Actor, name: &str) -> Result<(), RegistryError> {
        self.change(actor, "DeletePolicy", format!("policy:{name}"), |_, _| {
            self.store.registry_write(|w| {
                require_policy(w, name)?;
                let targets = w.policy_targets(name)?;
                if !targets.is_empty() {
                    let list: Vec<String> = targets.iter().map(PolicyTarget::key).collect();
                    return Err(RegistryError::Conflict(format!(
                        "policy {name:?} is attached to {}; detach it first",
                        list.join(", ")
                    )));
                }
                w.delete_policy(name)?;
                Ok(())
            })
        })
    }
}
