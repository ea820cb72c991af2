//! The router: the live sessions by client id, the subscription index and
//! the retained messages, and the fan-out of each message to the sessions
//! that should receive it.
//!
//! Matching walks a topic trie ([`TopicTree`]), so the cost of a publish
//! grows with the number of matching subscriptions, not with the number
//! of devices. Locks are never nested the other way round: the index lock
//! is released before any session lock is taken.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use civitas_mqtt::QoS;
use civitas_mqtt::topic::{matches, parse_shared};
use civitas_mqtt::tree::TopicTree;
use civitas_store::{Op, StoredMessage};
use parking_lot::{Mutex, RwLock};

use crate::clock::Clock;
use crate::config::Limits;
use crate::session::{Delivery, SessionRef, SubscriptionState};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubKey {
    pub session: u64,
    pub group: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
pub struct SubEntry {
    pub session: SessionRef,
    pub client_id: Arc<str>,
    pub state: SubscriptionState,
}

/// A shared subscription group: its name and its (plain) filter.
type GroupKey = (Arc<str>, String);

pub struct Router {
    pub sessions: Mutex<HashMap<Arc<str>, SessionRef>>,
    subscriptions: RwLock<TopicTree<SubKey, SubEntry>>,
    retained: RwLock<HashMap<String, Arc<StoredMessage>>>,
    shared_cursor: Mutex<HashMap<GroupKey, usize>>,
    next_session_id: AtomicU64,
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
    /// Told of every routed message (the rules engine).
    pub(crate) observers: Vec<Arc<dyn crate::handle::MessageObserver>>,
}

/// What routing one message did.
#[derive(Debug, Default)]
pub struct Routed {
    /// Store operations that make the deliveries durable.
    pub ops: Vec<Op>,
    /// How many sessions received it (MQTT 5 "no matching subscribers").
    pub receivers: usize,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("sessions", &self.sessions.lock().len())
            .field("subscriptions", &self.subscriptions.read().len())
            .field("retained", &self.retained.read().len())
            .finish_non_exhaustive()
    }
}

impl Router {
    pub fn new(limits: Limits, clock: Arc<dyn Clock>) -> Self {
        Router {
            sessions: Mutex::new(HashMap::new()),
            subscriptions: RwLock::new(TopicTree::new()),
            retained: RwLock::new(HashMap::new()),
            shared_cursor: Mutex::new(HashMap::new()),
            next_session_id: AtomicU64::new(1),
            limits,
            clock,
            observers: Vec::new(),
        }
    }

