//! Retained messages: topic -> message.

use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::codec::{decode_message, encode_message};
use crate::error::StoreError;
use crate::records::StoredMessage;

pub(crate) const NAME: &str = "retained";
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new(NAME);

pub(crate) fn create(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(TABLE)?;
    Ok(())
}

pub(crate) struct Writer<'t> {
    table: Table<'t, &'static str, &'static [u8]>,
}

impl<'t> Writer<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<Writer<'t>, StoreError> {
        Ok(Writer {
            table: txn.open_table(TABLE)?,
        })
    }

    pub(crate) fn put(&mut self, topic: &str, message: &StoredMessage) -> Result<(), StoreError> {
        self.table
            .insert(topic, encode_message(message).as_slice())?;
        Ok(())
    }

    pub(crate) fn delete(&mut self, topic: &str) -> Result<(), StoreError> {
        self.table.remove(topic)?;
        Ok(())
    }
}

/// Every retained message, ordered by topic.
pub(crate) fn load(txn: &ReadTransaction) -> Result<Vec<StoredMessage>, StoreError> {
    let table = txn.open_table(TABLE)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        let message = decode_message(value.value())
            .map_err(|e| StoreError::corrupt(NAME, format!("{:?}", key.value()), e))?;
        out.push(message);
    }
    Ok(out)
}
