//! Appending readings and sealing blocks.
//!
//! Durability before acknowledgement: an append seals its readings into
//! chunks at once — one per (thing, period, metric), each a record under
//! the block's data key — and writes them, with the block header while it
//! may not be durable yet, through the store's group commit. `append`
//! resolves only after that commit's fsync, so a SIGKILL can lose only
//! readings nobody was told are stored. Sealing a block later only moves
//! rows that are already durable and adds the footer.
//!
//! Ops are queued while the state lock is held, so chunks reach the store
//! in the order their numbers were handed out and a seal always follows
//! the chunks it counts. If a commit fails, the blocks it touched are
//! abandoned in memory — the next append starts new ones — and the next
//! open seals them from what reached the disk.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use civitas_kms::KmsError;
use civitas_store::{Op, StoreError, TelemetryBlockKey};

use crate::block::BlockWriter;
use crate::error::TelemetryError;
use crate::format::{Mode, encoded_len};
use crate::keys::device_key_id;
use crate::reading::NewReading;
use crate::store::{Inner, Slot, State, TelemetryStore, blocking};

/// Most readings in one chunk.
const MAX_CHUNK_READINGS: usize = 4096;
/// A chunk stops growing past this many plaintext bytes.
const MAX_CHUNK_BYTES: usize = 1 << 20;

/// A slot a queued commit touches, and what to do when it lands.
struct Touched {
    slot: (String, u64),
    block: Option<u32>,
    header: Option<Arc<AtomicBool>>,
}

impl TelemetryStore {
    /// Stores `readings` (of any devices and metrics) and resolves once
    /// they are durable. All or nothing: an invalid reading refuses the
    /// batch, and a failed commit stores none of it. Devices get their key
    /// on first use; a shredded device's readings are refused with
    /// [`TelemetryError::KeyDestroyed`].
    pub async fn append(&self, readings: Vec<NewReading>) -> Result<(), TelemetryError> {
        if readings.is_empty() {
            return Ok(());
        }
        for r in &readings {
            r.validate()?;
        }
        if self.inner.mode == Mode::Sealed {
            self.ensure_keys(&readings).await?;
        }
        let (commit, touched) = self.inner.queue_append(&readings)?;
        self.inner.await_landing(commit, touched).await
    }

    /// Seals every block whose period ended at least the grace before
    /// `now_ms`; run it periodically so that quiet devices' blocks seal
    /// too. Returns how many blocks were sealed.
    pub async fn seal_due(&self, now_ms: u64) -> Result<usize, TelemetryError> {
        let grace = self.inner.grace_ms;
        let period = self.inner.period_ms;
        self.seal_where(|_, start| start.saturating_add(period).saturating_add(grace) <= now_ms)
            .await
    }

    /// Seals every open block (at shutdown, or before a backup).
    pub async fn flush(&self) -> Result<usize, TelemetryError> {
        self.seal_where(|_, _| true).await
    }

    /// Runs `seal_due` with the system clock every `interval`, logging
    /// failures, until the task is aborted.
    pub fn spawn_sealer(&self, interval: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if let Err(e) = this.seal_due(crate::now_ms()).await {
                    tracing::warn!(error = %e, "sealing due telemetry blocks failed");
                }
            }
        })
    }

    async fn seal_where(&self, due: impl Fn(&str, u64) -> bool) -> Result<usize, TelemetryError> {
        let (commit, touched) = {
            let mut state = self.inner.state();
            let mut ops = Vec::new();
            let mut touched = Vec::new();
            let keys: Vec<(String, u64)> = state
                .slots
                .iter()
                .filter(|((thing, start), slot)| slot.open.is_some() && due(thing, *start))
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                if let Some(slot) = state.slots.get_mut(&k) {
                    self.inner.seal_slot(slot, &mut ops);
                    slot.in_flight += 1;
                    touched.push(Touched {
                        slot: k,
                        block: None,
                        header: None,
                    });
                }
            }
            if ops.is_empty() {
                return Ok(0);
            }
            (
                Box::pin(self.inner.store.commit(ops)) as CommitFuture,
                touched,
            )
        };
        let sealed = touched.len();
        self.inner.await_landing(commit, touched).await?;
        Ok(sealed)
    }

    /// Makes sure every device in `readings` has its key, durably, before
    /// anything is sealed under it.
    async fn ensure_keys(&self, readings: &[NewReading]) -> Result<(), TelemetryError> {
        let missing: Vec<String> = {
            let ensured = self
                .inner
                .ensured
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut m: Vec<String> = readings
                .iter()
                .filter(|r| !ensured.contains(&r.thing))
                .map(|r| r.thing.clone())
                .collect();
            m.sort();
            m.dedup();
            m
        };
        if missing.is_empty() {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let key_ids = missing
                .iter()
                .map(|thing| device_key_id(thing))
                .collect::<Result<Vec<_>, _>>()?;
            inner.keys.ensure_keys(&key_ids).map_err(|e| match e {
                KmsError::KeyDestroyed(id) => TelemetryError::KeyDestroyed {
                    thing: id.as_str().trim_start_matches("device/").to_owned(),
                },
                e => TelemetryError::Kms(e),
            })?;
            inner
                .ensured
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(missing);
            Ok(())
        })
        .await
    }
}

