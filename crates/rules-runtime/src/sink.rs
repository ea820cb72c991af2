//! Where the `store` action puts readings: a [`TelemetrySink`].
//!
//! The sealed telemetry store (crate civitas-telemetry) takes one reading
//! per metric — `NewReading { thing, metric, timestamp_ms, value, raw }` —
//! and makes it durable before it returns. Its adapter turns a
//! [`TelemetryRecord`] into one reading per entry of `metrics`, each with
//! `raw` attached when present, and implements this trait; until it is
//! wired, [`MemorySink`] keeps records in memory (tests, `rule test`).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;

/// The readings one message produced for one thing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetryRecord {
    pub thing: String,
    /// Unix ms.
    pub timestamp_ms: u64,
    /// Metric name and finite value: in the order the action lists them,
    /// or by name when it lists none.
    pub metrics: Vec<(String, f64)>,
    /// The rule's output, when the action keeps it.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::payload::serialize_opt"
    )]
    pub raw: Option<Bytes>,
}

/// A boxed future, so that sinks can be used as trait objects.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Why a sink did not store a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Durable telemetry storage as the `store` action sees it.
pub trait TelemetrySink: Send + Sync + std::fmt::Debug + 'static {
    /// Stores `record`; resolves once it is durable (or refused).
    fn store(&self, record: TelemetryRecord) -> SinkFuture<'_>;
}

/// Keeps every record in memory, in arrival order.
#[derive(Debug, Default)]
pub struct MemorySink {
    records: Mutex<Vec<TelemetryRecord>>,
}

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// The records stored so far.
    pub fn records(&self) -> Vec<TelemetryRecord> {
        self.records.lock().clone()
    }
}

impl TelemetrySink for MemorySink {
    fn store(&self, record: TelemetryRecord) -> SinkFuture<'_> {
        self.records.lock().push(record);
        Box::pin(std::future::ready(Ok(())))
    }
}
