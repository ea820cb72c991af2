//! The registry's tables: things, thing types, thing groups, certificates,
//! policies, policy attachments, enrollment and ownership tokens, and
//! provisioning templates.
//!
//! Two pair tables index attachments both ways (policy → targets, target
//! → policies) and one indexes certificates by thing, so that the lookups
//! made on every connection are range scans, never full scans.
//! [`RegistryWrite`] keeps the indexes in step with the records.

use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use self::sealed::Raw;
use crate::codec::DecodeError;
use crate::codec::registry::{
    decode_certificate, decode_enrollment_token, decode_ownership_token, decode_policy,
    decode_template, decode_thing, decode_thing_group, decode_thing_type, encode_certificate,
    encode_enrollment_token, encode_ownership_token, encode_policy, encode_template, encode_thing,
    encode_thing_group, encode_thing_type,
};
use crate::error::StoreError;
use crate::registry::{
    CertificateRecord, EnrollmentTokenRecord, OwnershipTokenRecord, PolicyRecord, PolicyTarget,
    ProvisioningTemplateRecord, ThingGroupRecord, ThingRecord, ThingTypeRecord,
};

const THINGS: &str = "registry_things";
const THING_TYPES: &str = "registry_thing_types";
const THING_GROUPS: &str = "registry_thing_groups";
const CERTIFICATES: &str = "registry_certificates";
/// (thing, serial) → ().
const THING_CERTIFICATES: &str = "registry_thing_certificates";
const POLICIES: &str = "registry_policies";
/// (policy, target key) → ().
const POLICY_TARGETS: &str = "registry_policy_targets";
/// (target key, policy) → ().
const TARGET_POLICIES: &str = "registry_target_policies";
/// Keys are the hex SHA-256 of the token; the token itself is never stored.
const ENROLLMENT_TOKENS: &str = "registry_enrollment_tokens";
const OWNERSHIP_TOKENS: &str = "registry_ownership_tokens";
const TEMPLATES: &str = "registry_provisioning_templates";

const RECORD_TABLES: [&str; 8] = [
    THINGS,
    THING_TYPES,
    THING_GROUPS,
    CERTIFICATES,
    POLICIES,
    ENROLLMENT_TOKENS,
    OWNERSHIP_TOKENS,
    TEMPLATES,
];
const PAIR_TABLES: [&str; 3] = [THING_CERTIFICATES, POLICY_TARGETS, TARGET_POLICIES];

fn records(name: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(name)
}

fn pairs(name: &str) -> TableDefinition<'_, (&'static str, &'static str), ()> {
    TableDefinition::new(name)
}

pub(crate) fn create(txn: &WriteTransaction) -> Result<(), StoreError> {
    for name in RECORD_TABLES {
        txn.open_table(records(name))?;
    }
    for name in PAIR_TABLES {
        txn.open_table(pairs(name))?;
    }
    Ok(())
}

fn get_in(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(table.get(key)?.map(|v| v.value().to_vec()))
}

fn all_in(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push((k.value().to_owned(), v.value().to_vec()));
    }
    Ok(out)
}

fn seconds_in(
    table: &impl ReadableTable<(&'static str, &'static str), ()>,
    first: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for entry in table.range((first, "")..)? {
        let (k, _) = entry?;
        let (a, b) = k.value();
        if a != first {
            break;
        }
        out.push(b.to_owned());
    }
    Ok(out)
}

mod sealed {
    use crate::error::StoreError;

