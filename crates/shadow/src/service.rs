//! `ShadowService`: the get/update/delete operations, reached over MQTT
//! topics (`handle_mqtt`) or called directly (the HTTPS API).
//!
//! Requests on one shadow are serialized by a striped lock held from the
//! load until the store has made the result durable, so each update sees
//! the previous one and versions never fork. Requests on different
//! shadows run in parallel. Every call may block on the store (a durable
//! write is an fsync): call it from a blocking-capable thread.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::clock::Clock;
use crate::document::{ShadowDocument, StoredShadow, error_document};
use crate::error::ShadowError;
use crate::outcome::{DeleteOutcome, Reply, UpdateOutcome};
use crate::request::{self, UpdateRequest};
use crate::store::ShadowStore;
use crate::topic::{self, ShadowOp, ShadowTopic};

/// The limits AWS IoT applies, adjustable for a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowLimits {
    /// The largest `desired` + `reported` (serialized, metadata excluded)
    /// an update may leave. AWS: 8 KiB.
    pub max_state_bytes: usize,
    /// The largest request payload read at all. AWS: 128 KiB (its MQTT
    /// message limit).
    pub max_request_bytes: usize,
    /// Levels of objects and arrays allowed in `desired` and `reported`,
    /// each counted from its own top object. AWS: 6.
    pub max_depth: usize,
    /// Requests one connection may have in flight; the next is refused
    /// with 429. AWS: 10.
    pub max_in_flight: usize,
    /// How long a deleted shadow's version counter is kept: a shadow
    /// created again within it continues the count, later it starts over.
    /// AWS: 48 hours.
    pub deleted_version_retention: Duration,
}

impl Default for ShadowLimits {
    fn default() -> ShadowLimits {
        ShadowLimits {
            max_state_bytes: 8 * 1024,
            max_request_bytes: 128 * 1024,
            max_depth: 6,
            max_in_flight: 10,
            deleted_version_retention: Duration::from_secs(48 * 3600),
        }
    }
}

/// Who sent an MQTT request. The client id keys the in-flight count: MQTT
/// allows one connection per client id, so it names the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub client_id: String,
}

impl Requester {
    pub fn new(client_id: impl Into<String>) -> Requester {
        Requester {
            client_id: client_id.into(),
        }
    }
}

/// The device shadow service. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct ShadowService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Box<dyn ShadowStore>,
    clock: Box<dyn Clock>,
    limits: ShadowLimits,
    locks: Box<[Mutex<()>]>,
    in_flight: Mutex<HashMap<String, usize>>,
}

/// Enough stripes that unrelated shadows rarely wait on each other while
/// one of them is being written.
const LOCK_STRIPES: usize = 1024;