    pub fn new_session_id(&self) -> u64 {
        self.next_session_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Add or replace a subscription of `session`. `full_filter` may be a
    /// `$share/group/filter`. Returns whether it already existed.
    pub fn subscribe(
        &self,
        session: &SessionRef,
        full_filter: &str,
        state: SubscriptionState,
    ) -> bool {
        let (id, client_id) = {
            let mut s = session.lock();
            s.subscriptions
                .insert(full_filter.to_string(), state.clone());
            (s.id, s.client_id.clone())
        };
        let (group, filter) = split_shared(full_filter);
        let key = SubKey { session: id, group };
        let entry = SubEntry {
            session: session.clone(),
            client_id,
            state,
        };
        self.subscriptions
            .write()
            .insert(filter, key, entry)
            .is_some()
    }

    /// Remove one subscription. Returns whether it existed.
    pub fn unsubscribe(&self, session: &SessionRef, full_filter: &str) -> bool {
        let id = {
            let mut s = session.lock();
            s.subscriptions.remove(full_filter);
            s.id
        };
        let (group, filter) = split_shared(full_filter);
        self.subscriptions
            .write()
            .remove(filter, &SubKey { session: id, group })
            .is_some()
    }

    /// Remove every subscription of a session from the index.
    pub fn unindex_session(&self, session: &SessionRef) {
        let (id, filters): (u64, Vec<String>) = {
            let s = session.lock();
            (s.id, s.subscriptions.keys().cloned().collect())
        };
        let mut tree = self.subscriptions.write();
        for full in &filters {
            let (group, filter) = split_shared(full);
            tree.remove(filter, &SubKey { session: id, group });
        }
    }

    /// Deliver `message` to every matching session. `publisher` is the
    /// client id of the sender, for No Local.
    pub fn route(&self, message: &Arc<StoredMessage>, publisher: Option<&str>) -> Routed {
        for observer in &self.observers {
            observer.observe(message, publisher);
        }
        struct Target {
            session: SessionRef,
            qos: QoS,
            identifiers: Vec<u32>,
            retain_as_published: bool,
        }
        let mut targets: HashMap<u64, Target> = HashMap::new();
        let mut groups: HashMap<GroupKey, Vec<(u64, SubEntry)>> = HashMap::new();
        {
            let tree = self.subscriptions.read();
            tree.for_each_match(&message.topic, |filter, key, entry| match &key.group {
                None => {
                    if entry.state.options.no_local && publisher == Some(&*entry.client_id) {
                        return;
                    }
                    let t = targets.entry(key.session).or_insert_with(|| Target {
                        session: entry.session.clone(),
                        qos: QoS::AtMostOnce,
                        identifiers: Vec::new(),
                        retain_as_published: false,
                    });
                    // Overlapping subscriptions of one session give one
                    // copy at the highest granted QoS, carrying every
                    // matching subscription identifier.
                    t.qos = t.qos.max(entry.state.options.qos);
                    t.identifiers.extend(entry.state.identifier);
                    t.retain_as_published |= entry.state.options.retain_as_published;
                }
                Some(group) => groups
                    .entry((group.clone(), filter.to_string()))
                    .or_default()
                    .push((key.session, entry.clone())),
            });
        }
        let mut shared: Vec<(SessionRef, QoS, Vec<u32>)> = Vec::new();
        if !groups.is_empty() {
            let mut cursors = self.shared_cursor.lock();
            for (group_key, mut members) in groups {
                members.sort_by_key(|(id, _)| *id);
                let cursor = cursors.entry(group_key).or_insert(0);
                // Prefer a member that is connected now; a disconnected
                // persistent member only gets the message if no one is.
                let n = members.len();
                let start = *cursor % n;
                let pick = (0..n)
                    .map(|i| (start + i) % n)
                    .find(|&i| members[i].1.session.lock().attachment.is_some())
                    .unwrap_or(start);
                *cursor = pick + 1;
                let (_, entry) = &members[pick];
                shared.push((
                    entry.session.clone(),
                    entry.state.options.qos,
                    entry.state.identifier.into_iter().collect(),
                ));
            }
        }

        let mut routed = Routed::default();
        let max_queued = self.limits.max_queued_messages;
        let deliver = |session: &SessionRef,
                       granted: QoS,
                       identifiers: Vec<u32>,
                       retain: bool,
                       routed: &mut Routed| {
            let mut s = session.lock();
            if !s.grants.may_receive(&message.topic) {
                return;
            }
            let seq = s.next_seq();
            let delivery = Delivery {
                seq,
                message: message.clone(),
                qos: message.qos.min(granted),
                retain,
                subscription_identifiers: identifiers,
            };
            routed.receivers += 1;
            if let Some(op) = s.enqueue(delivery, max_queued) {
                routed.ops.push(op);
            }
        };
        for t in targets.into_values() {
            let retain = t.retain_as_published && message.retain;
            deliver(&t.session, t.qos, t.identifiers, retain, &mut routed);
        }
        for (session, qos, ids) in shared {
            deliver(&session, qos, ids, false, &mut routed);
        }
        routed
    }

    /// Apply a retained PUBLISH: an empty payload clears the topic.
    pub fn retain(&self, message: &Arc<StoredMessage>) -> Op {
        let mut retained = self.retained.write();
        if message.payload.is_empty() {
            retained.remove(&message.topic);
            Op::DeleteRetained {
                topic: message.topic.clone(),
            }
        } else {
            retained.insert(message.topic.clone(), message.clone());
            Op::PutRetained {
                topic: message.topic.clone(),
                message: (**message).clone(),
            }
        }
    }

    /// Load a retained message at start.
    pub fn restore_retained(&self, message: StoredMessage) {
        self.retained
            .write()
            .insert(message.topic.clone(), Arc::new(message));
    }

    /// Retained messages matching a (plain) filter that have not expired.
    pub fn retained_matching(&self, filter: &str) -> Vec<Arc<StoredMessage>> {
        let now = self.clock.now_ms();
        let retained = self.retained.read();
        let mut out: Vec<Arc<StoredMessage>> = retained
            .values()
            .filter(|m| matches(filter, &m.topic))
            .filter(|m| m.expires_at_ms.is_none_or(|t| t > now))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        out
    }
}

/// Split `$share/group/filter` into its group and plain filter.
pub fn split_shared(full: &str) -> (Option<Arc<str>>, &str) {
    match parse_shared(full) {
        Ok(Some(shared)) => (Some(Arc::from(shared.group)), shared.filter),
        _ => (None, full),
    }
}
