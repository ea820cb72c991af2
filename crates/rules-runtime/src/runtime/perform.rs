//! Performing a rule's actions for one message, and reporting what failed
//! to the rule's error action.
//!
//! Actions run one after the other; an HTTP action only queues its POST,
//! which ends later. Every failure of one message's actions goes to the
//! error action in one document, as AWS does; a webhook that fails after
//! its retries sends a document of its own.

use std::sync::{Arc, Weak};
use std::time::Instant;

use bytes::Bytes;
use civitas_monitor::Counter;
use civitas_mqtt::{PublishProperties, QoS};

use super::evaluate::{Evaluation, evaluate, prepare_error_action};
use super::live::RuleRuntime;
use crate::actions::{AlarmChange, Invocation};
use crate::message::{ErrorDocument, Failure, RuleMessage};
use crate::webhook::{Job, WebhookQueue};

/// Which of a rule's actions: one of `actions`, or the error action.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Action(usize),
    Error,
}

/// How performing an action went, as far as is known at once.
enum Performed {
    Done,
    Failed(String),
    /// Handed to a webhook queue; it reports when delivery ends.
    Queued,
}

impl RuleRuntime {
    pub(crate) async fn process(self: &Arc<Self>, message: Arc<RuleMessage>) {
        let started = Instant::now();
        let message = match crate::signing::open_if_enveloped(&self.deps, &self.rule, &message) {
            Ok(None) => message,
            Ok(Some(opened)) => Arc::new(opened),
            Err(failure) => {
                self.report(&message, vec![failure]).await;
                return;
            }
        };
        let evaluation = if self.reads_shadows {
            let rt = self.clone();
            let m = message.clone();
            match tokio::task::spawn_blocking(move || evaluate(&rt.rule, &rt.deps, &m)).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(rule = %self.rule.name, error = %e, "rule evaluation panicked");
                    return;
                }
            }
        } else {
            evaluate(&self.rule, &self.deps, &message)
        };
        self.metrics
            .evaluation_seconds
            .observe(started.elapsed().as_secs_f64());
        let invocations = match evaluation {
            Evaluation::Skipped => return,
            Evaluation::Failed(e) => {
                self.metrics.evaluation_errors.inc();
                tracing::debug!(rule = %self.rule.name, error = %e, "rule evaluation failed");
                let failure = Failure {
                    failed_action: "RuleEvaluation".into(),
                    failed_resource: self.rule.name.clone(),
                    error_message: e.to_string(),
                };
                self.report(&message, vec![failure]).await;
                return;
            }
            Evaluation::Ran { invocations, .. } => invocations,
        };
        self.metrics.executed.inc();
        let mut failures = Vec::new();
        for (i, prepared) in invocations.into_iter().enumerate() {
            let spec = &self.rule.actions[i];
            let (performed, resource) = match prepared {
                Err(e) => (Performed::Failed(e.to_string()), spec.resource_hint()),
                Ok(invocation) => {
                    let resource = invocation.resource();
                    let done = self.perform(Slot::Action(i), invocation, &message).await;
                    (done, resource)
                }
            };
            let (success, failure) = &self.metrics.actions[i];
            match performed {
                Performed::Done => success.inc(),
                Performed::Queued => {}
                Performed::Failed(error_message) => {
                    failure.inc();
                    failures.push(Failure {
                        failed_action: spec.failed_action_name().into(),
                        failed_resource: resource,
                        error_message,
                    });
                }
            }
        }
        if !failures.is_empty() {
            self.report(&message, failures).await;
        }
    }

    /// Sends `failures` to the error action; its own failure is only
    /// counted and logged.
    async fn report(self: &Arc<Self>, message: &Arc<RuleMessage>, failures: Vec<Failure>) {
        for f in &failures {
            tracing::debug!(rule = %self.rule.name, action = %f.failed_action, resource = %f.failed_resource, error = %f.error_message, "rule action failed");
        }
        let document = ErrorDocument::new(&self.rule.name, message, failures);
        let Some((kind, prepared)) =
            prepare_error_action(&self.rule, &self.deps, message, &document)
        else {
            return;
        };
        let (success, failure) = &self.metrics.error_action;
        let outcome = match prepared {
            Ok(invocation) => self.perform(Slot::Error, invocation, message).await,
            Err(e) => Performed::Failed(e.to_string()),
        };
        match outcome {
            Performed::Done => success.inc(),
            Performed::Queued => {}
            Performed::Failed(e) => {
                failure.inc();
                tracing::warn!(rule = %self.rule.name, action = kind, error = %e, "error action failed");
            }
        }
    }

    async fn perform(
        self: &Arc<Self>,
        slot: Slot,
        invocation: Invocation,
        message: &Arc<RuleMessage>,
    ) -> Performed {
        let failed = |e: &dyn std::fmt::Display| Performed::Failed(e.to_string());
        match invocation {
            Invocation::Republish(call) => {
                let qos = if call.qos == 0 {
                    QoS::AtMostOnce
                } else {
                    QoS::AtLeastOnce
                };
                let properties = call.headers.to_properties();
                match self
                    .broker
                    .load()
                    .publish(&call.topic, call.payload, qos, false, properties)
                {
                    Ok(_) => Performed::Done,
                    Err(e) => failed(&e),
                }
            }
            Invocation::Shadow(call) => self.update_shadow(call).await,
            Invocation::Store(record) => match &self.deps.telemetry {
                None => Performed::Failed("no telemetry store is configured".into()),
                Some(sink) => {
                    match crate::signing::check(&self.deps, &self.rule.name, message, record) {
                        Err(e) => Performed::Failed(e),
                        Ok(record) => {
                            let at_ms = record.precise_timestamp_ms;
                            let started = Instant::now();
                            match sink.store(record).await {
                                Ok(()) => {
                                    if let Some(m) = &self.metrics.store {
                                        m.append_seconds.observe(started.elapsed().as_secs_f64());
                                        m.lag_seconds.observe(lag_seconds(at_ms, unix_ms_now()));
                                    }
                                    Performed::Done
                                }
                                Err(e) => failed(&e),
                            }
                        }
                    }
                }
            },
            Invocation::Metric(call) => {
                let mut labels = vec![("namespace", call.namespace.as_str())];
                if let Some(unit) = &call.unit {
                    labels.push(("unit", unit.as_str()));
                }
                self.deps.monitor.gauge(&call.name, &labels).set(call.value);
                Performed::Done
            }
            Invocation::Alarm(call) => {
                match call.state {
                    AlarmChange::Alarm => {
                        self.deps.monitor.raise_alarm(&call.name, call.reason);
                    }
                    AlarmChange::Ok => {
                        self.deps.monitor.clear_alarm(&call.name);
                    }
                    AlarmChange::InsufficientData => {}
                }
                Performed::Done
            }
            Invocation::Http(call) => self.queue_webhook(slot, call, message),
        }
    }

    async fn update_shadow(&self, call: crate::actions::ShadowCall) -> Performed {
        let Some(shadows) = self.deps.shadows.clone() else {
            return Performed::Failed("no shadow service is configured".into());
        };
        let document = match serde_json::to_vec(&call.document) {
            Ok(d) => d,
            Err(e) => return Performed::Failed(e.to_string()),
        };
        let updated = tokio::task::spawn_blocking(move || {
            shadows.update(&call.thing_name, call.shadow_name.as_deref(), &document)
        })
        .await;
        match updated {
            Ok(Ok(messages)) => {
                for m in messages {
                    // The update is made; a broker that is not running only
                    // means nobody hears about it.
                    let _ = self.broker.load().publish(
                        &m.topic,
                        Bytes::from(m.payload),
                        QoS::AtLeastOnce,
                        false,
                        PublishProperties::default(),
                    );
                }
                Performed::Done
            }
            Ok(Err(e)) => Performed::Failed(e.to_string()),
            Err(e) => Performed::Failed(format!("shadow update panicked: {e}")),
        }
    }

    fn queue_webhook(
        self: &Arc<Self>,
        slot: Slot,
        call: crate::actions::HttpCall,
        message: &Arc<RuleMessage>,
    ) -> Performed {
        let (queue, counters): (Option<&WebhookQueue>, &(Counter, Counter)) = match slot {
            Slot::Action(i) => (
                self.webhooks.get(i).and_then(Option::as_ref),
                &self.metrics.actions[i],
            ),
            Slot::Error => (self.error_webhook.as_ref(), &self.metrics.error_action),
        };
        let Some(queue) = queue else {
            return Performed::Failed("the webhook has no delivery queue".into());
        };
        let (success, failure) = counters.clone();
        let rule: Weak<RuleRuntime> = Arc::downgrade(self);
        let message = message.clone();
        let url = call.url.clone();
        let done = Box::new(move |result: Result<(), String>| match result {
            Ok(()) => success.inc(),
            Err(e) => {
                failure.inc();
                let Slot::Action(i) = slot else {
                    tracing::warn!(%url, error = %e, "error action webhook failed");
                    return;
                };
                let Some(rt) = rule.upgrade() else {
                    tracing::warn!(%url, error = %e, "webhook failed after its rule was replaced");
                    return;
                };
                let failure = Failure {
                    failed_action: rt.rule.actions[i].failed_action_name().into(),
                    failed_resource: url,
                    error_message: e,
                };
                tokio::spawn(async move { rt.report(&message, vec![failure]).await });
            }
        });
        match queue.offer(Job { call, done }) {
            Ok(()) => Performed::Queued,
            Err(_) => Performed::Failed(format!(
                "webhook queue full ({} waiting): delivery is not keeping up",
                queue.capacity()
            )),
        }
    }
}

/// The system clock, unix ms with the fraction.
fn unix_ms_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Seconds from a reading's timestamp to `now_ms`; a timestamp in the
/// future (a device clock ahead of ours) counts as no lag.
fn lag_seconds(timestamp_ms: f64, now_ms: f64) -> f64 {
    ((now_ms - timestamp_ms) / 1000.0).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_seconds_since_the_timestamp_and_never_negative() {
        assert!((lag_seconds(1_700_000_000_000.25, 1_700_000_000_012.75) - 0.0125).abs() < 1e-9);
        assert_eq!(lag_seconds(1_700_000_000_100.0, 1_700_000_000_000.0), 0.0);
    }
}
