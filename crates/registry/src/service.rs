//! The [`Registry`] itself: its parts, its settings, the write lock every
//! change takes, the authorization generation, and the helper that turns
//! every change into a [`SecurityEvent`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use civitas_pki::CertificateAuthority;
use civitas_store::Store;
use time::OffsetDateTime;

use crate::clock::{Clock, to_ms};
use crate::error::RegistryError;
use crate::events::{Actor, EventSink, Outcome, SecurityEvent};

/// The policy `device add` and enrollment attach when none is named.
pub const STANDARD_DEVICE_POLICY: &str = "civitas-standard-device";

/// How the registry issues and provisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// Validity of device certificates when the caller gives none.
    pub device_certificate_validity: Duration,
    /// How long a fleet-provisioning ownership token stays redeemable.
    pub ownership_token_ttl: Duration,
    /// The policy attached to new devices by default; created from
    /// [`civitas_policy::standard_device_policy`] when missing. `None`
    /// attaches nothing.
    pub default_device_policy: Option<String>,
    /// Stand-ins for the AWS region and account in policy ARNs (see
    /// [`civitas_policy::Context`]).
    pub region: String,
    pub account: String,
}

impl Default for RegistrySettings {
    fn default() -> RegistrySettings {
        RegistrySettings {
            device_certificate_validity: Duration::from_secs(365 * 86400),
            ownership_token_ttl: Duration::from_secs(3600),
            default_device_policy: Some(STANDARD_DEVICE_POLICY.to_owned()),
            region: "local".to_owned(),
            account: "000000000000".to_owned(),
        }
    }
}

/// The device registry: things, groups, types, certificates, policies,
/// tokens and provisioning templates, stored in the civitas store and
/// backed by the civitas CA.
///
/// Every method is synchronous and may block on disk I/O and signing: call
/// it from `spawn_blocking` in async code. Changes are serialised by one
/// lock (admin and provisioning changes are rare; the lock makes each
/// read-check-issue-write sequence atomic, including the CA files), reads
/// take a store snapshot and no lock.
pub struct Registry {
    pub(crate) store: Store,
    ca: Mutex<CertificateAuthority>,
    pub(crate) clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    generation: AtomicU64,
    pub(crate) settings: RegistrySettings,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("generation", &self.generation())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Facts an operation reports in its event.
pub(crate) type Details = BTreeMap<String, String>;

impl Registry {
    pub fn new(
        store: Store,
        ca: CertificateAuthority,
        clock: Arc<dyn Clock>,
        events: Arc<dyn EventSink>,
        settings: RegistrySettings,
    ) -> Registry {
        Registry {
            store,
            ca: Mutex::new(ca),
            clock,
            events,
            generation: AtomicU64::new(1),
            settings,
        }
    }

    /// A counter bumped by every change that can alter an authorization
    /// decision (certificate status, attachments, policy versions, thing
    /// type, attributes and groups, group nesting). A connection that
    /// cached decisions at generation `g` may keep them while
    /// `generation() == g`. Starts at 1 in each process.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    /// The store the registry lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn now_ms(&self) -> u64 {
        to_ms(self.clock.now())
    }

    /// The write lock, which also guards the CA.
    pub(crate) fn lock(&self) -> MutexGuard<'_, CertificateAuthority> {
        self.ca.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one change under the write lock and records its event, whether
    /// it succeeded or not.
    pub(crate) fn change<T>(
        &self,
        actor: &Actor,
        action: &str,
        target: impl Into<String>,
        op: impl FnOnce(&mut CertificateAuthority, &mut Details) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        // Held until the event is recorded, so events arrive in the order
        // the changes were made.
        let mut ca = self.lock();
        let mut details = Details::new();
        let result = op(&mut ca, &mut details);
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::Failure {
                reason: e.to_string(),
            },
        };
        self.events.record(SecurityEvent {
            at_ms: self.now_ms(),
            actor: actor.as_str().to_owned(),
            action: action.to_owned(),
            target: target.into(),
            outcome,
            details,
        });
        drop(ca);
        result
    }
}
