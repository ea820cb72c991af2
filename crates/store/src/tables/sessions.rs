//! Persistent sessions: the session record, its outbound queue and the
//! QoS 2 packet ids it has received but not yet released.
//!
//! The queue and the id set are keyed by `(client_id, n)` tuples so that one
//! client's entries are contiguous and a range scan visits them in order.

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::codec::{decode_outbound, decode_session, encode_outbound, encode_session};
use crate::error::StoreError;
use crate::records::{OutboundMessage, PersistedSession, SessionRecord};

pub(crate) const SESSIONS_NAME: &str = "sessions";
pub(crate) const OUTBOUND_NAME: &str = "outbound";
pub(crate) const QOS2_NAME: &str = "incoming_qos2";

const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new(SESSIONS_NAME);
const OUTBOUND: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new(OUTBOUND_NAME);
const QOS2: TableDefinition<(&str, u16), ()> = TableDefinition::new(QOS2_NAME);

pub(crate) fn create(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(SESSIONS)?;
    txn.open_table(OUTBOUND)?;
    txn.open_table(QOS2)?;
    Ok(())
}

pub(crate) struct Writer<'t> {
    sessions: Table<'t, &'static str, &'static [u8]>,
    outbound: Table<'t, (&'static str, u64), &'static [u8]>,
    qos2: Table<'t, (&'static str, u16), ()>,
}

impl<'t> Writer<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<Writer<'t>, StoreError> {
        Ok(Writer {
            sessions: txn.open_table(SESSIONS)?,
            outbound: txn.open_table(OUTBOUND)?,
            qos2: txn.open_table(QOS2)?,
        })
    }

    pub(crate) fn put_session(&mut self, record: &SessionRecord) -> Result<(), StoreError> {
        self.sessions
            .insert(record.client_id.as_str(), encode_session(record).as_slice())?;
        Ok(())
    }

    pub(crate) fn delete_session(&mut self, client_id: &str) -> Result<(), StoreError> {
        self.sessions.remove(client_id)?;
        self.outbound
            .retain_in((client_id, 0u64)..=(client_id, u64::MAX), |_, _| false)?;
        self.qos2
            .retain_in((client_id, 0u16)..=(client_id, u16::MAX), |_, _| false)?;
        Ok(())
    }

    pub(crate) fn put_outbound(
        &mut self,
        client_id: &str,
        seq: u64,
        message: &OutboundMessage,
    ) -> Result<(), StoreError> {
        self.outbound
            .insert((client_id, seq), encode_outbound(message).as_slice())?;
        Ok(())
    }

    pub(crate) fn delete_outbound(&mut self, client_id: &str, seq: u64) -> Result<(), StoreError> {
        self.outbound.remove((client_id, seq))?;
        Ok(())
    }

    pub(crate) fn put_incoming_qos2(
        &mut self,
        client_id: &str,
        packet_id: u16,
    ) -> Result<(), StoreError> {
        self.qos2.insert((client_id, packet_id), ())?;
        Ok(())
    }

    pub(crate) fn delete_incoming_qos2(
        &mut self,
        client_id: &str,
        packet_id: u16,
    ) -> Result<(), StoreError> {
        self.qos2.remove((client_id, packet_id))?;
        Ok(())
    }
}

/// Every session with its queue and QoS 2 ids, ordered by client id.
///
/// Queue entries or ids whose session record is missing cannot be delivered
/// to anyone; they are skipped with a warning rather than failing the start.
pub(crate) fn load(txn: &ReadTransaction) -> Result<Vec<PersistedSession>, StoreError> {
    let mut sessions = BTreeMap::new();
    let table = txn.open_table(SESSIONS)?;
    for entry in table.iter()? {
        let (key, value) = entry?;
        let key = key.value();
        let record = decode_session(value.value())
            .map_err(|e| StoreError::corrupt(SESSIONS_NAME, format!("{key:?}"), e))?;
        sessions.insert(
            key.to_owned(),
            PersistedSession {
                record,
                outbound: Vec::new(),
                incoming_qos2: Vec::new(),
            },
        );
    }

    let mut orphans = 0usize;
    let table = txn.open_table(OUTBOUND)?;
    for entry in table.iter()? {
        let (key, value) = entry?;
        let (client_id, seq) = key.value();
        let message = decode_outbound(value.value()).map_err(|e| {
            StoreError::corrupt(OUTBOUND_NAME, format!("({client_id:?}, {seq})"), e)
        })?;
        match sessions.get_mut(client_id) {
            Some(s) => s.outbound.push((seq, message)),
            None => orphans += 1,
        }
    }

    let table = txn.open_table(QOS2)?;
    for entry in table.iter()? {
        let (key, _) = entry?;
        let (client_id, packet_id) = key.value();
        match sessions.get_mut(client_id) {
            Some(s) => s.incoming_qos2.push(packet_id),
            None => orphans += 1,
        }
    }
    if orphans > 0 {
        tracing::warn!(
            orphans,
            "stored queue entries or QoS 2 ids without a session record were skipped"
        );
    }
    Ok(sessions.into_values().collect())
}
