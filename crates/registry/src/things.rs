//! Things and thing types: creation with validation, description with
//! certificates and effective policies, group membership, deletion.

use std::collections::BTreeMap;

use civitas_store::{
    CertificateStatus, PolicyTarget, RegistryView, RegistryWrite, ThingRecord, ThingTypeRecord,
};
use serde::{Deserialize, Serialize};

use crate::certificates::Certificate;
use crate::error::RegistryError;
use crate::events::Actor;
use crate::groups::ancestors;
use crate::names;
use crate::service::Registry;

/// A thing as the registry reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thing {
    pub name: String,
    pub thing_type: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// Groups the thing belongs to directly, sorted.
    pub groups: Vec<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub version: u64,
}

impl From<ThingRecord> for Thing {
    fn from(r: ThingRecord) -> Thing {
        Thing {
            name: r.name,
            thing_type: r.thing_type,
            attributes: r.attributes,
            groups: r.groups,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            version: r.version,
        }
    }
}

/// What `create_thing` needs. Type and groups must exist already.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewThing {
    pub name: String,
    #[serde(default)]
    pub thing_type: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A policy that applies to a thing's connections, and through what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedPolicy {
    pub policy: String,
    /// The target it is attached to: `cert:…`, `thing:…` or `group:…`.
    pub via: String,
}

/// A thing with its certificates and the policies that reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThingDescription {
    pub thing: Thing,
    pub certificates: Vec<Certificate>,
    /// Certificate policies first, then the thing's, then its groups'
    /// (nearest group first).
    pub policies: Vec<AttachedPolicy>,
}

/// What deleting a thing did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedThing {
    pub name: String,
    /// Certificates revoked because their thing is gone.
    pub revoked: Vec<String>,
    /// Policies that were attached to the thing itself.
    pub detached_policies: Vec<String>,
}

/// A thing type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThingType {
    pub name: String,
    pub description: Option<String>,
    pub deprecated: bool,
    pub created_ms: u64,
}

impl From<ThingTypeRecord> for ThingType {
    fn from(r: ThingTypeRecord) -> ThingType {
        ThingType {
            name: r.name,
            description: r.description,
            deprecated: r.deprecated,
            created_ms: r.created_ms,
        }
    }
}

/// Checks what can be checked without the store; returns the groups
/// sorted and de-duplicated.
pub(crate) fn validate_new_thing(new: &NewThing) -> Result<Vec<String>, RegistryError> {
    names::thing_name(&new.name)?;
    if let Some(t) = &new.thing_type {
        names::thing_type_name(t)?;
    }
    names::attributes(&new.attributes)?;
    let mut groups = new.groups.clone();
    groups.sort();
    groups.dedup();
    for g in &groups {
        names::thing_group_name(g)?;
    }
    if groups.len() > names::MAX_GROUPS_PER_THING {
        return Err(RegistryError::invalid(
            format!("thing {:?}", new.name),
            format!(
                "may belong to at most {} groups directly",
                names::MAX_GROUPS_PER_THING
            ),
        ));
    }
    Ok(groups)
}

/// Checks a new thing against what is stored: its name is free, its type
/// and groups exist. Returns its groups, sorted.
pub(crate) fn check_new_thing(
    view: &impl RegistryView,
    new: &NewThing,
) -> Result<Vec<String>, RegistryError> {
    let groups = validate_new_thing(new)?;
    if view.thing(&new.name)?.is_some() {
        return Err(RegistryError::exists("thing", &new.name));
    }
    if let Some(t) = &new.thing_type {
        match view.thing_type(t)? {
            None => return Err(RegistryError::not_found("thing type", t)),
            Some(tt) if tt.deprecated => {
                return Err(RegistryError::Conflict(format!(
                    "thing type {t:?} is deprecated; new things cannot use it"
                )));
            }
            Some(_) => {}
        }
    }
    for g in &groups {
        if view.thing_group(g)?.is_none() {
            return Err(RegistryError::not_found("thing group", g));
        }
    }
    Ok(groups)
}

/// Stores a new thing after checking it against what is stored.
pub(crate) fn insert_thing(
    w: &mut RegistryWrite<'_>,
    new: &NewThing,
    now_ms: u64,
) -> Result<ThingRecord, RegistryError> {
    let groups = check_new_thing(w, new)?;
    let record = ThingRecord {
        name: new.name.clone(),
        thing_type: new.thing_type.clone(),
        attributes: new.attributes.clone(),
        groups,
        created_ms: now_ms,
        updated_ms: now_ms,
        version: 1,
    };
    w.put_thing(&record)?;
    Ok(record)
}

