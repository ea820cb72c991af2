//! Retention and crypto-shredding.
//!
//! Retention drops whole blocks: a block goes once its entire period is
//! older than the device's retention, as one range delete per device over
//! keys that start with (thing, period). Shredding destroys the device's
//! key `device/{thing}` in the KMS: every block sealed under it becomes
//! unreadable at once, wherever copies of the store went, while other
//! devices' data is untouched. The rows stay until retention or
//! [`TelemetryStore::drop_before`] removes them; queries report them as
//! [`crate::Unreadable::Shredded`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use civitas_kms::KmsError;
use civitas_store::Op;

use crate::block::kms_error;
use crate::error::TelemetryError;
use crate::keys::device_key_id;
use crate::store::{Inner, TelemetryStore, blocking};

/// How long telemetry is kept, by thing type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    /// For devices whose type has no entry (or that have no type); `None`
    /// keeps them forever.
    pub default: Option<Duration>,
    /// Per thing type.
    pub by_type: BTreeMap<String, Duration>,
}

impl RetentionPolicy {
    /// How long a device of `thing_type` keeps its telemetry.
    pub fn max_age(&self, thing_type: Option<&str>) -> Option<Duration> {
        thing_type
            .and_then(|t| self.by_type.get(t).copied())
            .or(self.default)
    }
}

/// What a retention run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// Devices with telemetry that were looked at.
    pub things: usize,
    /// Per device trimmed: blocks whose period started before this were
    /// dropped.
    pub trimmed: Vec<(String, u64)>,
}

impl TelemetryStore {
    /// Drops every block of `thing` whose whole period ended at or before
    /// `cutoff_ms`. Resolves once the drop is durable.
    pub async fn drop_before(&self, thing: &str, cutoff_ms: u64) -> Result<(), TelemetryError> {
        let before = self.inner.first_kept_period(cutoff_ms);
        let commit = self.inner.queue_drops(&[(thing.to_owned(), before)]);
        Ok(commit.await?)
    }

    /// Applies `policy` at `now_ms` to every device with telemetry;
    /// `thing_type` tells a device's type (from the registry).
    pub async fn retention(
        &self,
        policy: &RetentionPolicy,
        thing_type: impl Fn(&str) -> Option<String>,
        now_ms: u64,
    ) -> Result<RetentionReport, TelemetryError> {
        let inner = Arc::clone(&self.inner);
        let things = blocking(move || Ok(inner.store.telemetry_read()?.things()?)).await?;
        let mut report = RetentionReport {
            things: things.len(),
            trimmed: Vec::new(),
        };
        for thing in things {
            let Some(age) = policy.max_age(thing_type(&thing).as_deref()) else {
                continue;
            };
            let cutoff = now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
            let before = self.inner.first_kept_period(cutoff);
            if before > 0 {
                report.trimmed.push((thing, before));
            }
        }
        if !report.trimmed.is_empty() {
            self.inner.queue_drops(&report.trimmed).await?;
        }
        Ok(report)
    }

    /// Crypto-shreds `thing`'s telemetry by destroying its key, durably.
    /// Returns false if there was nothing to destroy (never had telemetry,
    /// or shredded before). Its readings are refused from then on.
    pub async fn shred(&self, thing: &str) -> Result<bool, TelemetryError> {
        let key_id = device_key_id(thing)?;
        let inner = Arc::clone(&self.inner);
        let thing = thing.to_owned();
        blocking(move || {
            // Under the state lock, so no block of the device opens between
            // the key's destruction and the forgetting of its open blocks.
            let mut state = inner.state();
            let destroyed = match inner.keys.destroy_key(&key_id) {
                Ok(()) => true,
                Err(KmsError::UnknownKey(_) | KmsError::KeyDestroyed(_)) => false,
                Err(e) => return Err(kms_error(&thing, e)),
            };
            for ((_, _), slot) in state
                .slots
                .range_mut((thing.clone(), 0)..=(thing.clone(), u64::MAX))
            {
                // Dropping the writer drops its data key.
                slot.open = None;
            }
            state
                .slots
                .retain(|_, s| s.open.is_some() || s.in_flight > 0);
            drop(state);
            inner
                .ensured
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&thing);
            tracing::info!(thing = %thing, "telemetry shredded");
            Ok(destroyed)
        })
        .await
    }
}

impl Inner {
    /// The first period start kept when everything ending by `cutoff_ms`
    /// goes: a block [p, p + period) is dropped iff p + period <= cutoff.
    fn first_kept_period(&self, cutoff_ms: u64) -> u64 {
        match cutoff_ms.checked_sub(self.period_ms) {
            Some(last_dropped) => last_dropped + 1,
            None => 0,
        }
    }

    /// Queues the drops under the state lock, after forgetting open blocks
    /// in the dropped periods, so no later chunk lands in them.
    fn queue_drops(
        &self,
        drops: &[(String, u64)],
    ) -> impl Future<Output = Result<(), civitas_store::StoreError>> + Send + 'static {
        let mut state = self.state();
        let mut ops = Vec::with_capacity(drops.len());
        for (thing, before) in drops {
            for ((_, _), slot) in state
                .slots
                .range_mut((thing.clone(), 0)..(thing.clone(), *before))
            {
                slot.open = None;
            }
            ops.push(Op::DropTelemetry {
                thing: thing.clone(),
                before_period_ms: *before,
            });
        }
        state
            .slots
            .retain(|_, s| s.open.is_some() || s.in_flight > 0);
        self.store.commit(ops)
    }
}
