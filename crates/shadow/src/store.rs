//! Where shadows live: the `ShadowStore` trait and an in-memory store.
//!
//! A store only loads and saves whole shadows; the service serializes the
//! requests on one shadow, so a store needs no compare-and-swap. `save`
//! must return only once the shadow is durable (the service answers the
//! device after it returns).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use crate::document::StoredShadow;
use crate::error::StoreFailure;

/// Persistence for shadows. `name` is `None` for the classic shadow.
pub trait ShadowStore: Send + Sync {
    /// The shadow, live or deleted (a deleted one keeps its version).
    fn load(&self, thing: &str, name: Option<&str>) -> Result<Option<StoredShadow>, StoreFailure>;

    /// Inserts or replaces, durably.
    fn save(
        &self,
        thing: &str,
        name: Option<&str>,
        shadow: &StoredShadow,
    ) -> Result<(), StoreFailure>;

    /// Forgets the shadow entirely, version counter included.
    fn delete(&self, thing: &str, name: Option<&str>) -> Result<(), StoreFailure>;

    /// The names of the thing's named shadows that exist (deleted ones left
    /// out), ascending.
    fn names(&self, thing: &str) -> Result<Vec<String>, StoreFailure>;
}

impl<S: ShadowStore + ?Sized> ShadowStore for Arc<S> {
    fn load(&self, thing: &str, name: Option<&str>) -> Result<Option<StoredShadow>, StoreFailure> {
        (**self).load(thing, name)
    }

    fn save(
        &self,
        thing: &str,
        name: Option<&str>,
        shadow: &StoredShadow,
    ) -> Result<(), StoreFailure> {
        (**self).save(thing, name, shadow)
    }

    fn delete(&self, thing: &str, name: Option<&str>) -> Result<(), StoreFailure> {
        (**self).delete(thing, name)
    }

    fn names(&self, thing: &str) -> Result<Vec<String>, StoreFailure> {
        (**self).names(thing)
    }
}

/// Shadows in memory, for tests and for running without a disk.
#[derive(Debug, Default)]
pub struct MemoryShadowStore {
    /// thing -> shadow name ("" for the classic one) -> shadow.
    things: Mutex<HashMap<String, BTreeMap<String, StoredShadow>>>,
}

impl MemoryShadowStore {
    pub fn new() -> MemoryShadowStore {
        MemoryShadowStore::default()
    }
}

impl ShadowStore for MemoryShadowStore {
    fn load(&self, thing: &str, name: Option<&str>) -> Result<Option<StoredShadow>, StoreFailure> {
        let things = self.things.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(things
            .get(thing)
            .and_then(|shadows| shadows.get(name.unwrap_or("")))
            .cloned())
    }

    fn save(
        &self,
        thing: &str,
        name: Option<&str>,
        shadow: &StoredShadow,
    ) -> Result<(), StoreFailure> {
        let mut things = self.things.lock().unwrap_or_else(PoisonError::into_inner);
        let shadows = match things.get_mut(thing) {
            Some(shadows) => shadows,
            None => things.entry(thing.to_owned()).or_default(),
        };
        shadows.insert(name.unwrap_or("").to_owned(), shadow.clone());
        Ok(())
    }

    fn delete(&self, thing: &str, name: Option<&str>) -> Result<(), StoreFailure> {
        let mut things = self.things.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shadows) = things.get_mut(thing) {
            shadows.remove(name.unwrap_or(""));
            if shadows.is_empty() {
                things.remove(thing);
            }
        }
        Ok(())
    }

    fn names(&self, thing: &str) -> Result<Vec<String>, StoreFailure> {
        let things = self.things.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(things.get(thing).map_or_else(Vec::new, |shadows| {
            shadows
                .iter()
                .filter(|(name, s)| !name.is_empty() && s.data.is_some())
                .map(|(name, _)| name.clone())
                .collect()
        }))
    }
}