impl std::fmt::Debug for ShadowService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowService")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl ShadowService {
    /// A service with AWS's limits.
    pub fn new(store: impl ShadowStore + 'static, clock: impl Clock + 'static) -> ShadowService {
        ShadowService::with_limits(store, clock, ShadowLimits::default())
    }

    pub fn with_limits(
        store: impl ShadowStore + 'static,
        clock: impl Clock + 'static,
        limits: ShadowLimits,
    ) -> ShadowService {
        ShadowService {
            inner: Arc::new(Inner {
                store: Box::new(store),
                clock: Box::new(clock),
                limits,
                locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn limits(&self) -> &ShadowLimits {
        &self.inner.limits
    }

    /// Handles a PUBLISH on a shadow request topic and returns the
    /// messages to publish in reply, in order; `None` if `topic` is not a
    /// shadow request topic (the broker then routes it as usual).
    ///
    /// Counts the request in flight while it runs: a call made while the
    /// same client already has `max_in_flight` requests counted is answered
    /// with 429 on `/rejected`. A broker that queues a connection's requests
    /// and handles them one at a time should count them when queued
    /// instead, with `begin_request` and `handle_admitted`.
    pub fn handle_mqtt(
        &self,
        topic: &str,
        payload: &[u8],
        requester: &Requester,
    ) -> Option<Vec<Reply>> {
        ShadowTopic::parse(topic)?;
        match self.begin_request(requester) {
            Some(ticket) => self.handle_admitted(topic, payload, ticket),
            None => self.reject_too_many(topic, payload),
        }
    }

    /// Counts one request of `requester` in flight, from now until the
    /// returned ticket is dropped (AWS: "started but not yet completed").
    /// `None` when the client is at `max_in_flight`: answer the request
    /// with `reject_too_many` instead.
    pub fn begin_request(&self, requester: &Requester) -> Option<InFlight> {
        let client_id = &requester.client_id;
        let mut map = lock(&self.inner.in_flight);
        match map.get_mut(client_id) {
            Some(n) if *n >= self.inner.limits.max_in_flight => return None,
            Some(n) => *n += 1,
            None if self.inner.limits.max_in_flight == 0 => return None,
            None => {
                map.insert(client_id.clone(), 1);
            }
        }
        Some(InFlight {
            inner: Arc::clone(&self.inner),
            client_id: client_id.clone(),
        })
    }

    /// `handle_mqtt` for a request already counted by `begin_request`; the
    /// count drops when this returns.
    pub fn handle_admitted(
        &self,
        topic: &str,
        payload: &[u8],
        ticket: InFlight,
    ) -> Option<Vec<Reply>> {
        let replies = self.handle_counted(topic, payload);
        drop(ticket);
        replies
    }

    /// `handle_admitted` for a caller that keeps the `begin_request`
    /// ticket itself and drops it once this returns (a broker whose queue
    /// owns the ticket). Not counted otherwise: call it only with a ticket
    /// held.
    pub fn handle_counted(&self, topic: &str, payload: &[u8]) -> Option<Vec<Reply>> {
        let request = ShadowTopic::parse(topic)?;
        Some(self.dispatch(&request, payload))
    }

    /// The 429 rejection of a request `begin_request` refused; `None` if
    /// `topic` is not a shadow request topic.
    pub fn reject_too_many(&self, topic: &str, payload: &[u8]) -> Option<Vec<Reply>> {
        let request = ShadowTopic::parse(topic)?;
        let token = request::peek_client_token(payload, &self.inner.limits);
        let e = ShadowError::TooManyRequests;
        Some(vec![self.rejection(
            &request.request_topic(),
            &e,
            token.as_deref(),
        )])
    }

    fn dispatch(&self, request: &ShadowTopic<'_>, payload: &[u8]) -> Vec<Reply> {
        let request_topic = request.request_topic();
        let (thing, name) = (request.thing, request.name);
        let limits = &self.inner.limits;
        match request.op {
            ShadowOp::Get => {
                let (token, parsed) = request::parse_get(payload, limits);
                let result = topic_names(thing, name)
                    .and(parsed)
                    .and_then(|()| self.read(thing, name));
                match result {
                    Ok(doc) => vec![Reply::json(
                        format!("{request_topic}/accepted"),
                        &doc.to_json(token.as_deref()),
                    )],
                    Err(e) => vec![self.rejection(&request_topic, &e, token.as_deref())],
                }
            }
            ShadowOp::Update => {
                let (token, result) = self.update_request(thing, name, payload);
                match result {
                    Ok(outcome) => outcome.replies(),
                    Err(e) => vec![self.rejection(&request_topic, &e, token.as_deref())],
                }
            }
            ShadowOp::Delete => {
                // AWS ignores a delete's payload but for its client token.
                let token = request::peek_client_token(payload, limits);
                match self.remove(thing, name, token.as_deref()) {
                    Ok(outcome) => outcome.replies(),
                    Err(e) => vec![self.rejection(&request_topic, &e, token.as_deref())],
                }
            }
        }
    }

    /// The current document (HTTPS GetThingShadow). `name` is `None` for
    /// the classic shadow.
    pub fn get(&self, thing: &str, name: Option<&str>) -> Result<ShadowDocument, ShadowError> {
        topic_names(thing, name)?;
        self.read(thing, name)
    }

    /// Applies an update request document (HTTPS UpdateThingShadow). The
    /// outcome's `replies()` are what AWS also publishes over MQTT.
    pub fn update(
        &self,
        thing: &str,
        name: Option<&str>,
        request_json: &[u8],
    ) -> Result<UpdateOutcome, ShadowError> {
        self.update_request(thing, name, request_json).1
    }

    /// Deletes the shadow, keeping its version counter (HTTPS
    /// DeleteThingShadow).
    pub fn delete(&self, thing: &str, name: Option<&str>) -> Result<DeleteOutcome, ShadowError> {
        self.remove(thing, name, None)
    }

    /// The thing's named shadows that exist (HTTPS
    /// ListNamedShadowsForThing), ascending.
    pub fn list_named_shadows(&self, thing: &str) -> Result<Vec<String>, ShadowError> {
        topic::validate_thing_name(thing)?;
        self.inner
            .store
            .names(thing)
            .map_err(|e| self.store_failed(thing, None, e))
    }

    /// How many MQTT requests of `client_id` are being handled right now.
    pub fn in_flight(&self, client_id: &str) -> usize {
        lock(&self.inner.in_flight)
            .get(client_id)
            .copied()
            .unwrap_or(0)
    }

    fn read(&self, thing: &str, name: Option<&str>) -> Result<ShadowDocument, ShadowError> {
        let now_ms = self.inner.clock.now_ms();
        match self.load(thing, name)? {
            Some(StoredShadow {
                version,
                data: Some(data),
                ..
            }) => Ok(ShadowDocument {
                version,
                timestamp: now_ms / 1000,
                data,
            }),
            _ => Err(not_found(thing, name)),
        }
    }

    fn update_request(
        &self,
        thing: &str,
        name: Option<&str>,
        payload: &[u8],
    ) -> (Option<String>, Result<UpdateOutcome, ShadowError>) {
        let (token, parsed) = request::parse_update(payload, &self.inner.limits);
        let result = topic_names(thing, name)
            .and(parsed)
            .and_then(|request| self.apply(thing, name, &request, token.as_deref()));
        (token, result)
    }

    fn apply(
        &self,
        thing: &str,
        name: Option<&str>,
        request: &UpdateRequest,
        token: Option<&str>,
    ) -> Result<UpdateOutcome, ShadowError> {
        let _shadow = self.lock_shadow(thing, name);
        let now_ms = self.inner.clock.now_ms();
        let ts = now_ms / 1000;
        let (counter, previous) = match self.load(thing, name)? {
            None => (0, None),
            Some(StoredShadow {
                version,
                data: Some(data),
                ..
            }) => (version, Some(data)),
            Some(StoredShadow {
                version,
                updated_at_ms,
                data: None,
            }) => {
                let age = Duration::from_millis(now_ms.saturating_sub(updated_at_ms));
                let kept = age <= self.inner.limits.deleted_version_retention;
                (if kept { version } else { 0 }, None)
            }
        };
        if request.version.is_some_and(|v| v != counter) {
            return Err(ShadowError::VersionConflict);
        }
        let mut current = previous.clone().unwrap_or_default();
        current.apply(request, ts);
        if current.state_size() > self.inner.limits.max_state_bytes {
            return Err(ShadowError::PayloadTooLarge);
        }
        let version = counter.saturating_add(1);
        // Built before the save so that the new state can move into it.
        let outcome = UpdateOutcome::new(
            format!("{}/update", topic::prefix(thing, name)),
            previous.as_ref().map(|p| (p, counter)),
            &current,
            version,
            request,
            token,
            ts,
        );
        let stored = StoredShadow {
            version,
            updated_at_ms: now_ms,
            data: Some(current),
        };
        self.save(thing, name, &stored)?;
        Ok(outcome)
    }

    fn remove(
        &self,
        thing: &str,
        name: Option<&str>,
        token: Option<&str>,
    ) -> Result<DeleteOutcome, ShadowError> {
        topic_names(thing, name)?;
        let _shadow = self.lock_shadow(thing, name);
        let now_ms = self.inner.clock.now_ms();
        let version = match self.load(thing, name)? {
            Some(StoredShadow {
                version,
                data: Some(_),
                ..
            }) => version,
            _ => return Err(not_found(thing, name)),
        };
        let tombstone = StoredShadow {
            version,
            updated_at_ms: now_ms,
            data: None,
        };
        self.save(thing, name, &tombstone)?;
        Ok(DeleteOutcome::new(
            format!("{}/delete", topic::prefix(thing, name)),
            version,
            token,
            now_ms / 1000,
        ))
    }

    fn load(&self, thing: &str, name: Option<&str>) -> Result<Option<StoredShadow>, ShadowError> {
        self.inner
            .store
            .load(thing, name)
            .map_err(|e| self.store_failed(thing, name, e))
    }

    fn save(
        &self,
        thing: &str,
        name: Option<&str>,
        shadow: &StoredShadow,
    ) -> Result<(), ShadowError> {
        self.inner
            .store
            .save(thing, name, shadow)
            .map_err(|e| self.store_failed(thing, name, e))
    }

    fn store_failed(
        &self,
        thing: &str,
        name: Option<&str>,
        e: crate::error::StoreFailure,
    ) -> ShadowError {
        tracing::error!(thing, shadow = name, error = %e, "shadow store failed");
        ShadowError::internal(e)
    }

    fn rejection(&self, request_topic: &str, e: &ShadowError, token: Option<&str>) -> Reply {
        let ts = self.inner.clock.now_ms() / 1000;
        Reply::json(
            format!("{request_topic}/rejected"),
            &error_document(e, token, ts),
        )
    }

    fn lock_shadow(&self, thing: &str, name: Option<&str>) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        (thing, name).hash(&mut h);
        let stripe = (h.finish() % LOCK_STRIPES as u64) as usize;
        lock(&self.inner.locks[stripe])
    }
}

/// A request counted against its client's in-flight limit until dropped.
/// Owns what it needs, so a broker can move it into the task that runs
/// the request.
pub struct InFlight {
    inner: Arc<Inner>,
    client_id: String,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = lock(&self.inner.in_flight);
        if let Some(n) = map.get_mut(&self.client_id) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.client_id);
            }
        }
    }
}

/// A poisoned lock only means another request panicked; the data it
/// guards (a count, or nothing) is still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn topic_names(thing: &str, name: Option<&str>) -> Result<(), ShadowError> {
    topic::validate_thing_name(thing)?;
    name.map_or(Ok(()), topic::validate_shadow_name)
}

/// AWS names a named shadow `thing~shadow` in its 404 message.
fn not_found(thing: &str, name: Option<&str>) -> ShadowError {
    ShadowError::NotFound(match name {
        None => thing.to_owned(),
        Some(name) => format!("{thing}~{name}"),
    })
}
