//! Periodic upkeep a running server does: retiring certificates whose
//! renewal overlap has ended (so that their INACTIVE status, already
//! enforced at connect, is visible and bumps the generation) and purging
//! expired tokens.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::events::Actor;
use crate::service::Registry;

/// Runs upkeep every `every` until `shutdown`.
pub async fn run_maintenance(
    registry: Arc<Registry>,
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
        let result = tokio::task::spawn_blocking(move || {
            let retired = registry.retire_replaced_certificates(&Actor::system())?;
            let purged = registry.purge_expired_tokens()?;
            Ok::<_, crate::RegistryError>((retired, purged))
        })
        .await;
        match result {
            Ok(Ok((retired, purged))) => {
                if !retired.is_empty() || purged > 0 {
                    tracing::info!(retired = retired.len(), purged, "registry upkeep");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "registry upkeep failed"),
            Err(e) => tracing::warn!(error = %e, "registry upkeep task failed"),
        }
    }
}
