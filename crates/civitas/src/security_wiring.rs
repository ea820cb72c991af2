//! The key ring and the tamper-evident audit log of a civitas data
//! directory, and the adapters that send the broker's and the registry's
//! security events into that log.
//!
//! The ring's root key is a 32-byte file created at first start with mode
//! 0600 and refused at later starts when anyone else may read it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use anyhow::Context;
use civitas_audit::{AuditLog, AuditOptions, AuditSink, Event, Outcome, load_or_create_signer};
use civitas_broker::{SecurityEvent as BrokerEvent, SecurityLog, SecurityOutcome};
use civitas_kms::{KeyId, KeyRing, RootKey};
use civitas_registry::{EventSink, SecurityEvent as RegistryEvent, TracingSink};

/// The KMS key that seals the audit log's checkpoint signing key.
const AUDIT_KEY: &str = "audit";

fn kms_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("kms")
}

/// Open the key ring of `data_dir`, creating the root key and the ring on
/// first use, and make sure `keys` exist in it.
pub fn open_key_ring(data_dir: &Path, keys: &[&str]) -> anyhow::Result<KeyRing> {
    let dir = kms_dir(data_dir);
    crate::up::create_private_dir(&dir)?;
    let root_path = dir.join("root.key");
    let root = if root_path.exists() {
        RootKey::load_key_file(&root_path)
    } else {
        RootKey::create_key_file(&root_path)
    }
    .with_context(|| format!("KMS root key {}", root_path.display()))?;
    let ring_path = dir.join(civitas_kms::RING_FILE_NAME);
    let mut ring = if ring_path.exists() {
        KeyRing::load(&ring_path, root)
            .with_context(|| format!("key ring {}", ring_path.display()))?
    } else {
        KeyRing::new(root)
    };
    let mut changed = !ring_path.exists();
    for name in keys {
        let id = KeyId::new(*name).context("key id")?;
        if ring.describe(&id).is_err() {
            ring.create_key(&id, SystemTime::now())
                .with_context(|| format!("creating KMS key {name}"))?;
            changed = true;
        }
    }
    if changed {
        ring.save(&ring_path)
            .with_context(|| format!("saving {}", ring_path.display()))?;
    }
    Ok(ring)
}

/// Open the audit log of `data_dir`, its checkpoint key sealed by `ring`.
pub fn open_audit_log(data_dir: &Path, ring: &KeyRing) -> anyhow::Result<AuditLog> {
    let key_path = civitas_audit::sealed_key_path(data_dir);
    if let Some(dir) = key_path.parent() {
        crate::up::create_private_dir(dir)?;
    }
    let signer = load_or_create_signer(&key_path, ring, &KeyId::new(AUDIT_KEY)?)
        .with_context(|| format!("audit checkpoint key {}", key_path.display()))?;
    let path = civitas_audit::log_path(data_dir);
    let log = AuditLog::open(
        &path,
        Arc::new(signer),
        Arc::new(civitas_audit::SystemClock),
        AuditOptions::default(),
    )
    .with_context(|| format!("audit log {}", path.display()))?;
    if let Some(recovery) = log.recovery() {
        tracing::warn!(path = %path.display(), ?recovery, "the audit log's last line was incomplete after a crash and was repaired");
    }
    Ok(log)
}

/// The key ring of a data directory, shared by everything that uses keys
/// (the audit log's checkpoint key, per-device telemetry keys).
#[derive(Debug, Clone)]
pub struct SharedRing {
    pub ring: Arc<RwLock<KeyRing>>,
    /// Where the ring is saved after key changes.
    pub file: PathBuf,
}

impl SharedRing {
    /// Record the ring's administrative key operations (created, rotated,
    /// destroyed keys) on the audit log.
    pub fn audit_key_events(&self, events: &AuditEvents) {
        let drained = self
            .ring
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .drain_events();
        for e in drained {
            let mut event = Event::new(
                "system",
                format!("key.{}", e.action),
                e.key_id
                    .map_or_else(|| "root".to_string(), |k| k.to_string()),
                Outcome::Success,
            );
            if let Some(v) = e.version {
                event = event.detail("version", u64::from(v));
            }
            events.append(event);
        }
    }
}

impl SharedRing {
    /// Give every key whose newest version is older than `period` a new
    /// version, and save the ring. Returns the keys rotated.
    pub fn rotate_due(&self, period: std::time::Duration) -> anyhow::Result<Vec<String>> {
        let mut ring = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        let due = ring.rotation_due(now, period);
        for id in &due {
            ring.rotate(id, now)
                .with_context(|| format!("rotating KMS key {id}"))?;
        }
        if !due.is_empty() {
            ring.save(&self.file)
                .with_context(|| format!("saving {}", self.file.display()))?;
        }
        Ok(due.iter().map(ToString::to_string).collect())
    }
}