pub(crate) fn require_thing(
    view: &impl RegistryView,
    name: &str,
) -> Result<ThingRecord, RegistryError> {
    view.thing(name)?
        .ok_or_else(|| RegistryError::not_found("thing", name))
}

impl Registry {
    /// Creates a thing. Its type and groups must exist.
    pub fn create_thing(&self, actor: &Actor, new: NewThing) -> Result<Thing, RegistryError> {
        let now = self.now_ms();
        self.change(
            actor,
            "CreateThing",
            format!("thing:{}", new.name),
            |_, _| {
                let record = self.store.registry_write(|w| insert_thing(w, &new, now))?;
                self.bump();
                Ok(record.into())
            },
        )
    }

    /// A thing with its certificates and every policy that reaches it.
    pub fn describe_thing(&self, name: &str) -> Result<ThingDescription, RegistryError> {
        let read = self.store.registry_read()?;
        let thing = require_thing(&read, name)?;
        let mut policies = Vec::new();
        let mut certificates = Vec::new();
        for cert in read.certificates_of_thing(name)? {
            let target = PolicyTarget::Certificate(cert.serial_hex.clone());
            let attached = read.target_policies(&target)?;
            for policy in &attached {
                policies.push(AttachedPolicy {
                    policy: policy.clone(),
                    via: target.key(),
                });
            }
            certificates.push(Certificate::from_record(cert, attached));
        }
        let mut targets = vec![PolicyTarget::Thing(name.to_owned())];
        for group in &thing.groups {
            targets.push(PolicyTarget::Group(group.clone()));
            for ancestor in ancestors(&read, group)? {
                targets.push(PolicyTarget::Group(ancestor));
            }
        }
        for target in targets {
            for policy in read.target_policies(&target)? {
                policies.push(AttachedPolicy {
                    policy,
                    via: target.key(),
                });
            }
        }
        Ok(ThingDescription {
            thing: thing.into(),
            certificates,
            policies,
        })
    }

    /// Every thing, by name.
    pub fn list_things(&self) -> Result<Vec<Thing>, RegistryError> {
        let read = self.store.registry_read()?;
        Ok(read.things()?.into_iter().map(Thing::from).collect())
    }

    /// Adds `thing` to `group` (a no-op if it is a member already).
    pub fn add_thing_to_group(
        &self,
        actor: &Actor,
        thing: &str,
        group: &str,
    ) -> Result<Thing, RegistryError> {
        self.update_membership(actor, "AddThingToThingGroup", thing, group, true)
    }

    /// Removes `thing` from `group` (a no-op if it is not a member).
    pub fn remove_thing_from_group(
        &self,
        actor: &Actor,
        thing: &str,
        group: &str,
    ) -> Result<Thing, RegistryError> {
        self.update_membership(actor, "RemoveThingFromThingGroup", thing, group, false)
    }

    fn update_membership(
        &self,
        actor: &Actor,
        action: &str,
        thing: &str,
        group: &str,
        add: bool,
    ) -> Result<Thing, RegistryError> {
        let now = self.now_ms();
        self.change(actor, action, format!("thing:{thing}"), |_, details| {
            details.insert("group".into(), group.into());
            let record = self.store.registry_write(|w| {
                let mut record = require_thing(w, thing)?;
                if w.thing_group(group)?.is_none() {
                    return Err(RegistryError::not_found("thing group", group));
                }
                let member = record.groups.iter().any(|g| g == group);
                if add == member {
                    return Ok(record);
                }
                if add {
                    if record.groups.len() >= names::MAX_GROUPS_PER_THING {
                        return Err(RegistryError::Conflict(format!(
                            "thing {thing:?} already belongs to {} groups, the maximum",
                            names::MAX_GROUPS_PER_THING
                        )));
                    }
                    record.groups.push(group.to_owned());
                    record.groups.sort();
                } else {
                    record.groups.retain(|g| g != group);
                }
                record.updated_ms = now;
                record.version += 1;
                w.put_thing(&record)?;
                Ok(record)
            })?;
            self.bump();
            Ok(record.into())
        })
    }

