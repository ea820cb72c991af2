//! Telemetry tables: sealed blocks, unsealed blocks' headers and chunks,
//! and the period setting.
//!
//! Every key starts with the thing and the period start, so one device's
//! blocks are contiguous and in time order: a query is a range scan, and
//! dropping a device's expired periods is a range delete over one row per
//! sealed block (plus the few rows of blocks not sealed yet).

use std::ops::{ControlFlow, Range};

use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::codec::DecodeError;
use crate::codec::telemetry::{decode_block, encode_block};
use crate::error::StoreError;
use crate::telemetry::{BlockOrder, TelemetryBlock, TelemetryBlockKey, TelemetryChunk};

type BlockKey = (&'static str, u64, u32);
type ChunkKey = (&'static str, u64, u32, u32);

/// (thing, period start, block) → sealed block container.
const BLOCKS: TableDefinition<BlockKey, &[u8]> = TableDefinition::new("telemetry_blocks");
/// (thing, period start, block) → header of an unsealed block.
const OPEN: TableDefinition<BlockKey, &[u8]> = TableDefinition::new("telemetry_open");
/// (thing, period start, block, seq) → chunk of an unsealed block.
const CHUNKS: TableDefinition<ChunkKey, &[u8]> = TableDefinition::new("telemetry_chunks");
const SETTINGS: TableDefinition<&str, u64> = TableDefinition::new("telemetry_settings");
const PERIOD_KEY: &str = "period_ms";

pub(crate) fn create(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(BLOCKS)?;
    txn.open_table(OPEN)?;
    txn.open_table(CHUNKS)?;
    txn.open_table(SETTINGS)?;
    Ok(())
}

pub(crate) struct Writer<'t> {
    blocks: Table<'t, BlockKey, &'static [u8]>,
    open: Table<'t, BlockKey, &'static [u8]>,
    chunks: Table<'t, ChunkKey, &'static [u8]>,
    settings: Table<'t, &'static str, u64>,
}

impl<'t> Writer<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<Writer<'t>, StoreError> {
        Ok(Writer {
            blocks: txn.open_table(BLOCKS)?,
            open: txn.open_table(OPEN)?,
            chunks: txn.open_table(CHUNKS)?,
            settings: txn.open_table(SETTINGS)?,
        })
    }

    pub(crate) fn open_block(
        &mut self,
        key: &TelemetryBlockKey,
        header: &[u8],
    ) -> Result<(), StoreError> {
        self.open.insert(block_key(key), header)?;
        Ok(())
    }

    pub(crate) fn put_chunk(
        &mut self,
        key: &TelemetryBlockKey,
        seq: u32,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let k = (key.thing.as_str(), key.period_start_ms, key.block, seq);
        self.chunks.insert(k, bytes)?;
        Ok(())
    }

    /// Moves an unsealed block into one row with `footer`, if it holds
    /// exactly `expected` chunks. Otherwise (a chunk's commit failed, or the
    /// block is gone) it is left for the next open to seal from what is
    /// there, since failing the op would fail every other caller's ops in
    /// the same group commit.
    pub(crate) fn seal(
        &mut self,
        key: &TelemetryBlockKey,
        expected: u32,
        footer: &[u8],
    ) -> Result<(), StoreError> {
        let Some(header) = self.open.get(block_key(key))?.map(|v| v.value().to_vec()) else {
            tracing::warn!(?key, "sealing a telemetry block that is not open; ignored");
            return Ok(());
        };
        let mut chunks = Vec::new();
        for entry in self.chunks.range(chunk_range(key))? {
            let (k, v) = entry?;
            chunks.push((k.value().3, v.value().to_vec()));
        }
        if chunks.len() != expected as usize {
            tracing::warn!(
                ?key,
                expected,
                found = chunks.len(),
                "telemetry block not sealed: chunk count differs; the next open seals it"
            );
            return Ok(());
        }
        let parts: Vec<(u32, &[u8])> = chunks.iter().map(|(s, b)| (*s, b.as_slice())).collect();
        self.blocks.insert(
            block_key(key),
            encode_block(&header, &parts, footer).as_slice(),
        )?;
        self.open.remove(block_key(key))?;
        self.chunks.retain_in(chunk_range(key), |_, _| false)?;
        Ok(())
    }

    /// Drops every block of `thing` whose period starts before `before_ms`.
    pub(crate) fn drop_before(&mut self, thing: &str, before_ms: u64) -> Result<(), StoreError> {
        let blocks = (thing, 0u64, 0u32)..(thing, before_ms, 0u32);
        self.blocks.retain_in(blocks.clone(), |_, _| false)?;
        self.open.retain_in(blocks, |_, _| false)?;
        self.chunks.retain_in(
            (thing, 0u64, 0u32, 0u32)..(thing, before_ms, 0u32, 0u32),
            |_, _| false,
        )?;
        Ok(())
    }

    pub(crate) fn set_period(&mut self, period_ms: u64) -> Result<(), StoreError> {
        self.settings.insert(PERIOD_KEY, period_ms)?;
        Ok(())
    }
}