/// The key ring and audit log for a data directory, as `up` and the CLI
/// use them; key operations so far are already on the log.
pub fn open(data_dir: &Path) -> anyhow::Result<(SharedRing, AuditLog)> {
    let ring = open_key_ring(data_dir, &[AUDIT_KEY])?;
    let log = open_audit_log(data_dir, &ring)?;
    let shared = SharedRing {
        ring: Arc::new(RwLock::new(ring)),
        file: kms_dir(data_dir).join(civitas_kms::RING_FILE_NAME),
    };
    shared.audit_key_events(&AuditEvents(log.sink()));
    Ok((shared, log))
}

/// Sends security events to the audit log (and to the process log).
#[derive(Debug, Clone)]
pub struct AuditEvents(pub AuditSink);

impl AuditEvents {
    pub(crate) fn append(&self, event: Event) {
        if let Err(e) = self.0.append_nowait(event) {
            tracing::error!(error = %e, "a security event could not be written to the audit log");
        }
    }
}

impl SecurityLog for AuditEvents {
    fn record(&self, e: BrokerEvent) {
        let outcome = match e.outcome {
            SecurityOutcome::Success => Outcome::Success,
            SecurityOutcome::Failure => Outcome::Failure,
            SecurityOutcome::Denied => Outcome::Denied,
        };
        let mut event = Event::new(e.actor, e.action, e.target, outcome);
        for (name, value) in e.details {
            event = event.detail(name, value);
        }
        self.append(event);
    }
}

impl EventSink for AuditEvents {
    fn record(&self, e: RegistryEvent) {
        TracingSink.record(e.clone());
        let (outcome, reason) = match &e.outcome {
            civitas_registry::Outcome::Success => (Outcome::Success, None),
            civitas_registry::Outcome::Failure { reason } => {
                (Outcome::Failure, Some(reason.clone()))
            }
        };
        let mut event = Event::new(e.actor, registry_action(&e.action), e.target, outcome);
        for (name, value) in e.details {
            event = event.detail(name, value);
        }
        if let Some(reason) = reason {
            event = event.detail("reason", reason);
        }
        self.append(event);
    }
}

/// `CreateThing` → `registry.create_thing`: the audit log's dotted form.
fn registry_action(action: &str) -> String {
    let mut out = String::from("registry.");
    for (i, c) in action.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_actions_become_dotted_lower_case() {
        assert_eq!(registry_action("CreateThing"), "registry.create_thing");
        assert_eq!(
            registry_action("RevokeCertificate"),
            "registry.revoke_certificate"
        );
    }

    #[test]
    fn a_root_key_others_can_read_is_refused_at_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        open_key_ring(dir.path(), &["audit"]).unwrap();
        let root = dir.path().join("kms").join("root.key");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = format!("{:#}", open_key_ring(dir.path(), &["audit"]).unwrap_err());
        assert!(err.contains("root.key"), "{err}");
    }

    #[test]
    fn due_keys_are_rotated_and_the_rotation_is_on_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let (ring, log) = open(dir.path()).unwrap();
        assert!(
            ring.rotate_due(std::time::Duration::from_secs(3600))
                .unwrap()
                .is_empty()
        );
        let rotated = ring.rotate_due(std::time::Duration::ZERO).unwrap();
        assert_eq!(rotated, vec!["audit".to_string()]);
        ring.audit_key_events(&AuditEvents(log.sink()));
        log.close().unwrap();
        let records = civitas_audit::tail(&civitas_audit::log_path(dir.path()), 20).unwrap();
        assert!(
            records
                .iter()
                .any(|r| r.action == "key.rotate_key" && r.target == "audit"),
            "{records:?}"
        );
        // The new version survives a restart.
        drop(ring);
        let (ring, _log) = open(dir.path()).unwrap();
        let info = ring
            .ring
            .read()
            .unwrap()
            .describe(&KeyId::new("audit").unwrap())
            .unwrap();
        assert_eq!(info.versions.len(), 2, "{info:?}");
    }

    #[test]
    fn keys_and_the_audit_log_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (ring, log) = open(dir.path()).unwrap();
        drop(log);
        drop(ring);
        let (_ring, log) = open(dir.path()).unwrap();
        assert!(log.recovery().is_none());
        // The first open created the audit key: that is on the record.
        let created = log.tail(10).unwrap();
        assert!(
            created
                .iter()
                .any(|r| r.action == "key.create_key" && r.target == "audit"),
            "{created:?}"
        );
    }
}