    /// Raw access that both transaction kinds provide; the typed reads of
    /// [`super::RegistryView`] are written once on top of it.
    pub trait Raw {
        fn raw_get(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
        fn raw_all(&self, table: &'static str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
        fn raw_seconds(&self, table: &'static str, first: &str) -> Result<Vec<String>, StoreError>;
    }
}

fn decoded<T>(
    table: &'static str,
    key: &str,
    bytes: &[u8],
    decode: fn(&[u8]) -> Result<T, DecodeError>,
) -> Result<T, StoreError> {
    decode(bytes).map_err(|e| StoreError::corrupt(table, format!("{key:?}"), e))
}

fn one<T>(
    raw: &(impl sealed::Raw + ?Sized),
    table: &'static str,
    key: &str,
    decode: fn(&[u8]) -> Result<T, DecodeError>,
) -> Result<Option<T>, StoreError> {
    raw.raw_get(table, key)?
        .map(|bytes| decoded(table, key, &bytes, decode))
        .transpose()
}

fn every<T>(
    raw: &(impl sealed::Raw + ?Sized),
    table: &'static str,
    decode: fn(&[u8]) -> Result<T, DecodeError>,
) -> Result<Vec<T>, StoreError> {
    raw.raw_all(table)?
        .into_iter()
        .map(|(key, bytes)| decoded(table, &key, &bytes, decode))
        .collect()
}

/// Typed reads of the registry, from a snapshot ([`RegistryRead`]) or from
/// inside a write transaction ([`RegistryWrite`], which sees its own
/// changes). Lists are ordered by key.
pub trait RegistryView: sealed::Raw {
    fn thing(&self, name: &str) -> Result<Option<ThingRecord>, StoreError> {
        one(self, THINGS, name, decode_thing)
    }

    fn things(&self) -> Result<Vec<ThingRecord>, StoreError> {
        every(self, THINGS, decode_thing)
    }

    fn thing_type(&self, name: &str) -> Result<Option<ThingTypeRecord>, StoreError> {
        one(self, THING_TYPES, name, decode_thing_type)
    }

    fn thing_types(&self) -> Result<Vec<ThingTypeRecord>, StoreError> {
        every(self, THING_TYPES, decode_thing_type)
    }

    fn thing_group(&self, name: &str) -> Result<Option<ThingGroupRecord>, StoreError> {
        one(self, THING_GROUPS, name, decode_thing_group)
    }

    fn thing_groups(&self) -> Result<Vec<ThingGroupRecord>, StoreError> {
        every(self, THING_GROUPS, decode_thing_group)
    }

    /// By canonical lower-case hex serial.
    fn certificate(&self, serial_hex: &str) -> Result<Option<CertificateRecord>, StoreError> {
        one(self, CERTIFICATES, serial_hex, decode_certificate)
    }

    fn certificates(&self) -> Result<Vec<CertificateRecord>, StoreError> {
        every(self, CERTIFICATES, decode_certificate)
    }

    /// The certificates attached to `thing`, by serial.
    fn certificates_of_thing(&self, thing: &str) -> Result<Vec<CertificateRecord>, StoreError> {
        let mut out = Vec::new();
        for serial in self.raw_seconds(THING_CERTIFICATES, thing)? {
            if let Some(cert) = self.certificate(&serial)? {
                out.push(cert);
            }
        }
        Ok(out)
    }

    fn policy(&self, name: &str) -> Result<Option<PolicyRecord>, StoreError> {
        one(self, POLICIES, name, decode_policy)
    }

    fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        every(self, POLICIES, decode_policy)
    }

    /// What `policy` is attached to, ordered by target key.
    fn policy_targets(&self, policy: &str) -> Result<Vec<PolicyTarget>, StoreError> {
        self.raw_seconds(POLICY_TARGETS, policy)?
            .into_iter()
            .map(|key| {
                PolicyTarget::parse(&key).ok_or_else(|| {
                    StoreError::corrupt(
                        POLICY_TARGETS,
                        format!("({policy:?}, {key:?})"),
                        DecodeError::MalformedKey { key: key.clone() },
                    )
                })
            })
            .collect()
    }

    /// Names of the policies attached to `target`, sorted.
    fn target_policies(&self, target: &PolicyTarget) -> Result<Vec<String>, StoreError> {
        self.raw_seconds(TARGET_POLICIES, &target.key())
    }

    fn enrollment_token(
        &self,
        hash_hex: &str,
    ) -> Result<Option<EnrollmentTokenRecord>, StoreError> {
        one(self, ENROLLMENT_TOKENS, hash_hex, decode_enrollment_token)
    }

    /// Every enrollment token with its hash.
    fn enrollment_tokens(&self) -> Result<Vec<(String, EnrollmentTokenRecord)>, StoreError> {
        self.raw_all(ENROLLMENT_TOKENS)?
            .into_iter()
            .map(|(k, v)| {
                let record = decoded(ENROLLMENT_TOKENS, &k, &v, decode_enrollment_token)?;
                Ok((k, record))
            })
            .collect()
    }

    fn ownership_token(&self, hash_hex: &str) -> Result<Option<OwnershipTokenRecord>, StoreError> {
        one(self, OWNERSHIP_TOKENS, hash_hex, decode_ownership_token)
    }

    /// Every ownership token with its hash.
    fn ownership_tokens(&self) -> Result<Vec<(String, OwnershipTokenRecord)>, StoreError> {
        self.raw_all(OWNERSHIP_TOKENS)?
            .into_iter()
            .map(|(k, v)| {
                let record = decoded(OWNERSHIP_TOKENS, &k, &v, decode_ownership_token)?;
                Ok((k, record))
            })
            .collect()
    }

    fn provisioning_template(
        &self,
        name: &str,
    ) -> Result<Option<ProvisioningTemplateRecord>, StoreError> {
        one(self, TEMPLATES, name, decode_template)
    }

    fn provisioning_templates(&self) -> Result<Vec<ProvisioningTemplateRecord>, StoreError> {
        every(self, TEMPLATES, decode_template)
    }
}

/// A read snapshot of the registry (see [`crate::Store::registry_read`]).
pub struct RegistryRead {
    txn: ReadTransaction,
}

impl RegistryRead {
    pub(crate) fn begin(db: &redb::Database) -> Result<RegistryRead, StoreError> {
        Ok(RegistryRead {
            txn: db.begin_read()?,
        })
    }
}

impl sealed::Raw for RegistryRead {
    fn raw_get(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        get_in(&self.txn.open_table(records(table))?, key)
    }

