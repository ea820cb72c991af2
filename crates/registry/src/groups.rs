//! Thing groups: nesting (no cycles, at most seven levels), membership
//! lookups and the ancestor chains whose policies reach a thing.

use std::collections::{BTreeMap, BTreeSet};

use civitas_store::{PolicyTarget, RegistryView, ThingGroupRecord};
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;
use crate::events::Actor;
use crate::names;
use crate::service::Registry;

/// A thing group as the registry reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThingGroup {
    pub name: String,
    pub parent: Option<String>,
    pub description: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub version: u64,
}

impl From<ThingGroupRecord> for ThingGroup {
    fn from(r: ThingGroupRecord) -> ThingGroup {
        ThingGroup {
            name: r.name,
            parent: r.parent,
            description: r.description,
            attributes: r.attributes,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            version: r.version,
        }
    }
}

/// What `create_thing_group` needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewThingGroup {
    pub name: String,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A group with its place in the hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThingGroupDescription {
    pub group: ThingGroup,
    /// Parent first, root last.
    pub ancestors: Vec<String>,
    pub children: Vec<String>,
    /// Direct members.
    pub things: Vec<String>,
    /// Policies attached to the group itself.
    pub policies: Vec<String>,
}

/// The ancestors of `group`, parent first. A stored cycle (impossible
/// through the registry) is reported rather than looped on.
pub(crate) fn ancestors(
    view: &impl RegistryView,
    group: &str,
) -> Result<Vec<String>, RegistryError> {
    let mut chain = Vec::new();
    let mut seen = BTreeSet::from([group.to_owned()]);
    let mut current = view.thing_group(group)?.and_then(|g| g.parent);
    while let Some(parent) = current {
        if !seen.insert(parent.clone()) {
            return Err(RegistryError::Corrupt(format!(
                "thing group {group:?} has a cycle in its ancestors at {parent:?}"
            )));
        }
        current = view.thing_group(&parent)?.and_then(|g| g.parent);
        chain.push(parent);
    }
    Ok(chain)
}

fn children_of(view: &impl RegistryView, group: &str) -> Result<Vec<String>, RegistryError> {
    Ok(view
        .thing_groups()?
        .into_iter()
        .filter(|g| g.parent.as_deref() == Some(group))
        .map(|g| g.name)
        .collect())
}

/// Levels in the subtree rooted at `group`: 1 for a group without children.
fn height(view: &impl RegistryView, group: &str) -> Result<usize, RegistryError> {
    let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in view.thing_groups()? {
        if let Some(p) = g.parent {
            children.entry(p).or_default().push(g.name);
        }
    }
    let mut level = vec![group.to_owned()];
    let mut levels = 0;
    while !level.is_empty() {
        levels += 1;
        if levels > names::MAX_GROUP_DEPTH * 2 {
            return Err(RegistryError::Corrupt(format!(
                "thing group {group:?} has a cycle among its descendants"
            )));
        }
        level = level
            .iter()
            .filter_map(|g| children.get(g))
            .flatten()
            .cloned()
            .collect();
    }
    Ok(levels)
}

/// Checks that `group` (with everything below it) may hang under `parent`.
fn check_parent(view: &impl RegistryView, group: &str, parent: &str) -> Result<(), RegistryError> {
    if parent == group {
        return Err(RegistryError::Conflict(format!(
            "thing group {group:?} cannot be its own parent"
        )));
    }
    if view.thing_group(parent)?.is_none() {
        return Err(RegistryError::not_found("thing group", parent));
    }
    let above = ancestors(view, parent)?;
    if above.iter().any(|a| a == group) {
        return Err(RegistryError::Conflict(format!(
            "thing group {parent:?} is a descendant of {group:?}; making it the parent would create a cycle"
        )));
    }
    // The parent's depth (root = 1) plus the levels of the moved subtree.
    let depth = above.len() + 1 + height(view, group)?;
    if depth > names::MAX_GROUP_DEPTH {
        return Err(RegistryError::Conflict(format!(
            "thing groups nest at most {} levels; this would make {depth}",
            names::MAX_GROUP_DEPTH
        )));
    }
    Ok(())
}

