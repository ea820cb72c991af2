//! The live set of rules: a topic tree from FROM filters to rules, and
//! per rule its bounded queue, its worker, its webhook queues, its
//! metrics and its overflow alarm.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use civitas_broker::BrokerHandle;
use civitas_monitor::{Counter, Gauge, Histogram};
use civitas_mqtt::TopicTree;
use tokio::sync::{Semaphore, mpsc};

use super::{ActionDeps, RuntimeOptions};
use crate::document::ValidRule;
use crate::message::{RuleMessage, now_ms};
use crate::webhook::WebhookQueue;

/// The enabled rules, indexed by FROM filter and by name.
#[derive(Default)]
pub(crate) struct RuleSet {
    pub index: TopicTree<String, Arc<LiveRule>>,
    pub rules: HashMap<String, Arc<LiveRule>>,
}

impl RuleSet {
    pub(crate) fn insert(&mut self, rule: Arc<LiveRule>) {
        let name = rule.runtime.rule.name.clone();
        self.index.insert(
            rule.runtime.rule.sql.from_filter(),
            name.clone(),
            rule.clone(),
        );
        self.rules.insert(name, rule);
    }
}

/// A rule in the live set. Dropping the last reference closes its queue:
/// the worker finishes what is queued and stops.
pub(crate) struct LiveRule {
    pub runtime: Arc<RuleRuntime>,
    queue: mpsc::Sender<Arc<RuleMessage>>,
}

/// Everything a rule's worker needs.
pub(crate) struct RuleRuntime {
    pub rule: Arc<ValidRule>,
    pub deps: ActionDeps,
    /// Where republishes go; replaces `deps.broker`.
    pub broker: Arc<ArcSwap<BrokerHandle>>,
    /// One per action, `Some` for HTTP actions.
    pub webhooks: Vec<Option<WebhookQueue>>,
    pub error_webhook: Option<WebhookQueue>,
    pub metrics: RuleMetrics,
    /// Whether evaluation may read shadows (and so must not run on an
    /// async worker thread).
    pub reads_shadows: bool,
    overflow: Overflow,
    options: RuntimeOptions,
}

pub(crate) struct RuleMetrics {
    pub matched: Counter,
    pub dropped: Counter,
    pub executed: Counter,
    pub evaluation_errors: Counter,
    pub evaluation_seconds: Histogram,
    pub queued: Gauge,
    /// (success, failure) per action.
    pub actions: Vec<(Counter, Counter)>,
    pub error_action: (Counter, Counter),
    /// For rules with a `store` action (or error action).
    pub store: Option<StoreMetrics>,
}

/// How long a rule's stored readings took to become durable.
pub(crate) struct StoreMetrics {
    /// `rules_store_seconds`: the durable append alone.
    pub append_seconds: Histogram,
    /// `rules_store_lag_seconds`: from the readings' own timestamp to
    /// durable ([`STORE_LAG_BUCKETS`]).
    pub lag_seconds: Histogram,
}

/// Bounds of `rules_store_lag_seconds`: 20 per decade (each 12% above
/// the last, 3 significant digits) from 100 µs to a day, so that
/// quantiles of sub-millisecond ingest and of devices that report hours
/// late are both read to within a bucket's width.
pub fn store_lag_buckets() -> Vec<f64> {
    (-80..=100)
        .map(|k| 10f64.powf(f64::from(k) / 20.0))
        .map(|b| format!("{b:.2e}").parse().unwrap_or(b))
        .filter(|b| *b <= 86_400.0)
        .collect()
}

struct Overflow {
    alarm: String,
    raised: AtomicBool,
    last_ms: AtomicU64,
}

