//! The AWS IoT Device Shadow service for civitas, wire-compatible with
//! AWS so that a device written with an AWS IoT Device SDK works unchanged.
//!
//! The service is transport-free: the broker hands it every PUBLISH on a
//! `$aws/things/{thing}/shadow[/name/{shadow}]/{get,update,delete}` topic
//! through [`ShadowService::handle_mqtt`] and publishes the replies it
//! returns (`/accepted` or `/rejected`, then `/update/delta` and
//! `/update/documents`); the HTTPS API calls [`ShadowService::get`],
//! [`ShadowService::update`] and [`ShadowService::delete`]. Authorization
//! is the caller's business.
//!
//! ```
//! use civitas_shadow::{MemoryShadowStore, Requester, ShadowService, SystemClock};
//!
//! let shadows = ShadowService::new(MemoryShadowStore::new(), SystemClock);
//! let device = Requester::new("lamp-1");
//! let replies = shadows
//!     .handle_mqtt(
//!         "$aws/things/lamp-1/shadow/update",
//!         br#"{"state":{"desired":{"color":"red"}},"clientToken":"t1"}"#,
//!         &device,
//!     )
//!     .expect("a shadow topic");
//! let topics: Vec<_> = replies.iter().map(|r| r.topic.as_str()).collect();
//! assert_eq!(
//!     topics,
//!     [
//!         "$aws/things/lamp-1/shadow/update/accepted",
//!         "$aws/things/lamp-1/shadow/update/delta",
//!         "$aws/things/lamp-1/shadow/update/documents",
//!     ]
//! );
//! assert!(shadows.handle_mqtt("city/lamp-1/telemetry", b"{}", &device).is_none());
//! ```
//!
//! Semantics follow the AWS developer guide: partial merge, `null`
//! deletes a key and `"desired": null` a whole section, arrays replace
//! whole, the delta keeps the path to each differing leaf, metadata
//! mirrors the state with `{"timestamp": secs}` leaves, the version grows
//! by one per accepted update and a stale `version` gets 409. A deleted
//! shadow keeps its version counter for 48 hours, as AWS does. Error
//! documents carry AWS's codes and messages.
//!
//! AWS refuses a connection's eleventh request in flight with 429. Either
//! `handle_mqtt` counts each call while it runs (enough for a broker that
//! calls it concurrently), or the broker counts a request from the moment
//! it accepts it: `begin_request` gives a ticket (or `None`, then
//! `reject_too_many` gives the 429 reply) and `handle_admitted` runs the
//! request and releases the ticket.
//!
//! [`ShadowTopicService`] does the latter inside the civitas broker: it
//! counts each request as it is queued and handles it in order behind the
//! connection's earlier requests.
//!
//! Calls block: an update returns once the store has made it durable. With
//! the redb store (`impl ShadowStore for civitas_store::Store`) writes go
//! through the store's group commit, so concurrent updates share fsyncs;
//! see `persistent` for why. The broker should call `handle_mqtt` from a
//! blocking-capable thread (`spawn_blocking` or a worker pool).
//!
//! Layout: `topic` parses topics and names, `request` validates payloads,
//! `state` merges and diffs state trees, `document` holds what a shadow
//! stores and the get/error documents, `outcome` the update and delete
//! replies, `service` the operations, `store` the storage trait and the
//! in-memory store, `persistent` the redb one, `clock` time,
//! `mqtt_service` the broker's topic service.

mod clock;
mod document;
mod error;
mod mqtt_service;
mod outcome;
mod persistent;
mod request;
mod service;
mod state;
mod store;
mod topic;

pub use clock::{Clock, ManualClock, SystemClock};
pub use document::{MalformedDocument, ShadowData, ShadowDocument, StoredShadow, error_document};
pub use error::{ShadowError, StoreFailure};
pub use mqtt_service::ShadowTopicService;
pub use outcome::{DeleteOutcome, Reply, UpdateOutcome};
pub use request::MAX_CLIENT_TOKEN_LEN;
pub use service::{InFlight, Requester, ShadowLimits, ShadowService};
pub use store::{MemoryShadowStore, ShadowStore};
pub use topic::{
    MAX_SHADOW_NAME_LEN, MAX_THING_NAME_LEN, ShadowOp, ShadowTopic, prefix, validate_shadow_name,
    validate_thing_name,
};

// The broker and the HTTPS API share one service across threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<ShadowService>();
    send_sync::<ShadowError>();
    // A broker counts a request in when it queues it and moves the ticket
    // into the task that runs it.
    send_sync::<InFlight>();
};