type CommitFuture = std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

impl Inner {
    /// Seals `readings` into chunks and queues them; returns the commit to
    /// wait for.
    fn queue_append(
        &self,
        readings: &[NewReading],
    ) -> Result<(CommitFuture, Vec<Touched>), TelemetryError> {
        type Groups<'r> = BTreeMap<(&'r str, u64), BTreeMap<&'r str, Vec<&'r NewReading>>>;
        let mut groups: Groups<'_> = BTreeMap::new();
        let mut newest: BTreeMap<&str, u64> = BTreeMap::new();
        for r in readings {
            let start = r.timestamp_ms - r.timestamp_ms % self.period_ms;
            groups
                .entry((&r.thing, start))
                .or_default()
                .entry(&r.metric)
                .or_default()
                .push(r);
            let n = newest.entry(&r.thing).or_default();
            *n = (*n).max(r.timestamp_ms);
        }

        let mut state = self.state();
        let mut ops = Vec::new();
        let mut touched: Vec<Touched> = Vec::new();
        let mut result = Ok(());
        'groups: for ((thing, start), metrics) in &groups {
            let slot_key = (thing.to_string(), *start);
            for (metric, rs) in metrics {
                if let Err(e) =
                    self.append_group(&mut state, &slot_key, metric, rs, &mut ops, &mut touched)
                {
                    result = Err(e);
                    break 'groups;
                }
            }
        }
        if result.is_ok() {
            // Blocks of these devices whose period is over by the readings'
            // own clock; `seal_due` covers devices that fell silent.
            for (thing, newest) in newest {
                let over: Vec<(String, u64)> = state
                    .slots
                    .range((thing.to_owned(), 0)..=(thing.to_owned(), u64::MAX))
                    .filter(|((_, start), slot)| {
                        slot.open.is_some()
                            && start
                                .saturating_add(self.period_ms)
                                .saturating_add(self.grace_ms)
                                <= newest
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in over {
                    if let Some(slot) = state.slots.get_mut(&k) {
                        self.seal_slot(slot, &mut ops);
                        touched.push(Touched {
                            slot: k,
                            block: None,
                            header: None,
                        });
                    }
                }
            }
        }
        if let Err(e) = result {
            // Nothing is queued; forget what this append half did.
            for t in &touched {
                if let (Some(slot), Some(block)) = (state.slots.get_mut(&t.slot), t.block) {
                    abandon(slot, block);
                }
            }
            state
                .slots
                .retain(|_, s| s.open.is_some() || s.in_flight > 0);
            return Err(e);
        }
        // `landed` counts each slot once per commit.
        let counted: BTreeSet<&(String, u64)> = touched.iter().map(|t| &t.slot).collect();
        for k in counted {
            if let Some(slot) = state.slots.get_mut(k) {
                slot.in_flight += 1;
            }
        }
        Ok((Box::pin(self.store.commit(ops)), touched))
    }

    /// Seals the readings of one (thing, period, metric) into as many
    /// chunks and blocks as the limits ask for.
    fn append_group(
        &self,
        state: &mut State,
        slot_key: &(String, u64),
        metric: &str,
        mut rest: &[&NewReading],
        ops: &mut Vec<Op>,
        touched: &mut Vec<Touched>,
    ) -> Result<(), TelemetryError> {
        if !state.slots.contains_key(slot_key) {
            let read = self.store.telemetry_read()?;
            let last_block = read.last_block(&slot_key.0, slot_key.1)?;
            state.slots.insert(
                slot_key.clone(),
                Slot {
                    last_block,
                    ..Slot::default()
                },
            );
        }
        let Some(slot) = state.slots.get_mut(slot_key) else {
            return Ok(());
        };
        while !rest.is_empty() {
            if slot.open.is_none() {
                let block = slot.last_block.map_or(0, |b| b.saturating_add(1));
                let key = TelemetryBlockKey {
                    thing: slot_key.0.clone(),
                    period_start_ms: slot_key.1,
                    block,
                };
                slot.open = Some(BlockWriter::create(
                    self.keys.as_ref(),
                    self.mode,
                    key,
                    self.period_ms,
                )?);
                slot.last_block = Some(block);
            }
            let Some(writer) = slot.open.as_mut() else {
                continue;
            };
            let room_readings = self.max_block_readings.saturating_sub(writer.readings);
            let room_bytes = self.max_block_bytes.saturating_sub(writer.bytes);
            let (mut n, mut bytes) = (0usize, 0usize);
            for r in rest.iter().take(MAX_CHUNK_READINGS) {
                let len = encoded_len(r);
                let fits_block = (n as u64) < room_readings && ((bytes + len) as u64) <= room_bytes;
                // A chunk takes at least one reading, and a fresh block too,
                // however large it is.
                let fits_chunk = n == 0 || bytes + len <= MAX_CHUNK_BYTES;
                let first_of_block = n == 0 && writer.readings == 0;
                if !(fits_block && fits_chunk || first_of_block) {
                    break;
                }
                n += 1;
                bytes += len;
            }
            if n > 0 {
                let header_sent = touched
                    .iter()
                    .any(|t| t.slot == *slot_key && t.block == Some(writer.key.block));
                if !header_sent && !writer.header_durable.load(Ordering::Acquire) {
                    ops.push(Op::OpenTelemetryBlock {
                        key: writer.key.clone(),
                        header: writer.header.clone(),
                    });
                }
                let (seq, chunk) = writer.seal_chunk(metric, &rest[..n])?;
                ops.push(Op::PutTelemetryChunk {
                    key: writer.key.clone(),
                    seq,
                    bytes: chunk,
                });
                touched.push(Touched {
                    slot: slot_key.clone(),
                    block: Some(writer.key.block),
                    header: (!header_sent).then(|| Arc::clone(&writer.header_durable)),
                });
                rest = &rest[n..];
            }
            if writer.readings >= self.max_block_readings
                || writer.bytes >= self.max_block_bytes
                || n == 0
            {
                self.seal_slot(slot, ops);
            }
        }
        Ok(())
    }

    /// Queues the seal of `slot`'s open block and closes it in memory. A
    /// footer that cannot be made leaves the block to the next open.
    pub(crate) fn seal_slot(&self, slot: &mut Slot, ops: &mut Vec<Op>) {
        let Some(writer) = slot.open.take() else {
            return;
        };
        match writer.footer() {
            Ok(footer) => ops.push(Op::SealTelemetryBlock {
                key: writer.key.clone(),
                chunks: writer.next_seq,
                footer,
            }),
            Err(e) => {
                tracing::warn!(key = ?writer.key, error = %e, "cannot seal a telemetry block; the next open will")
            }
        }
    }

    /// Waits for a queued commit, doing the bookkeeping in a task of its
    /// own so that it happens even if the caller stops waiting: a header
    /// wrongly taken for durable would leave later chunks without one.
    async fn await_landing(
        self: &Arc<Self>,
        commit: CommitFuture,
        touched: Vec<Touched>,
    ) -> Result<(), TelemetryError> {
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let result = commit.await;
            inner.landed(touched, result.is_ok());
            result
        })
        .await
        .map_err(|e| TelemetryError::Task(e.to_string()))?
        .map_err(TelemetryError::from)
    }

    /// Bookkeeping once a queued commit has landed (or failed).
    fn landed(&self, touched: Vec<Touched>, ok: bool) {
        let mut state = self.state();
        for t in &touched {
            if ok && let Some(flag) = &t.header {
                flag.store(true, Ordering::Release);
            }
            if !ok
                && let Some(block) = t.block
                && let Some(slot) = state.slots.get_mut(&t.slot)
            {
                abandon(slot, block);
            }
        }
        let counted: BTreeSet<&(String, u64)> = touched.iter().map(|t| &t.slot).collect();
        for k in counted {
            if let Some(slot) = state.slots.get_mut(k) {
                slot.in_flight = slot.in_flight.saturating_sub(1);
            }
            if state
                .slots
                .get(k)
                .is_some_and(|s| s.open.is_none() && s.in_flight == 0)
            {
                state.slots.remove(k);
            }
        }
    }
}

/// Stops writing to `block` if it is still the open one.
fn abandon(slot: &mut Slot, block: u32) {
    if slot.open.as_ref().is_some_and(|w| w.key.block == block) {
        slot.open = None;
    }
}
