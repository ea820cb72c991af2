//! The civitas rules engine at run time — the AWS IoT rules engine's role.
//! The SQL itself (parser, evaluator) is the pure `civitas-rules` crate;
//! this crate adds what needs I/O: durable rule documents, the runtime fed
//! by the broker, the actions and their HTTP client. Keeping them apart
//! keeps the SQL crate free of Tokio, hyper and the store.
//!
//! - [`document`]: AWS `TopicRulePayload` documents and their validation.
//! - [`RuleCatalog`]: rules by name, kept in the store's `rules` table.
//! - [`RulesEngine`]: the live rules, a broker [`observer`] and the Basic
//!   Ingest [`service`], administration ([`RuleRequest`]) and `rule test`.
//! - [`actions`]: republish, shadow, store, cloudwatchMetric,
//!   cloudwatchAlarm and http, with `${…}` [`Template`]s.
//! - [`ErrorDocument`]: what a rule's error action receives.
//! - [`signing`]: device signatures, verified before `store` keeps a
//!   reading ([`DeviceKeys`]).
//!
//! Metrics, in the engine's [`Monitor`](civitas_monitor::Monitor), per
//! rule (`rule` label): `rules_matched_total`, `rules_dropped_total`,
//! `rules_executed_total`, `rules_evaluation_errors_total`,
//! `rules_evaluation_seconds`, `rules_queued`; per action (`action` label
//! `{index}:{type}` or `error:{type}`): `rules_action_success_total`,
//! `rules_action_failure_total`; for rules that store readings,
//! `rules_store_seconds` (the durable append) and
//! `rules_store_lag_seconds` (from the readings' timestamp — the device's
//! own when the action takes it from the message, the arrival otherwise —
//! to the moment they are durable; finer buckets, see
//! [`store_lag_buckets`]); `telemetry_signature_failures_total`
//! (`rule`, `reason`); and `rules_basic_ingest_unmatched_total`.
//! Alarm `rules.queue_overflow.{rule}` while a rule drops messages.
//!
//! [`observer`]: RulesEngine::observer
//! [`service`]: RulesEngine::basic_ingest

pub mod actions;
mod admin;
mod catalog;
pub mod document;
mod dry_run;
mod error;
mod message;
mod payload;
mod runtime;
mod shadows;
pub mod signing;
mod sink;
mod template;
mod webhook;

pub use admin::{ADMIN_SERVICE, RuleRequest, RuleResponse};
pub use catalog::{RuleCatalog, RuleInfo};
pub use document::{DocumentError, RuleDocument, ValidRule};
pub use dry_run::{ActionPreview, TestReport, test_rule};
pub use error::RulesError;
pub use message::{ErrorDocument, Failure, RuleMessage, new_uuid};
pub use runtime::{ActionDeps, RulesEngine, RuntimeOptions, store_lag_buckets};
pub use shadows::{ShadowAccess, ShadowFailure, ShadowMessage};
pub use signing::{DeviceKeys, DeviceSignature, SignatureRefusal};
pub use sink::{
    MemorySink, SinkError, SinkFuture, TelemetryRecord, TelemetrySink, TelemetryStoreSink,
};
pub use template::{Template, TemplateError};

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<RulesEngine>();
    send_sync::<RuleCatalog>();
    send_sync::<ValidRule>();
};
