//! Readings: what a caller appends and what a query returns.
//!
//! A reading is one value of one metric of one device at one time, with
//! optionally the raw message it came from and the device's signature over
//! that message. `verified` can only be true for a reading appended with a
//! [`VerifiedSignature`], which only signature verification produces, so no
//! caller can store an unchecked reading as genuine.

use crate::error::TelemetryError;
use crate::keys::device_key_id;
use crate::signature::VerifiedSignature;

/// Longest metric name, in bytes.
pub const MAX_METRIC_LEN: usize = 255;
/// Largest raw message kept with a reading.
pub const MAX_RAW_LEN: usize = 1 << 20;

/// A reading to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReading {
    pub thing: String,
    pub metric: String,
    /// Unix ms.
    pub timestamp_ms: u64,
    /// Finite.
    pub value: f64,
    /// The raw message, when a rule asks to keep it.
    pub raw: Option<Vec<u8>>,
    /// The device's signature over the raw message, once verified.
    pub signature: Option<VerifiedSignature>,
}

impl NewReading {
    /// An unsigned reading without its raw message.
    pub fn new(
        thing: impl Into<String>,
        metric: impl Into<String>,
        timestamp_ms: u64,
        value: f64,
    ) -> NewReading {
        NewReading {
            thing: thing.into(),
            metric: metric.into(),
            timestamp_ms,
            value,
            raw: None,
            signature: None,
        }
    }

    /// Keeps the raw message with the reading.
    #[must_use]
    pub fn with_raw(mut self, raw: impl Into<Vec<u8>>) -> NewReading {
        self.raw = Some(raw.into());
        self
    }

    /// Marks the reading verified by `signature`; when the raw message is
    /// kept too it must be the one that was signed.
    #[must_use]
    pub fn with_signature(mut self, signature: VerifiedSignature) -> NewReading {
        self.signature = Some(signature);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), TelemetryError> {
        let bad = |reason: String| TelemetryError::InvalidReading {
            thing: self.thing.clone(),
            reason,
        };
        device_key_id(&self.thing)?;
        if self.metric.is_empty() || self.metric.len() > MAX_METRIC_LEN {
            return Err(bad(format!(
                "metric name must be 1 to {MAX_METRIC_LEN} bytes, got {}",
                self.metric.len()
            )));
        }
        if !self.value.is_finite() {
            return Err(bad(format!(
                "value of {:?} at {} ms is not finite",
                self.metric, self.timestamp_ms
            )));
        }
        if let Some(raw) = &self.raw
            && raw.len() > MAX_RAW_LEN
        {
            return Err(bad(format!(
                "raw message of {} bytes exceeds {MAX_RAW_LEN}",
                raw.len()
            )));
        }
        if let (Some(raw), Some(sig)) = (&self.raw, &self.signature)
            && !sig.covers(raw)
        {
            return Err(bad(
                "the raw message kept is not the message the signature verified".into(),
            ));
        }
        Ok(())
    }
}

/// A stored reading, as a query returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub thing: String,
    pub metric: String,
    /// Unix ms.
    pub timestamp_ms: u64,
    pub value: f64,
    pub raw: Option<Vec<u8>>,
    /// The device's detached JWS over the raw message.
    pub signature: Option<String>,
    /// True only if the signature was verified before the reading was
    /// stored.
    pub verified: bool,
}
