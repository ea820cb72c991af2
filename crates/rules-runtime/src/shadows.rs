//! Device shadows as the rules engine uses them: the `shadow` action
//! updates one, and `get_thing_shadow()` reads one. [`ShadowAccess`] is
//! implemented by the civitas shadow service; tests may use their own.

use civitas_rules::Json;
use civitas_shadow::{ShadowError, ShadowService};

/// A message the shadow service publishes after an update
/// (`/update/accepted`, `/update/delta`, `/update/documents`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowMessage {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Why a shadow operation failed, with the AWS error code when there is
/// one (400 for a bad document, 409 for a version conflict, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ShadowFailure {
    pub code: u16,
    pub message: String,
}

/// Shadow operations the rules engine needs. Blocking: they may wait for
/// the store, so the engine calls them on the blocking pool.
pub trait ShadowAccess: Send + Sync + std::fmt::Debug + 'static {
    /// Applies an update request document to the shadow (`shadow` is
    /// `None` for the classic one) and returns what to publish about it.
    fn update(
        &self,
        thing: &str,
        shadow: Option<&str>,
        request: &[u8],
    ) -> Result<Vec<ShadowMessage>, ShadowFailure>;

    /// The shadow's current document as a get returns it; `None` when
    /// there is none.
    fn get(&self, thing: &str, shadow: Option<&str>) -> Result<Option<Json>, ShadowFailure>;
}

fn failure(e: &ShadowError) -> ShadowFailure {
    ShadowFailure {
        code: e.code(),
        message: e.to_string(),
    }
}

impl ShadowAccess for ShadowService {
    fn update(
        &self,
        thing: &str,
        shadow: Option<&str>,
        request: &[u8],
    ) -> Result<Vec<ShadowMessage>, ShadowFailure> {
        let outcome =
            ShadowService::update(self, thing, shadow, request).map_err(|e| failure(&e))?;
        Ok(outcome
            .replies()
            .into_iter()
            .map(|r| ShadowMessage {
                topic: r.topic,
                payload: r.payload,
            })
            .collect())
    }

    fn get(&self, thing: &str, shadow: Option<&str>) -> Result<Option<Json>, ShadowFailure> {
        match ShadowService::get(self, thing, shadow) {
            Ok(doc) => Ok(Some(doc.to_json(None))),
            Err(ShadowError::NotFound(_)) => Ok(None),
            Err(e) => Err(failure(&e)),
        }
    }
}