    /// Deletes a thing: its certificates are revoked (a deleted device must
    /// not connect again) and detached from it, and the policies attached
    /// to the thing itself are detached.
    pub fn delete_thing(&self, actor: &Actor, name: &str) -> Result<DeletedThing, RegistryError> {
        let now = self.now();
        let now_ms = self.now_ms();
        self.change(
            actor,
            "DeleteThing",
            format!("thing:{name}"),
            |ca, details| {
                let read = self.store.registry_read()?;
                require_thing(&read, name)?;
                let certs = read.certificates_of_thing(name)?;
                drop(read);
                let mut revoked = Vec::new();
                for cert in &certs {
                    if cert.status != CertificateStatus::Revoked {
                        ca.revoke(&cert.serial_hex, now)?;
                        revoked.push(cert.serial_hex.clone());
                    }
                }
                let detached = self.store.registry_write(|w| {
                    for cert in &certs {
                        let mut cert = cert.clone();
                        if cert.status != CertificateStatus::Revoked {
                            cert.status = CertificateStatus::Revoked;
                            w.detach_all(&PolicyTarget::Certificate(cert.serial_hex.clone()))?;
                        }
                        cert.thing = None;
                        cert.updated_ms = now_ms;
                        w.put_certificate(&cert)?;
                    }
                    let detached = w.detach_all(&PolicyTarget::Thing(name.to_owned()))?;
                    w.delete_thing(name)?;
                    Ok::<_, RegistryError>(detached)
                })?;
                self.bump();
                details.insert("revoked".into(), revoked.join(","));
                details.insert("detached_policies".into(), detached.join(","));
                Ok(DeletedThing {
                    name: name.to_owned(),
                    revoked,
                    detached_policies: detached,
                })
            },
        )
    }

    pub fn create_thing_type(
        &self,
        actor: &Actor,
        name: &str,
        description: Option<&str>,
    ) -> Result<ThingType, RegistryError> {
        let now = self.now_ms();
        self.change(
            actor,
            "CreateThingType",
            format!("thing-type:{name}"),
            |_, _| {
                names::thing_type_name(name)?;
                if let Some(d) = description {
                    names::description(d)?;
                }
                let record = self.store.registry_write(|w| {
                    if w.thing_type(name)?.is_some() {
                        return Err(RegistryError::exists("thing type", name));
                    }
                    let record = ThingTypeRecord {
                        name: name.to_owned(),
                        description: description.map(str::to_owned),
                        deprecated: false,
                        created_ms: now,
                    };
                    w.put_thing_type(&record)?;
                    Ok(record)
                })?;
                Ok(record.into())
            },
        )
    }

    /// Marks a type deprecated (no new things may use it) or not.
    pub fn deprecate_thing_type(
        &self,
        actor: &Actor,
        name: &str,
        deprecated: bool,
    ) -> Result<ThingType, RegistryError> {
        self.change(
            actor,
            "DeprecateThingType",
            format!("thing-type:{name}"),
            |_, details| {
                details.insert("deprecated".into(), deprecated.to_string());
                let record = self.store.registry_write(|w| {
                    let mut record = w
                        .thing_type(name)?
                        .ok_or_else(|| RegistryError::not_found("thing type", name))?;
                    record.deprecated = deprecated;
                    w.put_thing_type(&record)?;
                    Ok::<_, RegistryError>(record)
                })?;
                Ok(record.into())
            },
        )
    }

    pub fn list_thing_types(&self) -> Result<Vec<ThingType>, RegistryError> {
        let read = self.store.registry_read()?;
        Ok(read
            .thing_types()?
            .into_iter()
            .map(ThingType::from)
            .collect())
    }

    /// Deletes a type no thing uses.
    pub fn delete_thing_type(&self, actor: &Actor, name: &str) -> Result<(), RegistryError> {
        self.change(
            actor,
            "DeleteThingType",
            format!("thing-type:{name}"),
            |_, _| {
                self.store.registry_write(|w| {
                    if w.thing_type(name)?.is_none() {
                        return Err(RegistryError::not_found("thing type", name));
                    }
                    let users: Vec<String> = w
                        .things()?
                        .into_iter()
                        .filter(|t| t.thing_type.as_deref() == Some(name))
                        .map(|t| t.name)
                        .collect();
                    if !users.is_empty() {
                        return Err(RegistryError::Conflict(format!(
                            "thing type {name:?} is used by {}",
                            users.join(", ")
                        )));
                    }
                    w.delete_thing_type(name)?;
                    Ok(())
                })
            },
        )
    }
}