impl LiveRule {
    /// Sets the rule up and starts its worker on the current runtime.
    pub(crate) fn start(
        rule: Arc<ValidRule>,
        deps: ActionDeps,
        broker: Arc<ArcSwap<BrokerHandle>>,
        options: RuntimeOptions,
    ) -> Self {
        let name = rule.name.as_str();
        let m = &deps.monitor;
        let by_rule = [("rule", name)];
        let action_counters = |label: String| {
            let labels = [("rule", name), ("action", label.as_str())];
            (
                m.counter("rules_action_success_total", &labels),
                m.counter("rules_action_failure_total", &labels),
            )
        };
        let metrics = RuleMetrics {
            matched: m.counter("rules_matched_total", &by_rule),
            dropped: m.counter("rules_dropped_total", &by_rule),
            executed: m.counter("rules_executed_total", &by_rule),
            evaluation_errors: m.counter("rules_evaluation_errors_total", &by_rule),
            evaluation_seconds: m.histogram("rules_evaluation_seconds", &by_rule),
            queued: m.gauge("rules_queued", &by_rule),
            actions: rule
                .actions
                .iter()
                .enumerate()
                .map(|(i, a)| action_counters(format!("{i}:{}", a.kind())))
                .collect(),
            error_action: action_counters(format!(
                "error:{}",
                rule.error_action.as_ref().map_or("none", |a| a.kind())
            )),
            store: rule
                .actions
                .iter()
                .chain(&rule.error_action)
                .any(|a| a.kind() == "store")
                .then(|| StoreMetrics {
                    append_seconds: m.histogram("rules_store_seconds", &by_rule),
                    lag_seconds: m.histogram_with_buckets(
                        "rules_store_lag_seconds",
                        &by_rule,
                        &store_lag_buckets(),
                    ),
                }),
        };
        let webhooks = rule
            .actions
            .iter()
            .map(|a| a.http().map(|h| WebhookQueue::start(h.settings.clone())))
            .collect();
        let error_webhook = rule
            .error_action
            .as_ref()
            .and_then(|a| a.http())
            .map(|h| WebhookQueue::start(h.settings.clone()));
        let reads_shadows = rule.document.sql.contains("get_thing_shadow")
            || serde_json::to_string(&rule.document.actions)
                .is_ok_and(|a| a.contains("get_thing_shadow"));
        let runtime = Arc::new(RuleRuntime {
            overflow: Overflow {
                alarm: format!("rules.queue_overflow.{name}"),
                raised: AtomicBool::new(false),
                last_ms: AtomicU64::new(0),
            },
            rule,
            deps,
            broker,
            webhooks,
            error_webhook,
            metrics,
            reads_shadows,
            options,
        });
        let (queue, rx) = mpsc::channel(options.queue_capacity);
        tokio::spawn(work(runtime.clone(), rx));
        LiveRule { runtime, queue }
    }

    /// Queues `message` for this rule without waiting; counts and alarms
    /// what does not fit.
    pub(crate) fn offer(&self, message: &Arc<RuleMessage>) {
        let rt = &self.runtime;
        rt.metrics.matched.inc();
        match self.queue.try_send(message.clone()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => rt.overflowed(),
            // The worker is gone only if the runtime is shutting down.
            Err(mpsc::error::TrySendError::Closed(_)) => rt.metrics.dropped.inc(),
        }
    }
}

impl RuleRuntime {
    fn overflowed(&self) {
        self.metrics.dropped.inc();
        let o = &self.overflow;
        o.last_ms.store(now_ms_u64(), Ordering::Relaxed);
        if !o.raised.swap(true, Ordering::AcqRel) {
            let raised = self.deps.monitor.raise_alarm(
                &o.alarm,
                format!(
                    "rule {} cannot keep up: its queue of {} messages is full and messages are dropped (rules_dropped_total)",
                    self.rule.name, self.options.queue_capacity
                ),
            );
            if raised {
                tracing::warn!(rule = %self.rule.name, "rule queue full: dropping messages");
            }
        }
    }

    /// Clears the overflow alarm once the queue is empty and the quiet
    /// period has passed; returns whether the alarm is still raised.
    fn settle_overflow(&self, queued: usize) -> bool {
        let o = &self.overflow;
        if !o.raised.load(Ordering::Acquire) {
            return false;
        }
        let quiet_ms =
            u64::try_from(self.options.overflow_clear_after.as_millis()).unwrap_or(u64::MAX);
        let since = now_ms_u64().saturating_sub(o.last_ms.load(Ordering::Relaxed));
        if queued == 0 && since >= quiet_ms && o.raised.swap(false, Ordering::AcqRel) {
            self.deps.monitor.clear_alarm(&o.alarm);
            tracing::info!(rule = %self.rule.name, "rule caught up; overflow alarm cleared");
            return false;
        }
        true
    }
}

/// The rule's worker: takes messages off the queue and processes up to
/// `max_in_flight` of them at once, until the queue closes.
async fn work(rt: Arc<RuleRuntime>, mut rx: mpsc::Receiver<Arc<RuleMessage>>) {
    let slots = Arc::new(Semaphore::new(rt.options.max_in_flight));
    loop {
        let next = if rt.settle_overflow(rx.len()) {
            // Wake up to clear the alarm even if no message comes.
            let wait = rt
                .options
                .overflow_clear_after
                .max(Duration::from_millis(10));
            match tokio::time::timeout(wait, rx.recv()).await {
                Ok(next) => next,
                Err(_) => continue,
            }
        } else {
            rx.recv().await
        };
        let Some(message) = next else {
            break;
        };
        rt.metrics.queued.set(rx.len() as f64);
        if rt.options.max_in_flight == 1 {
            // One at a time: no task per message.
            rt.process(message).await;
            continue;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let rt = rt.clone();
        tokio::spawn(async move {
            rt.process(message).await;
            drop(slot);
        });
    }
}

fn now_ms_u64() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_lag_buckets_are_twenty_a_decade_from_100_us_to_a_day() {
        let b = store_lag_buckets();
        assert_eq!(b.first(), Some(&1e-4));
        assert_eq!(b[20], 1e-3);
        assert_eq!(b[1], 1.12e-4);
        assert_eq!(b.last(), Some(&7.94e4));
        assert_eq!(b.len(), 179);
        assert!(
            b.windows(2)
                .all(|w| w[1] / w[0] > 1.1 && w[1] / w[0] < 1.14)
        );
    }
}
