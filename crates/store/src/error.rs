//! The store's error type.
//!
//! `StoreError` is `Clone` because one failed group commit is reported to
//! every caller whose ops were in that batch; the underlying redb and I/O
//! errors are therefore held behind an `Arc`.

use std::sync::Arc;

use crate::codec::DecodeError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// redb reported an error (I/O, corruption of the file, lock held by
    /// another process, ...).
    #[error("database error: {0}")]
    Database(#[source] Arc<redb::Error>),

    /// A record's bytes could not be decoded.
    #[error("corrupt record in table `{table}` at key {key}: {source}")]
    Corrupt {
        table: &'static str,
        /// The key, rendered for humans (strings quoted, tuples in parentheses).
        key: String,
        #[source]
        source: DecodeError,
    },

    /// The file was written by a newer civitas with a schema this build
    /// does not know how to read.
    #[error(
        "store schema version {found} is newer than the newest this build supports ({supported}); \
         upgrade civitas or restore a store written by this version"
    )]
    SchemaTooNew { found: u32, supported: u32 },

    /// The store was closed; no more ops are accepted.
    #[error("store is closed")]
    Closed,

    /// The commit thread could not be started.
    #[error("cannot start the commit thread: {0}")]
    Thread(#[source] Arc<std::io::Error>),
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, key: String, source: DecodeError) -> StoreError {
        StoreError::Corrupt { table, key, source }
    }
}

// redb splits its errors by operation; each converts into `redb::Error`, so
// route all of them through it.
macro_rules! from_redb {
    ($($ty:ty),* $(,)?) => {
        $(impl From<$ty> for StoreError {
            fn from(e: $ty) -> StoreError {
                StoreError::Database(Arc::new(redb::Error::from(e)))
            }
        })*
    };
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
);

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> StoreError {
        StoreError::Database(Arc::new(e))
    }
}
