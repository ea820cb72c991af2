//! The running rules engine.
//!
//! The broker calls the [`observer`](RulesEngine::observer) for every
//! message it routes, on the publisher's task. The observer looks the
//! topic up in a topic tree of the enabled rules' FROM filters (no scan
//! over rules), and offers the message to each matching rule's bounded
//! queue without waiting: a full queue drops the message for that rule,
//! counts it (`rules_dropped_total`) and raises the alarm
//! `rules.queue_overflow.{rule}`, which clears once the rule has caught up
//! and gone a quiet period without overflowing. Each rule has its own
//! worker task that evaluates the SQL and runs the actions, up to
//! `max_in_flight` messages at a time (so, as in AWS, a rule's actions are
//! not ordered across messages); webhooks deliver from queues of their
//! own. Nothing a rule or an action does can hold up a client.
//!
//! Basic Ingest (`$aws/rules/{rule}/…`) reaches the named rule through
//! the [`basic_ingest`](RulesEngine::basic_ingest) topic service, which
//! consumes those messages: no subscriber sees them. The rule runs
//! whatever its FROM filter says, as in AWS.
//!
//! Creating, replacing, enabling, disabling and deleting a rule rebuilds
//! the set of live rules and swaps it in: the next message sees the
//! change. A rule that did not change keeps its queue and worker; a
//! replaced or removed one finishes what it had queued.

mod evaluate;
mod ingest;
mod live;
mod perform;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use civitas_broker::{BrokerHandle, MessageObserver, TopicService};
use civitas_monitor::{Counter, Monitor};
use parking_lot::Mutex;
use tokio::runtime::Handle;

use crate::catalog::{RuleCatalog, RuleInfo};
use crate::document::RuleDocument;
use crate::error::RulesError;
use crate::message::RuleMessage;
use crate::shadows::ShadowAccess;
use crate::signing::DeviceKeys;
use crate::sink::TelemetrySink;

pub(crate) use evaluate::{Evaluation, evaluate, prepare_error_action};
pub(crate) use ingest::ingest_rule_name;
pub use live::store_lag_buckets;
use live::{LiveRule, RuleSet};

/// What actions act on. Missing pieces make the actions that need them
/// fail (and go to the error action), nothing else.
#[derive(Debug, Clone, Default)]
pub struct ActionDeps {
    /// Republishes and shadow replies go out through it (see
    /// [`RulesEngine::attach_broker`] for a broker built later).
    pub broker: BrokerHandle,
    /// For the `shadow` action and `get_thing_shadow()`.
    pub shadows: Option<Arc<dyn ShadowAccess>>,
    /// For the `store` action.
    pub telemetry: Option<Arc<dyn TelemetrySink>>,
    /// What device signatures are verified against before the `store`
    /// action keeps a signed reading; without it a signed reading is
    /// refused (it cannot be verified), an unsigned one stored as usual.
    pub device_keys: Option<Arc<dyn DeviceKeys>>,
    /// Metrics and alarms: the engine's own, and the `cloudwatchMetric`
    /// and `cloudwatchAlarm` actions'.
    pub monitor: Monitor,
}

/// Tuning of the engine.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// Messages waiting per rule before new ones are dropped.
    pub queue_capacity: usize,
    /// Messages one rule works on at once. A `store` action holds its
    /// place until the reading is durable, and the telemetry store commits
    /// whatever is waiting together: the window must cover a commit's
    /// worth of readings at the rate a city sends them (10,000 a second
    /// and a commit of a few tens of milliseconds: a few hundred).
    pub max_in_flight: usize,
    /// How long a rule must go without overflowing, its queue drained,
    /// before its overflow alarm clears.
    pub overflow_clear_after: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            queue_capacity: 4096,
            max_in_flight: 256,
            overflow_clear_after: Duration::from_secs(60),
        }
    }
}

/// The rules engine: the catalog of rules and, when started, the live
/// set that messages run through. Cheap to clone.
#[derive(Clone)]
pub struct RulesEngine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    catalog: RuleCatalog,
    deps: ActionDeps,
    options: RuntimeOptions,
    live: ArcSwap<RuleSet>,
    /// The broker actions publish through, shared with every live rule
    /// so that it can be attached after they start.
    broker: Arc<ArcSwap<BrokerHandle>>,
    /// Where rule workers run; `None` for an engine that only
    /// administers rules (the CLI without a server).
    runtime: Option<Handle>,
    /// One rebuild of the live set at a time.
    install: Mutex<()>,
    ingest_unmatched: Counter,
}

impl std::fmt::Debug for RulesEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesEngine")
            .field("catalog", &self.inner.catalog)
            .field("running", &self.inner.runtime.is_some())
            .finish()
    }
}

