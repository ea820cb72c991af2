//! Administrative events for the audit log.
//!
//! Every change to the ring's keys (and to the root key sealing it) queues
//! one [`AdminEvent`]; the caller drains the queue with
//! [`crate::KeyRing::drain_events`] and records it wherever the audit log
//! lives. Each event is also emitted as a `tracing` event at info level.

use std::fmt;
use std::time::SystemTime;

use crate::key_id::KeyId;

/// What an administrative operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminAction {
    /// A master key was created with version 1.
    CreateKey,
    /// A master key gained a new version.
    RotateKey,
    /// A version's material was erased after no sealed data used it.
    RetireVersion,
    /// Every version of a key was erased (crypto-shredding).
    DestroyKey,
    /// The ring is now sealed under a different root key.
    ChangeRootKey,
}

impl fmt::Display for AdminAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdminAction::CreateKey => "create_key",
            AdminAction::RotateKey => "rotate_key",
            AdminAction::RetireVersion => "retire_version",
            AdminAction::DestroyKey => "destroy_key",
            AdminAction::ChangeRootKey => "change_root_key",
        })
    }
}

/// One administrative operation, as the audit log should record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEvent {
    /// What was done.
    pub action: AdminAction,
    /// The key it was done to (`None` for a root-key change).
    pub key_id: Option<KeyId>,
    /// The version created or retired (`None` for key-wide actions other
    /// than create).
    pub version: Option<u32>,
    /// The time the caller passed to the operation.
    pub at: SystemTime,
}

impl AdminEvent {
    pub(crate) fn new(
        action: AdminAction,
        key_id: Option<&KeyId>,
        version: Option<u32>,
        at: SystemTime,
    ) -> Self {
        let event = AdminEvent {
            action,
            key_id: key_id.cloned(),
            version,
            at,
        };
        tracing::info!(
            action = %event.action,
            key_id = event.key_id.as_ref().map(KeyId::as_str),
            version = event.version,
            "kms administrative operation"
        );
        event
    }
}
