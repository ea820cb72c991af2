//! Certificates about to expire: a device whose certificate lapses drops
//! off the network, so a running server warns about them (at start and
//! daily) while there is still time to renew, and keeps the count where a
//! monitor can read it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use civitas_store::{CertificateStatus, RegistryView};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use crate::clock::{add_ms, from_ms};
use crate::error::RegistryError;
use crate::service::Registry;

/// How far ahead `civitas up` looks.
pub const EXPIRY_WARNING_WINDOW: Duration = Duration::from_secs(30 * 86400);

/// How many certificates one check names in the log; the rest are counted.
const NAMED_IN_LOG: usize = 50;

/// A certificate in use that expires soon (or has expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiringCertificate {
    pub serial: String,
    pub thing: Option<String>,
    pub common_name: String,
    pub not_after_ms: u64,
    /// Already past `not_after`: TLS refuses it.
    pub expired: bool,
}

impl Registry {
    /// ACTIVE certificates that have no successor and whose validity ends
    /// within `window` from now, soonest first. Certificates replaced by a
    /// renewal are left out: their end is expected.
    pub fn certificates_expiring_within(
        &self,
        window: Duration,
    ) -> Result<Vec<ExpiringCertificate>, RegistryError> {
        let now = self.now_ms();
        let horizon = add_ms(now, window);
        let mut expiring: Vec<ExpiringCertificate> = self
            .store
            .registry_read()?
            .certificates()?
            .into_iter()
            .filter(|c| {
                c.status == CertificateStatus::Active
                    && c.replaced_by.is_none()
                    && c.not_after_ms <= horizon
            })
            .map(|c| ExpiringCertificate {
                expired: c.not_after_ms <= now,
                serial: c.serial_hex,
                thing: c.thing,
                common_name: c.common_name,
                not_after_ms: c.not_after_ms,
            })
            .collect();
        expiring.sort_by(|a, b| (a.not_after_ms, &a.serial).cmp(&(b.not_after_ms, &b.serial)));
        Ok(expiring)
    }
}

/// The result of the latest expiry check, shared with whoever reports on
/// it (the monitor).
#[derive(Debug, Default)]
pub struct ExpiryWatch {
    expiring: AtomicU64,
    checks: AtomicU64,
    latest: Mutex<Vec<ExpiringCertificate>>,
}

impl ExpiryWatch {
    pub fn new() -> ExpiryWatch {
        ExpiryWatch::default()
    }

    /// How many certificates the latest check found expiring.
    pub fn expiring(&self) -> u64 {
        self.expiring.load(Ordering::Relaxed)
    }

    /// How many checks have run.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// The certificates the latest check found, soonest first.
    pub fn latest(&self) -> Vec<ExpiringCertificate> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Checks now: logs a warning per expiring certificate (the first
    /// few dozen, then a count) and records the result. Blocking.
    pub fn check(&self, registry: &Registry, window: Duration) -> Result<usize, RegistryError> {
        let found = registry.certificates_expiring_within(window)?;
        let now = registry.now_ms();
        for cert in found.iter().take(NAMED_IN_LOG) {
            let not_after = from_ms(cert.not_after_ms)
                .format(&Rfc3339)
                .unwrap_or_else(|_| cert.not_after_ms.to_string());
            let days_left = cert.not_after_ms.saturating_sub(now) / 86_400_000;
            tracing::warn!(
                serial = %cert.serial,
                thing = cert.thing.as_deref().unwrap_or("-"),
                common_name = %cert.common_name,
                %not_after,
                days_left,
                "{}",
                if cert.expired {
                    "certificate has expired but is still active"
                } else {
                    "certificate expires soon: renew it (civitas cert renew, or over MQTT)"
                }
            );
        }
        if found.len() > NAMED_IN_LOG {
            tracing::warn!(
                expiring = found.len(),
                named = NAMED_IN_LOG,
                "more certificates expire soon than are named above"
            );
        }
        let count = found.len();
        self.expiring.store(count as u64, Ordering::Relaxed);
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = found;
        self.checks.fetch_add(1, Ordering::Relaxed);
        Ok(count)
    }
}

/// Checks at once and then every `every` until `shutdown`.
pub async fn watch_certificate_expiry(
    registry: Arc<Registry>,
    watch: Arc<ExpiryWatch>,
    window: Duration,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let registry = Arc::clone(&registry);
        let watch = Arc::clone(&watch);
        match tokio::task::spawn_blocking(move || watch.check(&registry, window)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "certificate expiry check failed"),
            Err(e) => tracing::warn!(error = %e, "certificate expiry check task failed"),
        }
    }
}
