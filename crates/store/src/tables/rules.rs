//! Rules engine rules: rule name -> rule record. Few and small, so the
//! engine loads them all at start.

use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::codec::rules::{decode_rule, encode_rule};
use crate::error::StoreError;
use crate::records::RuleRecord;

pub(crate) const NAME: &str = "rules";
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

    pub(crate) fn put(&mut self, record: &RuleRecord) -> Result<(), StoreError> {
        self.table
            .insert(record.name.as_str(), encode_rule(record).as_slice())?;
        Ok(())
    }

    pub(crate) fn delete(&mut self, name: &str) -> Result<(), StoreError> {
        self.table.remove(name)?;
        Ok(())
    }
}

/// Every rule, ordered by name.
pub(crate) fn load(txn: &ReadTransaction) -> Result<Vec<RuleRecord>, StoreError> {
    let table = txn.open_table(TABLE)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        let record = decode_rule(value.value())
            .map_err(|e| StoreError::corrupt(NAME, format!("{:?}", key.value()), e))?;
        out.push(record);
    }
    Ok(out)
}