    fn raw_all(&self, table: &'static str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        all_in(&self.txn.open_table(records(table))?)
    }

    fn raw_seconds(&self, table: &'static str, first: &str) -> Result<Vec<String>, StoreError> {
        seconds_in(&self.txn.open_table(pairs(table))?, first)
    }
}

impl RegistryView for RegistryRead {}

/// The registry inside one write transaction (see
/// [`crate::Store::registry_write`]).
pub struct RegistryWrite<'t> {
    txn: &'t WriteTransaction,
}

impl sealed::Raw for RegistryWrite<'_> {
    fn raw_get(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        get_in(&self.txn.open_table(records(table))?, key)
    }

    fn raw_all(&self, table: &'static str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        all_in(&self.txn.open_table(records(table))?)
    }

    fn raw_seconds(&self, table: &'static str, first: &str) -> Result<Vec<String>, StoreError> {
        seconds_in(&self.txn.open_table(pairs(table))?, first)
    }
}

impl RegistryView for RegistryWrite<'_> {}

impl<'t> RegistryWrite<'t> {
    pub(crate) fn new(txn: &'t WriteTransaction) -> RegistryWrite<'t> {
        RegistryWrite { txn }
    }

    fn put(&mut self, table: &'static str, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.txn.open_table(records(table))?.insert(key, bytes)?;
        Ok(())
    }

    fn remove(&mut self, table: &'static str, key: &str) -> Result<bool, StoreError> {
        Ok(self.txn.open_table(records(table))?.remove(key)?.is_some())
    }

    fn put_pair(&mut self, table: &'static str, a: &str, b: &str) -> Result<bool, StoreError> {
        Ok(self
            .txn
            .open_table(pairs(table))?
            .insert((a, b), ())?
            .is_none())
    }

    fn remove_pair(&mut self, table: &'static str, a: &str, b: &str) -> Result<bool, StoreError> {
        Ok(self.txn.open_table(pairs(table))?.remove((a, b))?.is_some())
    }

    pub fn put_thing(&mut self, thing: &ThingRecord) -> Result<(), StoreError> {
        self.put(THINGS, &thing.name, &encode_thing(thing))
    }

    /// Removes the record only; certificates and attachments are the
    /// caller's to settle first. Returns whether it existed.
    pub fn delete_thing(&mut self, name: &str) -> Result<bool, StoreError> {
        self.remove(THINGS, name)
    }

    pub fn put_thing_type(&mut self, thing_type: &ThingTypeRecord) -> Result<(), StoreError> {
        self.put(
            THING_TYPES,
            &thing_type.name,
            &encode_thing_type(thing_type),
        )
    }

    pub fn delete_thing_type(&mut self, name: &str) -> Result<bool, StoreError> {
        self.remove(THING_TYPES, name)
    }

    pub fn put_thing_group(&mut self, group: &ThingGroupRecord) -> Result<(), StoreError> {
        self.put(THING_GROUPS, &group.name, &encode_thing_group(group))
    }

    pub fn delete_thing_group(&mut self, name: &str) -> Result<bool, StoreError> {
        self.remove(THING_GROUPS, name)
    }

    /// Stores the certificate and moves its thing index entry if the thing
    /// changed.
    pub fn put_certificate(&mut self, cert: &CertificateRecord) -> Result<(), StoreError> {
        let old_thing = self.certificate(&cert.serial_hex)?.and_then(|c| c.thing);
        if old_thing != cert.thing {
            if let Some(old) = &old_thing {
                self.remove_pair(THING_CERTIFICATES, old, &cert.serial_hex)?;
            }
            if let Some(new) = &cert.thing {
                self.put_pair(THING_CERTIFICATES, new, &cert.serial_hex)?;
            }
        }
        self.put(CERTIFICATES, &cert.serial_hex, &encode_certificate(cert))
    }

    pub fn put_policy(&mut self, policy: &PolicyRecord) -> Result<(), StoreError> {
        self.put(POLICIES, &policy.name, &encode_policy(policy))
    }

    /// Removes the policy and every attachment of it.
    pub fn delete_policy(&mut self, name: &str) -> Result<bool, StoreError> {
        for target in self.raw_seconds(POLICY_TARGETS, name)? {
            self.remove_pair(POLICY_TARGETS, name, &target)?;
            self.remove_pair(TARGET_POLICIES, &target, name)?;
        }
        self.remove(POLICIES, name)
    }

    /// Attaches `policy` to `target`; false if it already was.
    pub fn attach(&mut self, policy: &str, target: &PolicyTarget) -> Result<bool, StoreError> {
        let key = target.key();
        self.put_pair(TARGET_POLICIES, &key, policy)?;
        self.put_pair(POLICY_TARGETS, policy, &key)
    }

    /// Detaches `policy` from `target`; false if it was not attached.
    pub fn detach(&mut self, policy: &str, target: &PolicyTarget) -> Result<bool, StoreError> {
        let key = target.key();
        self.remove_pair(TARGET_POLICIES, &key, policy)?;
        self.remove_pair(POLICY_TARGETS, policy, &key)
    }

    /// Detaches every policy from `target`; returns their names.
    pub fn detach_all(&mut self, target: &PolicyTarget) -> Result<Vec<String>, StoreError> {
        let policies = self.target_policies(target)?;
        for policy in &policies {
            self.detach(policy, target)?;
        }
        Ok(policies)
    }

    pub fn put_enrollment_token(
        &mut self,
        hash_hex: &str,
        token: &EnrollmentTokenRecord,
    ) -> Result<(), StoreError> {
        self.put(ENROLLMENT_TOKENS, hash_hex, &encode_enrollment_token(token))
    }

    pub fn delete_enrollment_token(&mut self, hash_hex: &str) -> Result<bool, StoreError> {
        self.remove(ENROLLMENT_TOKENS, hash_hex)
    }

    pub fn put_ownership_token(
        &mut self,
        hash_hex: &str,
        token: &OwnershipTokenRecord,
    ) -> Result<(), StoreError> {
        self.put(OWNERSHIP_TOKENS, hash_hex, &encode_ownership_token(token))
    }

    pub fn delete_ownership_token(&mut self, hash_hex: &str) -> Result<bool, StoreError> {
        self.remove(OWNERSHIP_TOKENS, hash_hex)
    }

    pub fn put_provisioning_template(
        &mut self,
        template: &ProvisioningTemplateRecord,
    ) -> Result<(), StoreError> {
        self.put(TEMPLATES, &template.name, &encode_template(template))
    }

    pub fn delete_provisioning_template(&mut self, name: &str) -> Result<bool, StoreError> {
        self.remove(TEMPLATES, name)
    }
}