fn block_key(key: &TelemetryBlockKey) -> (&str, u64, u32) {
    (key.thing.as_str(), key.period_start_ms, key.block)
}

fn chunk_range(key: &TelemetryBlockKey) -> std::ops::RangeInclusive<(&str, u64, u32, u32)> {
    let (t, p, b) = block_key(key);
    (t, p, b, 0)..=(t, p, b, u32::MAX)
}

fn owned_key((thing, period_start_ms, block): (&str, u64, u32)) -> TelemetryBlockKey {
    TelemetryBlockKey {
        thing: thing.to_owned(),
        period_start_ms,
        block,
    }
}

pub(crate) fn period_ms(txn: &ReadTransaction) -> Result<Option<u64>, StoreError> {
    let table = txn.open_table(SETTINGS)?;
    Ok(table.get(PERIOD_KEY)?.map(|v| v.value()))
}

/// Skip-scans both block tables: one seek per device, not one step per row.
pub(crate) fn things(txn: &ReadTransaction) -> Result<Vec<String>, StoreError> {
    let blocks = txn.open_table(BLOCKS)?;
    let open = txn.open_table(OPEN)?;
    let mut out: Vec<String> = Vec::new();
    let mut from = String::new();
    loop {
        let start = (from.as_str(), 0u64, 0u32);
        let mut next: Option<String> = None;
        for table in [&blocks, &open] {
            if let Some(entry) = table.range(start..)?.next() {
                let (k, _) = entry?;
                let thing = k.value().0;
                if next.as_deref().is_none_or(|n| thing < n) {
                    next = Some(thing.to_owned());
                }
            }
        }
        let Some(thing) = next else {
            return Ok(out);
        };
        // The least string greater than `thing`.
        from = format!("{thing}\0");
        out.push(thing);
    }
}

