//! Device shadows: (thing, shadow name) -> shadow record.
//!
//! The classic shadow has the empty name, so a thing's shadows are
//! contiguous and the classic one sorts first. Shadows are read one at a
//! time when a request arrives, never loaded at start.

use redb::{ReadTransaction, Table, TableDefinition, WriteTransaction};

use crate::codec::{decode_shadow, encode_shadow};
use crate::error::StoreError;
use crate::records::ShadowRecord;

pub(crate) const NAME: &str = "shadows";
const TABLE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new(NAME);

pub(crate) fn create(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(TABLE)?;
    Ok(())
}

pub(crate) struct Writer<'t> {
    table: Table<'t, (&'static str, &'static str), &'static [u8]>,
}

impl<'t> Writer<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<Writer<'t>, StoreError> {
        Ok(Writer {
            table: txn.open_table(TABLE)?,
        })
    }

    pub(crate) fn put(&mut self, record: &ShadowRecord) -> Result<(), StoreError> {
        self.table.insert(
            (record.thing.as_str(), record.shadow.as_str()),
            encode_shadow(record).as_slice(),
        )?;
        Ok(())
    }

    pub(crate) fn delete(&mut self, thing: &str, shadow: &str) -> Result<(), StoreError> {
        self.table.remove((thing, shadow))?;
        Ok(())
    }
}

fn key_text(thing: &str, shadow: &str) -> String {
    format!("({thing:?}, {shadow:?})")
}

/// One shadow record (live or tombstone), if any.
pub(crate) fn load(
    txn: &ReadTransaction,
    thing: &str,
    shadow: &str,
) -> Result<Option<ShadowRecord>, StoreError> {
    let table = txn.open_table(TABLE)?;
    let Some(value) = table.get((thing, shadow))? else {
        return Ok(None);
    };
    decode_shadow(value.value())
        .map(Some)
        .map_err(|e| StoreError::corrupt(NAME, key_text(thing, shadow), e))
}

/// The names of a thing's named shadows that exist (tombstones left out),
/// in ascending order.
pub(crate) fn names(txn: &ReadTransaction, thing: &str) -> Result<Vec<String>, StoreError> {
    let table = txn.open_table(TABLE)?;
    let mut out = Vec::new();
    for entry in table.range((thing, "")..)? {
        let (key, value) = entry?;
        let (key_thing, shadow) = key.value();
        if key_thing != thing {
            break;
        }
        if shadow.is_empty() {
            continue;
        }
        let record = decode_shadow(value.value())
            .map_err(|e| StoreError::corrupt(NAME, key_text(key_thing, shadow), e))?;
        if record.document.is_some() {
            out.push(shadow.to_owned());
        }
    }
    Ok(out)
}
