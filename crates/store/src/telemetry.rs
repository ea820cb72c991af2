//! Telemetry blocks as the store keeps them, and the `Store` entry point to
//! read them.
//!
//! A block holds one device's readings for one period: a header, chunks
//! numbered from 0, and — once sealed — a footer. The store keeps all three
//! opaque (civitas-telemetry encrypts and frames them). An unsealed block's
//! header and chunks are separate rows, so that each append is a small
//! durable write; sealing moves them into a single row, so that reading or
//! dropping a period touches one row per block. Writes go through the group
//! commit as `Op::OpenTelemetryBlock`, `Op::PutTelemetryChunk`,
//! `Op::SealTelemetryBlock` and `Op::DropTelemetry`.

use std::ops::{ControlFlow, Range};

use redb::ReadableDatabase;

use crate::codec::DecodeError;
use crate::error::StoreError;
use crate::store::Store;
use crate::tables::telemetry as tables;

/// Where a block lives: one device, one period, one block number (a period
/// gets a further block when one fills up or after a restart).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TelemetryBlockKey {
    pub thing: String,
    /// Start of the period, unix ms.
    pub period_start_ms: u64,
    pub block: u32,
}

/// One chunk of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryChunk {
    /// Position in the block, from 0.
    pub seq: u32,
    pub bytes: Vec<u8>,
}

/// A block as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryBlock {
    pub header: Vec<u8>,
    /// Ascending `seq`.
    pub chunks: Vec<TelemetryChunk>,
    /// `None` while the block is unsealed.
    pub footer: Option<Vec<u8>>,
}

impl TelemetryBlock {
    /// True once the block has been sealed.
    pub fn is_sealed(&self) -> bool {
        self.footer.is_some()
    }
}

/// Which way [`TelemetryRead::blocks`] walks a device's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOrder {
    /// Ascending period start, then block number.
    Ascending,
    /// Descending period start, then block number.
    Descending,
}

/// A consistent snapshot of the telemetry tables.
pub struct TelemetryRead {
    pub(crate) txn: redb::ReadTransaction,
}

impl std::fmt::Debug for TelemetryRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TelemetryRead")
    }
}

impl TelemetryRead {
    /// The period length recorded by `Op::SetTelemetryPeriod`, if any.
    pub fn period_ms(&self) -> Result<Option<u64>, StoreError> {
        tables::period_ms(&self.txn)
    }

    /// Every device with at least one block (sealed or not), ascending.
    pub fn things(&self) -> Result<Vec<String>, StoreError> {
        tables::things(&self.txn)
    }

    /// Visits the blocks of `thing` whose period starts in `periods`, sealed
    /// and unsealed merged in `order`, until `visit` breaks. A sealed block
    /// whose row does not decode is passed as the error, with its key, so
    /// that the caller can report it and go on.
    pub fn blocks(
        &self,
        thing: &str,
        periods: Range<u64>,
        order: BlockOrder,
        visit: impl FnMut(TelemetryBlockKey, Result<TelemetryBlock, DecodeError>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        tables::blocks(&self.txn, thing, periods, order, visit)
    }

    /// Every unsealed block, in key order (what a restart must seal).
    pub fn unsealed_blocks(&self) -> Result<Vec<(TelemetryBlockKey, TelemetryBlock)>, StoreError> {
        tables::unsealed_blocks(&self.txn)
    }

    /// Visits every unsealed block — key, header and chunk numbers — in key
    /// order; lighter than `unsealed_blocks` when the chunks themselves are
    /// not needed (sealing at start).
    pub fn for_each_unsealed<E: From<StoreError>>(
        &self,
        visit: impl FnMut(TelemetryBlockKey, &[u8], &[u32]) -> Result<(), E>,
    ) -> Result<(), E> {
        tables::for_each_unsealed(&self.txn, visit)
    }

    /// The highest block number used for `thing` in the period starting at
    /// `period_start_ms`, sealed or not.
    pub fn last_block(&self, thing: &str, period_start_ms: u64) -> Result<Option<u32>, StoreError> {
        tables::last_block(&self.txn, thing, period_start_ms)
    }
}

impl Store {
    /// A snapshot of the telemetry committed so far.
    pub fn telemetry_read(&self) -> Result<TelemetryRead, StoreError> {
        let db = self.db()?;
        Ok(TelemetryRead {
            txn: db.begin_read()?,
        })
    }
}
