//! The `meta` table: the schema version, checked and migrated at open.
//!
//! The schema version names the set of tables and their key layouts; the
//! record format inside a value is versioned separately by its first byte
//! (see `codec`). A file from a newer build is refused rather than
//! misread.

use redb::{Durability, ReadableTable, TableDefinition, WriteTransaction};

use crate::codec::{decode_meta_u32, encode_meta_u32};
use crate::error::StoreError;

pub(crate) const NAME: &str = "meta";
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new(NAME);
const SCHEMA_VERSION_KEY: &str = "schema_version";

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// `MIGRATIONS[i]` moves a store from schema version `i + 1` to `i + 2`.
type Migration = fn(&WriteTransaction) -> Result<(), StoreError>;
const MIGRATIONS: &[Migration] = &[];

const _: () = assert!(MIGRATIONS.len() + 1 == SCHEMA_VERSION as usize);

/// Brings the database to `SCHEMA_VERSION`: creates every table of a new
/// store, runs the pending migrations of an older one, refuses a newer one.
/// One durable transaction, so a crash mid-migration leaves the old version.
pub(crate) fn prepare(
    txn: &mut WriteTransaction,
    create_tables: impl FnOnce(&WriteTransaction) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    txn.set_durability(Durability::Immediate)?;
    let found = {
        let table = txn.open_table(TABLE)?;
        match table.get(SCHEMA_VERSION_KEY)? {
            None => None,
            Some(v) => Some(
                decode_meta_u32(v.value())
                    .map_err(|e| StoreError::corrupt(NAME, format!("{SCHEMA_VERSION_KEY:?}"), e))?,
            ),
        }
    };
    match found {
        Some(v) if v > SCHEMA_VERSION => {
            return Err(StoreError::SchemaTooNew {
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        Some(0) => {
            return Err(StoreError::corrupt(
                NAME,
                format!("{SCHEMA_VERSION_KEY:?}"),
                crate::codec::DecodeError::InvalidValue {
                    field: "schema_version",
                    offset: 0,
                    value: 0,
                },
            ));
        }
        Some(v) => {
            for (i, migrate) in MIGRATIONS.iter().enumerate().skip(v as usize - 1) {
                tracing::info!(from = i + 1, to = i + 2, "migrating store schema");
                migrate(txn)?;
            }
        }
        None => {}
    }
    // Creating is idempotent, and doing it on every open means a table added
    // by a later version exists before anything reads it.
    create_tables(txn)?;
    if found != Some(SCHEMA_VERSION) {
        let mut table = txn.open_table(TABLE)?;
        table.insert(
            SCHEMA_VERSION_KEY,
            encode_meta_u32(SCHEMA_VERSION).as_slice(),
        )?;
    }
    Ok(())
}