impl Registry {
    /// Creates a group, under `parent` if given.
    pub fn create_thing_group(
        &self,
        actor: &Actor,
        new: NewThingGroup,
    ) -> Result<ThingGroup, RegistryError> {
        let now = self.now_ms();
        self.change(
            actor,
            "CreateThingGroup",
            format!("group:{}", new.name),
            |_, details| {
                names::thing_group_name(&new.name)?;
                if let Some(p) = &new.parent {
                    names::thing_group_name(p)?;
                    details.insert("parent".into(), p.clone());
                }
                if let Some(d) = &new.description {
                    names::description(d)?;
                }
                names::attributes(&new.attributes)?;
                let record = self.store.registry_write(|w| {
                    if w.thing_group(&new.name)?.is_some() {
                        return Err(RegistryError::exists("thing group", &new.name));
                    }
                    if let Some(p) = &new.parent {
                        check_parent(w, &new.name, p)?;
                    }
                    let record = ThingGroupRecord {
                        name: new.name.clone(),
                        parent: new.parent.clone(),
                        description: new.description.clone(),
                        attributes: new.attributes.clone(),
                        created_ms: now,
                        updated_ms: now,
                        version: 1,
                    };
                    w.put_thing_group(&record)?;
                    Ok(record)
                })?;
                Ok(record.into())
            },
        )
    }

    /// Moves a group under another parent, or to the top with `None`.
    /// Refused if it would create a cycle or nest deeper than allowed.
    pub fn set_thing_group_parent(
        &self,
        actor: &Actor,
        name: &str,
        parent: Option<&str>,
    ) -> Result<ThingGroup, RegistryError> {
        let now = self.now_ms();
        self.change(
            actor,
            "UpdateThingGroup",
            format!("group:{name}"),
            |_, details| {
                details.insert("parent".into(), parent.unwrap_or("").to_owned());
                let record = self.store.registry_write(|w| {
                    let mut record = w
                        .thing_group(name)?
                        .ok_or_else(|| RegistryError::not_found("thing group", name))?;
                    if let Some(p) = parent {
                        check_parent(w, name, p)?;
                    }
                    record.parent = parent.map(str::to_owned);
                    record.updated_ms = now;
                    record.version += 1;
                    w.put_thing_group(&record)?;
                    Ok::<_, RegistryError>(record)
                })?;
                // Members now inherit other ancestors' policies.
                self.bump();
                Ok(record.into())
            },
        )
    }

    pub fn describe_thing_group(&self, name: &str) -> Result<ThingGroupDescription, RegistryError> {
        let read = self.store.registry_read()?;
        let group = read
            .thing_group(name)?
            .ok_or_else(|| RegistryError::not_found("thing group", name))?;
        let things = read
            .things()?
            .into_iter()
            .filter(|t| t.groups.iter().any(|g| g == name))
            .map(|t| t.name)
            .collect();
        Ok(ThingGroupDescription {
            ancestors: ancestors(&read, name)?,
            children: children_of(&read, name)?,
            things,
            policies: read.target_policies(&PolicyTarget::Group(name.to_owned()))?,
            group: group.into(),
        })
    }

    pub fn list_thing_groups(&self) -> Result<Vec<ThingGroup>, RegistryError> {
        let read = self.store.registry_read()?;
        Ok(read
            .thing_groups()?
            .into_iter()
            .map(ThingGroup::from)
            .collect())
    }

    /// Deletes a group without child groups: its members leave it and the
    /// policies attached to it are detached.
    pub fn delete_thing_group(&self, actor: &Actor, name: &str) -> Result<(), RegistryError> {
        let now = self.now_ms();
        self.change(
            actor,
            "DeleteThingGroup",
            format!("group:{name}"),
            |_, details| {
                let (members, detached) = self.store.registry_write(|w| {
                    if w.thing_group(name)?.is_none() {
                        return Err(RegistryError::not_found("thing group", name));
                    }
                    let children = children_of(w, name)?;
                    if !children.is_empty() {
                        return Err(RegistryError::Conflict(format!(
                            "thing group {name:?} has child groups: {}",
                            children.join(", ")
                        )));
                    }
                    let mut members = Vec::new();
                    for mut thing in w.things()? {
                        if thing.groups.iter().any(|g| g == name) {
                            thing.groups.retain(|g| g != name);
                            thing.updated_ms = now;
                            thing.version += 1;
                            w.put_thing(&thing)?;
                            members.push(thing.name);
                        }
                    }
                    let detached = w.detach_all(&PolicyTarget::Group(name.to_owned()))?;
                    w.delete_thing_group(name)?;
                    Ok((members, detached))
                })?;
                self.bump();
                details.insert("members".into(), members.join(","));
                details.insert("detached_policies".into(), detached.join(","));
                Ok(())
            },
        )
    }
}
