//! Where the `store` action puts readings: a [`TelemetrySink`].
//!
//! [`TelemetryStoreSink`] is the sealed telemetry store (crate
//! civitas-telemetry): a [`TelemetryRecord`] becomes one reading per
//! metric, appended as one batch that is durable when the action
//! succeeds; the raw output, when kept, goes with the first reading only
//! (it is the same message for all of them). [`MemorySink`] keeps records
//! in memory, for tests.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use civitas_telemetry::{NewReading, TelemetryStore, VerifiedSignature};
use parking_lot::Mutex;
use serde::Serialize;

/// The readings one message produced for one thing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetryRecord {
    pub thing: String,
    /// Unix ms.
    pub timestamp_ms: u64,
    /// The same time with its fraction of a millisecond, as the action
    /// rendered it (the store keeps whole milliseconds): what
    /// `rules_store_lag_seconds` measures from. Not part of the JSON.
    #[serde(skip)]
    pub precise_timestamp_ms: f64,
    /// Metric name and finite value: in the order the action lists them,
    /// or by name when it lists none.
    pub metrics: Vec<(String, f64)>,
    /// The rule's output, when the action keeps it.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::payload::serialize_opt"
    )]
    pub raw: Option<Bytes>,
    /// The device's verified signature over the message: the readings
    /// are stored verified. Only set once the signature has been checked.
    #[serde(
        rename = "verifiedSignature",
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_signature"
    )]
    pub signature: Option<VerifiedSignature>,
}

fn serialize_signature<S: serde::Serializer>(
    signature: &Option<VerifiedSignature>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match signature {
        Some(s) => serializer.serialize_some(s.jws()),
        None => serializer.serialize_none(),
    }
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

/// The sealed telemetry store as a sink.
#[derive(Clone)]
pub struct TelemetryStoreSink(pub TelemetryStore);

impl std::fmt::Debug for TelemetryStoreSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TelemetryStoreSink")
    }
}

impl TelemetryRecord {
    /// The telemetry store's readings for this record.
    pub fn into_readings(self) -> Vec<NewReading> {
        let mut raw = self.raw;
        let thing = self.thing;
        let at = self.timestamp_ms;
        let signature = self.signature;
        self.metrics
            .into_iter()
            .map(|(metric, value)| {
                let mut reading = NewReading::new(thing.clone(), metric, at, value);
                if let Some(bytes) = raw.take() {
                    reading = reading.with_raw(bytes.to_vec());
                }
                match &signature {
                    Some(s) => reading.with_signature(s.clone()),
                    None => reading,
                }
            })
            .collect()
    }
}

impl TelemetrySink for TelemetryStoreSink {
    fn store(&self, record: TelemetryRecord) -> SinkFuture<'_> {
        Box::pin(async move {
            self.0
                .append(record.into_readings())
                .await
                .map_err(|e| SinkError(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_reading_per_metric_with_the_raw_message_once() {
        let record = TelemetryRecord {
            thing: "lamp-1".into(),
            timestamp_ms: 7,
            precise_timestamp_ms: 7.25,
            metrics: vec![("lux".into(), 3.0), ("power_w".into(), 180.0)],
            raw: Some(Bytes::from_static(b"{}")),
            signature: None,
        };
        let r = record.into_readings();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (
                r[0].thing.as_str(),
                r[0].metric.as_str(),
                r[0].timestamp_ms,
                r[0].value
            ),
            ("lamp-1", "lux", 7, 3.0)
        );
        assert_eq!(r[0].raw.as_deref(), Some(&b"{}"[..]));
        assert_eq!((r[1].metric.as_str(), r[1].raw.as_ref()), ("power_w", None));
    }
}