pub(crate) fn blocks(
    txn: &ReadTransaction,
    thing: &str,
    periods: Range<u64>,
    order: BlockOrder,
    mut visit: impl FnMut(TelemetryBlockKey, Result<TelemetryBlock, DecodeError>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    if periods.is_empty() {
        return Ok(());
    }
    let sealed_table = txn.open_table(BLOCKS)?;
    let open_table = txn.open_table(OPEN)?;
    let chunks_table = txn.open_table(CHUNKS)?;
    let range = (thing, periods.start, 0u32)..(thing, periods.end, 0u32);
    let descending = order == BlockOrder::Descending;
    let mut sealed = directed(sealed_table.range(range.clone())?, descending).peekable();
    let mut open = directed(open_table.range(range)?, descending).peekable();
    loop {
        // The two tables merged in the walk's direction; an error is taken
        // at once so that `?` reports it.
        let take_sealed = match (head(&mut sealed), head(&mut open)) {
            (None, None) => return Ok(()),
            (Some(Err(())), _) => true,
            (_, Some(Err(()))) => false,
            (Some(Ok(s)), Some(Ok(o))) => (s <= o) != descending,
            (Some(Ok(_)), None) => true,
            (None, Some(Ok(_))) => false,
        };
        let step = if take_sealed {
            let Some(entry) = sealed.next() else {
                return Ok(());
            };
            let (k, v) = entry?;
            visit(owned_key(k.value()), decode_block(v.value()))
        } else {
            let Some(entry) = open.next() else {
                return Ok(());
            };
            let (k, v) = entry?;
            let key = owned_key(k.value());
            let chunks = unsealed_chunks(&chunks_table, &key)?;
            visit(
                key,
                Ok(TelemetryBlock {
                    header: v.value().to_vec(),
                    chunks,
                    footer: None,
                }),
            )
        };
        if step.is_break() {
            return Ok(());
        }
    }
}

type Entry = Result<
    (
        redb::AccessGuard<'static, BlockKey>,
        redb::AccessGuard<'static, &'static [u8]>,
    ),
    redb::StorageError,
>;

fn directed(
    range: redb::Range<'static, BlockKey, &'static [u8]>,
    descending: bool,
) -> Box<dyn Iterator<Item = Entry>> {
    if descending {
        Box::new(range.rev())
    } else {
        Box::new(range)
    }
}

/// The (period, block) of the next entry, `Err` if reading it failed.
fn head(
    it: &mut std::iter::Peekable<Box<dyn Iterator<Item = Entry>>>,
) -> Option<Result<(u64, u32), ()>> {
    it.peek().map(|entry| match entry {
        Ok((k, _)) => {
            let (_, period, block) = k.value();
            Ok((period, block))
        }
        Err(_) => Err(()),
    })
}

fn unsealed_chunks(
    table: &impl ReadableTable<ChunkKey, &'static [u8]>,
    key: &TelemetryBlockKey,
) -> Result<Vec<TelemetryChunk>, StoreError> {
    let mut out = Vec::new();
    for entry in table.range(chunk_range(key))? {
        let (k, v) = entry?;
        out.push(TelemetryChunk {
            seq: k.value().3,
            bytes: v.value().to_vec(),
        });
    }
    Ok(out)
}

pub(crate) fn unsealed_blocks(
    txn: &ReadTransaction,
) -> Result<Vec<(TelemetryBlockKey, TelemetryBlock)>, StoreError> {
    let open = txn.open_table(OPEN)?;
    let chunks = txn.open_table(CHUNKS)?;
    let mut out = Vec::new();
    for entry in open.iter()? {
        let (k, v) = entry?;
        let key = owned_key(k.value());
        let block = TelemetryBlock {
            header: v.value().to_vec(),
            chunks: unsealed_chunks(&chunks, &key)?,
            footer: None,
        };
        out.push((key, block));
    }
    Ok(out)
}

/// Visits every unsealed block's key, header and chunk numbers, holding
/// one block's numbers at a time (not its chunks).
pub(crate) fn for_each_unsealed<E: From<StoreError>>(
    txn: &ReadTransaction,
    mut visit: impl FnMut(TelemetryBlockKey, &[u8], &[u32]) -> Result<(), E>,
) -> Result<(), E> {
    let open = txn.open_table(OPEN).map_err(StoreError::from)?;
    let chunks = txn.open_table(CHUNKS).map_err(StoreError::from)?;
    let mut seqs = Vec::new();
    for entry in open.iter().map_err(StoreError::from)? {
        let (k, header) = entry.map_err(StoreError::from)?;
        let key = owned_key(k.value());
        seqs.clear();
        for chunk in chunks.range(chunk_range(&key)).map_err(StoreError::from)? {
            let (k, _) = chunk.map_err(StoreError::from)?;
            seqs.push(k.value().3);
        }
        visit(key, header.value(), &seqs)?;
    }
    Ok(())
}

pub(crate) fn last_block(
    txn: &ReadTransaction,
    thing: &str,
    period_start_ms: u64,
) -> Result<Option<u32>, StoreError> {
    let range = (thing, period_start_ms, 0u32)..=(thing, period_start_ms, u32::MAX);
    let mut last = None;
    for table in [txn.open_table(BLOCKS)?, txn.open_table(OPEN)?] {
        if let Some(entry) = table.range(range.clone())?.next_back() {
            let (k, _) = entry?;
            last = last.max(Some(k.value().2));
        }
    }
    Ok(last)
}
