//! Security events the broker reports: connections accepted and refused,
//! TLS handshakes refused, disconnections, denied publishes and
//! subscriptions. The civitas binary writes them to the tamper-evident
//! audit log; the broker only describes them.

use std::sync::Arc;

use crate::shared::Shared;

/// How a security-relevant attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityOutcome {
    Success,
    /// It failed (bad certificate, protocol error, network).
    Failure,
    /// Authorization refused it.
    Denied,
}

/// One event, in the audit log's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// `device:{client id}` or `peer:{address}` before identification.
    pub actor: String,
    /// Dotted lower case: `device.connect`, `device.publish`, `tls.handshake`.
    pub action: &'static str,
    /// What it was done to: a listener, a topic, a filter.
    pub target: String,
    pub outcome: SecurityOutcome,
    pub details: Vec<(&'static str, String)>,
}

/// Receives the broker's security events. Called on connection tasks: it
/// must not block.
pub trait SecurityLog: Send + Sync + std::fmt::Debug + 'static {
    fn record(&self, event: SecurityEvent);
}

pub(crate) fn record(
    shared: &Arc<Shared>,
    actor: String,
    action: &'static str,
    target: String,
    outcome: SecurityOutcome,
    details: Vec<(&'static str, String)>,
) {
    if let Some(log) = &shared.security_log {
        log.record(SecurityEvent {
            actor,
            action,
            target,
            outcome,
            details,
        });
    }
}
