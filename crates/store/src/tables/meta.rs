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
///
/// 1: retained messages and sessions. 2: adds device shadows. 3: adds the
/// device registry. 4: adds telemetry blocks. 5: adds rules engine rules.
pub const SCHEMA_VERSION: u32 = 5;

/// `MIGRATIONS[i]` moves a store from schema version `i + 1` to `i + 2`.
type Migration = fn(&WriteTransaction) -> Result<(), StoreError>;
const MIGRATIONS: &[Migration] = &[to_2_shadows, to_3_registry, to_4_telemetry, to_5_rules];

/// Version 2 only adds a table; the point of the step is that a build that
/// knows nothing of shadows refuses the file instead of silently ignoring
/// the shadows in it.
fn to_2_shadows(txn: &WriteTransaction) -> Result<(), StoreError> {
    super::shadows::create(txn)
}

/// Version 3 adds the registry's tables, for the same reason: an older
/// build must not serve devices while ignoring their registry state.
fn to_3_registry(txn: &WriteTransaction) -> Result<(), StoreError> {
    super::registry::create(txn)
}

/// Version 4 adds the telemetry tables: an older build must not run
/// retention or shredding blind to the telemetry in the file.
fn to_4_telemetry(txn: &WriteTransaction) -> Result<(), StoreError> {
    super::telemetry::create(txn)
}

/// Version 5 adds the rules table: an older build would run none of the
/// rules and drop their Basic Ingest messages without a word.
fn to_5_rules(txn: &WriteTransaction) -> Result<(), StoreError> {
    super::rules::create(txn)
}

const _: () = assert!(MIGRATIONS.len() + 1 == SCHEMA_VERSION as usize);

/// Brings the database to `SCHEMA_VERSION`: creates every table of a new
/// store, runs the pending migrations of an older one, refuses a newer one.
/// One durable transaction, so a crash mid-migration leaves the old version.
pub(crate) fn prepare(
    txn: &mut WriteTransaction,
    create_tables: impl FnOnce(&WriteTransaction) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    migrate(txn, SCHEMA_VERSION, MIGRATIONS, create_tables)
}

/// `prepare` for a given current version and migration list, so that the
/// migration path can be exercised before a second version exists.
fn migrate(
    txn: &mut WriteTransaction,
    current: u32,
    migrations: &[Migration],
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
        Some(v) if v > current => {
            return Err(StoreError::SchemaTooNew {
                found: v,
                supported: current,
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
            for (i, migrate) in migrations.iter().enumerate().skip(v as usize - 1) {
                tracing::info!(from = i + 1, to = i + 2, "migrating store schema");
                migrate(txn)?;
            }
        }
        None => {}
    }
    // Creating is idempotent, and doing it on every open means a table added
    // by a later version exists before anything reads it.
    create_tables(txn)?;
    if found != Some(current) {
        let mut table = txn.open_table(TABLE)?;
        table.insert(SCHEMA_VERSION_KEY, encode_meta_u32(current).as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use redb::{Database, ReadableDatabase, ReadableTableMetadata};

    use super::*;

    const LOG: TableDefinition<u64, u32> = TableDefinition::new("migration_log");

    /// Records which migration ran, in order.
    fn log(txn: &WriteTransaction, step: u32) -> Result<(), StoreError> {
        let mut t = txn.open_table(LOG)?;
        let n = t.len()?;
        t.insert(n, step)?;
        Ok(())
    }

    fn to_2(txn: &WriteTransaction) -> Result<(), StoreError> {
        log(txn, 2)
    }

    fn to_3(txn: &WriteTransaction) -> Result<(), StoreError> {
        log(txn, 3)
    }

    fn run(db: &Database, current: u32) -> Result<(), StoreError> {
        let mut txn = db.begin_write()?;
        migrate(&mut txn, current, &[to_2, to_3], |_| Ok(()))?;
        txn.commit()?;
        Ok(())
    }

    fn version(db: &Database) -> u32 {
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(TABLE).unwrap();
        decode_meta_u32(t.get(SCHEMA_VERSION_KEY).unwrap().unwrap().value()).unwrap()
    }

    fn logged(db: &Database) -> Vec<u32> {
        let txn = db.begin_read().unwrap();
        match txn.open_table(LOG) {
            Ok(t) => t.iter().unwrap().map(|e| e.unwrap().1.value()).collect(),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn older_versions_are_migrated_forward_step_by_step() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let db = Database::create(file.path()).unwrap();

        // A new store is created at the version given, with no migrations.
        run(&db, 1).unwrap();
        assert_eq!(version(&db), 1);
        assert!(logged(&db).is_empty());

        // Two versions later, both steps run, in order, once.
        run(&db, 3).unwrap();
        assert_eq!(version(&db), 3);
        assert_eq!(logged(&db), vec![2, 3]);
        run(&db, 3).unwrap();
        assert_eq!(logged(&db), vec![2, 3]);

        // An older build refuses what the newer one wrote.
        assert!(matches!(
            run(&db, 2),
            Err(StoreError::SchemaTooNew {
                found: 3,
                supported: 2
            })
        ));
    }

    #[test]
    fn a_failed_migration_leaves_the_old_version() {
        fn fail(_: &WriteTransaction) -> Result<(), StoreError> {
            Err(StoreError::Closed)
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        let db = Database::create(file.path()).unwrap();
        run(&db, 1).unwrap();
        let mut txn = db.begin_write().unwrap();
        assert!(migrate(&mut txn, 3, &[to_2, fail], |_| Ok(())).is_err());
        drop(txn);
        assert_eq!(version(&db), 1);
        assert!(logged(&db).is_empty());
    }
}
