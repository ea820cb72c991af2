//! Shadows in the civitas store (redb): reads from a snapshot on the
//! caller's thread, writes through the store's group commit.
//!
//! Why the group commit rather than a write transaction of our own: redb
//! has one writer at a time, and the commit thread is already it. A
//! transaction opened here would wait for the commit thread's batch and
//! then pay an fsync alone; an op queued with `commit_blocking` shares the next
//! batch's fsync with every other shadow update and broker write, which
//! is what keeps throughput up under many devices. Latency is one group
//! commit, the same as a QoS 1 PUBLISH. Ordering holds because the
//! service keeps a shadow locked from its load until `save` returns, i.e.
//! until the commit is durable and visible to the next read.

use civitas_store::{Op, ShadowRecord, Store};

use crate::document::{ShadowData, StoredShadow};
use crate::error::StoreFailure;
use crate::store::ShadowStore;

impl ShadowStore for Store {
    fn load(&self, thing: &str, name: Option<&str>) -> Result<Option<StoredShadow>, StoreFailure> {
        let Some(record) = self.load_shadow(thing, name.unwrap_or(""))? else {
            return Ok(None);
        };
        let data = match record.document {
            None => None,
            Some(bytes) => Some(ShadowData::from_json_bytes(&bytes)?),
        };
        Ok(Some(StoredShadow {
            version: record.version,
            updated_at_ms: record.updated_at_ms,
            data,
        }))
    }

    fn save(
        &self,
        thing: &str,
        name: Option<&str>,
        shadow: &StoredShadow,
    ) -> Result<(), StoreFailure> {
        let record = ShadowRecord {
            thing: thing.to_owned(),
            shadow: name.unwrap_or("").to_owned(),
            version: shadow.version,
            updated_at_ms: shadow.updated_at_ms,
            document: shadow.data.as_ref().map(ShadowData::to_json_bytes),
        };
        self.commit_blocking(vec![Op::PutShadow(record)])?;
        Ok(())
    }

    fn delete(&self, thing: &str, name: Option<&str>) -> Result<(), StoreFailure> {
        let op = Op::DeleteShadow {
            thing: thing.to_owned(),
            shadow: name.unwrap_or("").to_owned(),
        };
        self.commit_blocking(vec![op])?;
        Ok(())
    }

    fn names(&self, thing: &str) -> Result<Vec<String>, StoreFailure> {
        Ok(self.shadow_names(thing)?)
    }
}