impl RulesEngine {
    /// Starts the engine on the current Tokio runtime with every enabled
    /// rule of `catalog` live. Outside a runtime the engine only
    /// administers rules, as [`offline`](Self::offline).
    pub fn start(catalog: RuleCatalog, deps: ActionDeps, options: RuntimeOptions) -> RulesEngine {
        let runtime = Handle::try_current().ok();
        if runtime.is_none() {
            tracing::error!("rules engine started outside a Tokio runtime: no rule will run");
        }
        let engine = RulesEngine::build(catalog, deps, options, runtime);
        engine.reinstall();
        engine
    }

    /// An engine that administers and tests rules but runs none.
    pub fn offline(catalog: RuleCatalog, deps: ActionDeps) -> RulesEngine {
        RulesEngine::build(catalog, deps, RuntimeOptions::default(), None)
    }

    fn build(
        catalog: RuleCatalog,
        deps: ActionDeps,
        options: RuntimeOptions,
        runtime: Option<Handle>,
    ) -> RulesEngine {
        let ingest_unmatched = deps
            .monitor
            .counter("rules_basic_ingest_unmatched_total", &[]);
        let broker = Arc::new(ArcSwap::from_pointee(deps.broker.clone()));
        RulesEngine {
            inner: Arc::new(Inner {
                catalog,
                deps,
                broker,
                options: RuntimeOptions {
                    queue_capacity: options.queue_capacity.max(1),
                    max_in_flight: options.max_in_flight.max(1),
                    ..options
                },
                live: ArcSwap::from_pointee(RuleSet::default()),
                runtime,
                install: Mutex::new(()),
                ingest_unmatched,
            }),
        }
    }

    pub fn catalog(&self) -> &RuleCatalog {
        &self.inner.catalog
    }

    pub fn deps(&self) -> &ActionDeps {
        &self.inner.deps
    }

    /// Publishes through `broker` from now on: for a broker built after
    /// the engine (whose observer it needs first).
    pub fn attach_broker(&self, broker: BrokerHandle) {
        self.inner.broker.store(Arc::new(broker));
    }

    /// For `Broker::with_observer`: feeds every routed message to the
    /// rules whose FROM filter matches it.
    pub fn observer(&self) -> Arc<dyn MessageObserver> {
        Arc::new(ingest::Observer::new(&self.inner))
    }

    /// For `Broker::with_service`: takes Basic Ingest messages
    /// (`$aws/rules/{rule}/…`) to their rule and away from subscribers.
    pub fn basic_ingest(&self) -> Arc<dyn TopicService> {
        Arc::new(ingest::BasicIngest::new(&self.inner))
    }

    /// Adds a rule; it is live when this returns.
    pub fn create(&self, name: &str, document: RuleDocument) -> Result<RuleInfo, RulesError> {
        let info = self.inner.catalog.create(name, document)?;
        self.reinstall();
        Ok(info)
    }

    /// Replaces a rule's document; the new one is live when this returns.
    pub fn replace(&self, name: &str, document: RuleDocument) -> Result<RuleInfo, RulesError> {
        let info = self.inner.catalog.replace(name, document)?;
        self.reinstall();
        Ok(info)
    }

    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<RuleInfo, RulesError> {
        let info = self.inner.catalog.set_enabled(name, enabled)?;
        self.reinstall();
        Ok(info)
    }

    pub fn delete(&self, name: &str) -> Result<(), RulesError> {
        self.inner.catalog.delete(name)?;
        self.reinstall();
        Ok(())
    }

    /// Runs `message` through the rule `name` as Basic Ingest would;
    /// false when no enabled rule has that name.
    pub fn ingest(&self, name: &str, message: RuleMessage) -> bool {
        self.inner.ingest(name, message)
    }

    /// Names of the rules live right now.
    pub fn live_rules(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.live.load().rules.keys().cloned().collect();
        names.sort();
        names
    }

    /// Brings the live set in line with the catalog.
    fn reinstall(&self) {
        let Some(runtime) = &self.inner.runtime else {
            return;
        };
        let _one_at_a_time = self.inner.install.lock();
        let _entered = runtime.enter();
        let current = self.inner.live.load_full();
        let mut next = RuleSet::default();
        for rule in self.inner.catalog.runnable() {
            let live = match current.rules.get(&rule.name) {
                Some(l) if Arc::ptr_eq(&l.runtime.rule, &rule) => l.clone(),
                _ => Arc::new(LiveRule::start(
                    rule,
                    self.inner.deps.clone(),
                    self.inner.broker.clone(),
                    self.inner.options,
                )),
            };
            next.insert(live);
        }
        self.inner.live.store(Arc::new(next));
    }
}

impl Inner {
    fn ingest(&self, name: &str, message: RuleMessage) -> bool {
        let set = self.live.load();
        match set.rules.get(name) {
            Some(rule) => {
                rule.offer(&Arc::new(message));
                true
            }
            None => {
                self.ingest_unmatched.inc();
                false
            }
        }
    }
}
