//! The table families of the store, one module each, and the two places
//! that touch all of them: applying ops inside a write transaction and
//! loading the broker's state at start.
//!
//! A new family (telemetry, registry, ...) adds a module here, its
//! `create` to `create_all`, and its ops to `WriteTables::apply`.

pub(crate) mod meta;
pub(crate) mod registry;
pub(crate) mod retained;
pub(crate) mod rules;
pub(crate) mod sessions;
pub(crate) mod shadows;
pub(crate) mod telemetry;

use redb::{Database, ReadableDatabase, WriteTransaction};

use crate::error::StoreError;
use crate::records::{BrokerState, Op};

/// Makes sure every table exists (called by `meta::prepare` at open).
pub(crate) fn create_all(txn: &WriteTransaction) -> Result<(), StoreError> {
    retained::create(txn)?;
    sessions::create(txn)?;
    shadows::create(txn)?;
    registry::create(txn)?;
    rules::create(txn)?;
    telemetry::create(txn)?;
    Ok(())
}

/// Runs the schema check and migrations in one durable transaction.
pub(crate) fn prepare(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    meta::prepare(&mut txn, create_all)?;
    txn.commit()?;
    Ok(())
}

/// The tables of one write transaction, opened once per batch.
pub(crate) struct WriteTables<'t> {
    retained: retained::Writer<'t>,
    sessions: sessions::Writer<'t>,
    shadows: shadows::Writer<'t>,
    rules: rules::Writer<'t>,
    /// Opened on the first telemetry op, so batches without any (the
    /// broker's) do not pay for its four tables.
    telemetry: Option<telemetry::Writer<'t>>,
    txn: &'t WriteTransaction,
}

impl<'t> WriteTables<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<WriteTables<'t>, StoreError> {
        Ok(WriteTables {
            retained: retained::Writer::open(txn)?,
            sessions: sessions::Writer::open(txn)?,
            shadows: shadows::Writer::open(txn)?,
            rules: rules::Writer::open(txn)?,
            telemetry: None,
            txn,
        })
    }

    fn telemetry(&mut self) -> Result<&mut telemetry::Writer<'t>, StoreError> {
        match &mut self.telemetry {
            Some(writer) => Ok(writer),
            slot @ None => Ok(slot.insert(telemetry::Writer::open(self.txn)?)),
        }
    }

    pub(crate) fn apply(&mut self, op: &Op) -> Result<(), StoreError> {
        match op {
            Op::PutRetained { topic, message } => self.retained.put(topic, message),
            Op::DeleteRetained { topic } => self.retained.delete(topic),
            Op::PutSession(record) => self.sessions.put_session(record),
            Op::DeleteSession { client_id } => self.sessions.delete_session(client_id),
            Op::PutOutbound {
                client_id,
                seq,
                message,
            } => self.sessions.put_outbound(client_id, *seq, message),
            Op::DeleteOutbound { client_id, seq } => self.sessions.delete_outbound(client_id, *seq),
            Op::PutIncomingQos2 {
                client_id,
                packet_id,
            } => self.sessions.put_incoming_qos2(client_id, *packet_id),
            Op::DeleteIncomingQos2 {
                client_id,
                packet_id,
            } => self.sessions.delete_incoming_qos2(client_id, *packet_id),
            Op::PutShadow(record) => self.shadows.put(record),
            Op::DeleteShadow { thing, shadow } => self.shadows.delete(thing, shadow),
            Op::OpenTelemetryBlock { key, header } => self.telemetry()?.open_block(key, header),
            Op::PutTelemetryChunk { key, seq, bytes } => {
                self.telemetry()?.put_chunk(key, *seq, bytes)
            }
            Op::SealTelemetryBlock {
                key,
                chunks,
                footer,
            } => self.telemetry()?.seal(key, *chunks, footer),
            Op::DropTelemetry {
                thing,
                before_period_ms,
            } => self.telemetry()?.drop_before(thing, *before_period_ms),
            Op::SetTelemetryPeriod { period_ms } => self.telemetry()?.set_period(*period_ms),
            Op::PutRule(record) => self.rules.put(record),
            Op::DeleteRule { name } => self.rules.delete(name),
        }
    }
}

/// Reads everything the broker restores at start from one snapshot.
pub(crate) fn load_broker_state(db: &Database) -> Result<BrokerState, StoreError> {
    let txn = db.begin_read()?;
    Ok(BrokerState {
        retained: retained::load(&txn)?,
        sessions: sessions::load(&txn)?,
    })
}
