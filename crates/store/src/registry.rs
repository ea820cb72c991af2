//! The device registry's records and the `Store` entry points to them.
//!
//! Unlike broker state, registry changes are rare operator or provisioning
//! actions whose validity depends on what is already stored (a group may
//! not become its own ancestor, a policy may not be deleted while
//! attached). They therefore run in their own synchronous write
//! transaction — read, check and write atomically — instead of as
//! blind ops through the group commit. redb serialises that transaction
//! with the commit thread's, so neither sees half of the other.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::StoreError;
use crate::store::Store;
use crate::tables::registry::{RegistryRead, RegistryWrite};

/// A thing: one device as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingRecord {
    pub name: String,
    pub thing_type: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// Names of the groups the thing belongs to directly, sorted.
    pub groups: Vec<String>,
    /// Unix ms.
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Bumped by every change, starting at 1.
    pub version: u64,
}

/// A thing type: a name things can be classified under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingTypeRecord {
    pub name: String,
    pub description: Option<String>,
    /// A deprecated type cannot be given to new things.
    pub deprecated: bool,
    pub created_ms: u64,
}

/// A thing group; groups nest through `parent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingGroupRecord {
    pub name: String,
    pub parent: Option<String>,
    pub description: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub version: u64,
}

/// Whether a certificate may be used to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateStatus {
    Active,
    /// Switched off by an operator; can be switched on again.
    Inactive,
    /// Revoked at the CA (in the CRL); final.
    Revoked,
}

impl CertificateStatus {
    /// The AWS IoT spelling: `ACTIVE`, `INACTIVE`, `REVOKED`.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Active => "ACTIVE",
            CertificateStatus::Inactive => "INACTIVE",
            CertificateStatus::Revoked => "REVOKED",
        }
    }

    /// Parses the AWS IoT spelling, case-insensitively.
    pub fn parse(text: &str) -> Option<CertificateStatus> {
        [
            CertificateStatus::Active,
            CertificateStatus::Inactive,
            CertificateStatus::Revoked,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A certificate the CA issued and the registry tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Canonical lower-case hex (the key).
    pub serial_hex: String,
    /// The thing the certificate is attached to.
    pub thing: Option<String>,
    pub status: CertificateStatus,
    pub common_name: String,
    /// The leaf certificate alone.
    pub certificate_pem: String,
    pub not_before_ms: u64,
    pub not_after_ms: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Set by renewal: the certificate that replaces this one.
    pub replaced_by: Option<String>,
    /// Set by renewal: this certificate stays usable until then.
    pub overlap_until_ms: Option<u64>,
}

/// One version of a policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRecord {
    /// The JSON text as given (validated before it was stored).
    pub document: String,
    pub created_ms: u64,
}

/// A named, versioned policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    pub name: String,
    pub versions: BTreeMap<u32, PolicyVersionRecord>,
    /// The version that is evaluated; always a key of `versions`.
    pub default_version: u32,
    /// Versions are never reused, even after deletion.
    pub next_version: u32,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// What a policy can be attached to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyTarget {
    /// A certificate, by canonical hex serial.
    Certificate(String),
    Thing(String),
    Group(String),
}

impl PolicyTarget {
    /// `cert:SERIAL`, `thing:NAME` or `group:NAME`: the stored key and the
    /// form operators type.
    pub fn key(&self) -> String {
        self.to_string()
    }

    /// Parses [`key`](Self::key)'s form; `None` for an unknown prefix or an
    /// empty name.
    pub fn parse(text: &str) -> Option<PolicyTarget> {
        let (kind, name) = text.split_once(':')?;
        if name.is_empty() {
            return None;
        }
        let name = name.to_owned();
        match kind {
            "cert" => Some(PolicyTarget::Certificate(name)),
            "thing" => Some(PolicyTarget::Thing(name)),
            "group" => Some(PolicyTarget::Group(name)),
            _ => None,
        }
    }
}

impl fmt::Display for PolicyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyTarget::Certificate(s) => write!(f, "cert:{s}"),
            PolicyTarget::Thing(s) => write!(f, "thing:{s}"),
            PolicyTarget::Group(s) => write!(f, "group:{s}"),
        }
    }
}

/// A one-time enrollment token, stored under the hex SHA-256 of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentTokenRecord {
    pub thing: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// When it was redeemed; a used token is refused.
    pub used_ms: Option<u64>,
    /// The certificate issued when it was redeemed.
    pub certificate: Option<String>,
}

/// A fleet-provisioning ownership token, stored under the hex SHA-256 of
/// the token: proof that the holder received this certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipTokenRecord {
    pub serial_hex: String,
    pub created_ms: u64,
    pub expires_ms: u64,
}

/// A fleet-provisioning template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningTemplateRecord {
    pub name: String,
    /// The JSON text as given (validated by the registry before storing).
    pub document: String,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl Store {
    /// A consistent snapshot of the registry as committed so far. Reads
    /// go through [`RegistryView`](crate::RegistryView).
    pub fn registry_read(&self) -> Result<RegistryRead, StoreError> {
        let db = self.db()?;
        RegistryRead::begin(&db)
    }

    /// Runs `change` in one durable write transaction: committed (with an
    /// fsync) if it returns `Ok`, discarded if it returns `Err`. Blocks the
    /// caller; concurrent writers, the commit thread included, wait for it.
    pub fn registry_write<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut RegistryWrite<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let db = self.db()?;
        let mut txn = db.begin_write().map_err(StoreError::from)?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(StoreError::from)?;
        let value = {
            let mut write = RegistryWrite::new(&txn);
            change(&mut write)?
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(value)
    }
}
