//! `TelemetryStore`: the handle, its options, and what happens at open.
//!
//! Opening records the period length in a new store (and refuses a
//! different one later), then seals every block a previous run left
//! unsealed — a crash, a failed commit — from the chunks it holds, so a
//! block is never appended to again after a restart: new readings for the
//! same period go to the next block number.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use civitas_store::{Op, Store};

use crate::block::{BlockFailure, BlockWriter, recovery_footer};
use crate::error::TelemetryError;
use crate::format::Mode;
use crate::keys::TelemetryKeys;

/// Blocks sealed per commit when opening after a crash.
const RECOVERY_BATCH: usize = 256;

/// How telemetry is cut into blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryOptions {
    /// Length of a period; a block never spans two. Whole milliseconds,
    /// from 1 s to 7 days; fixed once a store holds telemetry. Default 1 h.
    pub period: Duration,
    /// A block is sealed once a reading of the same device arrives this
    /// long after its period ended (or `seal_due` finds it so). Default 60 s.
    pub seal_grace: Duration,
    /// A block holding this many readings is sealed and the next begins.
    /// Default 100 000.
    pub max_block_readings: u64,
    /// Likewise for its stored size in bytes. Default 16 MiB.
    pub max_block_bytes: u64,
    /// Stores blocks unencrypted, through the same code path; for the
    /// throughput benchmark's baseline only. A store written so is
    /// unreadable by a sealed one and the other way round.
    #[cfg(feature = "unsealed-baseline")]
    pub unsealed_baseline: bool,
}

impl Default for TelemetryOptions {
    fn default() -> TelemetryOptions {
        TelemetryOptions {
            period: Duration::from_secs(3600),
            seal_grace: Duration::from_secs(60),
            max_block_readings: 100_000,
            max_block_bytes: 16 << 20,
            #[cfg(feature = "unsealed-baseline")]
            unsealed_baseline: false,
        }
    }
}

/// Encrypted telemetry over a [`Store`]. Cheap to clone; clones share
/// state. See the crate documentation for the whole API.
#[derive(Clone)]
pub struct TelemetryStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for TelemetryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryStore")
            .field("period_ms", &self.inner.period_ms)
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) keys: Arc<dyn TelemetryKeys>,
    pub(crate) mode: Mode,
    pub(crate) period_ms: u64,
    pub(crate) grace_ms: u64,
    pub(crate) max_block_readings: u64,
    pub(crate) max_block_bytes: u64,
    pub(crate) state: Mutex<State>,
    /// Devices whose key is known to exist durably.
    pub(crate) ensured: Mutex<HashSet<String>>,
}

/// Blocks being written, by (thing, period start).
#[derive(Default)]
pub(crate) struct State {
    pub(crate) slots: BTreeMap<(String, u64), Slot>,
}

/// One (thing, period): its open block, the last block number used, and
/// how many queued commits touch it. A slot stays while either of the
/// latter matters: until those commits land, the store may not show the
/// numbers already handed out.
#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) open: Option<BlockWriter>,
    pub(crate) last_block: Option<u32>,
    pub(crate) in_flight: u32,
}

impl Inner {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TelemetryStore {
    /// Opens telemetry in `store`, sealing under keys from `keys`. Seals
    /// what a previous run left unsealed before returning.
    pub async fn open(
        store: Store,
        keys: Arc<dyn TelemetryKeys>,
        options: TelemetryOptions,
    ) -> Result<TelemetryStore, TelemetryError> {
        let period_ms = whole_ms(options.period)?;
        if !(1_000..=7 * 86_400_000).contains(&period_ms) {
            return Err(TelemetryError::InvalidOptions(
                "period must be from 1 s to 7 days",
            ));
        }
        if options.max_block_readings == 0 || options.max_block_bytes == 0 {
            return Err(TelemetryError::InvalidOptions(
                "block limits must be above zero",
            ));
        }
        #[cfg(feature = "unsealed-baseline")]
        let mode = if options.unsealed_baseline {
            Mode::Unsealed
        } else {
            Mode::Sealed
        };
        #[cfg(not(feature = "unsealed-baseline"))]
        let mode = Mode::Sealed;
        let inner = Arc::new(Inner {
            store,
            keys,
            mode,
            period_ms,
            grace_ms: whole_ms(options.seal_grace)?,
            max_block_readings: options.max_block_readings,
            max_block_bytes: options.max_block_bytes,
            state: Mutex::new(State::default()),
            ensured: Mutex::new(HashSet::new()),
        });
        let recovering = Arc::clone(&inner);
        blocking(move || recovering.prepare()).await?;
        Ok(TelemetryStore { inner })
    }

    /// The period length in use, ms.
    pub fn period_ms(&self) -> u64 {
        self.inner.period_ms
    }
}

impl Inner {
    fn prepare(&self) -> Result<(), TelemetryError> {
        let read = self.store.telemetry_read()?;
        match read.period_ms()? {
            None => self.store.commit_blocking(vec![Op::SetTelemetryPeriod {
                period_ms: self.period_ms,
            }])?,
            Some(stored) if stored != self.period_ms => {
                return Err(TelemetryError::PeriodMismatch {
                    stored_ms: stored,
                    configured_ms: self.period_ms,
                });
            }
            Some(_) => {}
        }
        let mut ops = Vec::new();
        let mut sealed = 0usize;
        read.for_each_unsealed(|key, header, seqs| {
            match recovery_footer(self.keys.as_ref(), self.mode, &key, header, seqs) {
                Ok(footer) => ops.push(Op::SealTelemetryBlock {
                    // A block never holds 2^32 chunks: its limits stop it first.
                    chunks: seqs.len() as u32,
                    key,
                    footer,
                }),
                Err(BlockFailure::KeyDestroyed) => {
                    tracing::debug!(?key, "unsealed block of a shredded device left as it is");
                }
                Err(e) => {
                    tracing::warn!(?key, problem = ?e, "cannot seal a block left unsealed; queries report it");
                }
            }
            // Bounded batches: after a crash with many devices this is
            // many blocks.
            if ops.len() >= RECOVERY_BATCH {
                sealed += ops.len();
                self.store.commit_blocking(std::mem::take(&mut ops))?;
            }
            Ok::<_, TelemetryError>(())
        })?;
        sealed += ops.len();
        if !ops.is_empty() {
            self.store.commit_blocking(ops)?;
        }
        if sealed > 0 {
            tracing::info!(blocks = sealed, "sealed telemetry blocks left unsealed");
        }
        Ok(())
    }
}

fn whole_ms(d: Duration) -> Result<u64, TelemetryError> {
    u64::try_from(d.as_millis()).map_err(|_| TelemetryError::InvalidOptions("duration too long"))
}

/// Runs blocking work (store reads, KMS file writes) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TelemetryError> + Send + 'static,
) -> Result<T, TelemetryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TelemetryError::Task(e.to_string()))?
}
