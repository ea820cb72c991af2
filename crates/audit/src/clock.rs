//! Time: the [`Clock`] the writer stamps records with, and [`Timestamp`],
//! the record's `time` field (RFC 3339, UTC, milliseconds).

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where the writer gets the current time from.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A point in time with millisecond precision, between 1970-01-01 and the
/// end of 9999 (the years RFC 3339 can write with four digits).
///
/// Displays as `YYYY-MM-DDTHH:MM:SS.mmmZ`, the one form records use; its
/// byte order is its time order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// 9999-12-31T23:59:59.999Z in milliseconds since the epoch.
const MAX_MILLIS: i64 = 253_402_300_799_999;

impl Timestamp {
    /// The epoch, 1970-01-01T00:00:00.000Z.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// `t` truncated to milliseconds and clamped to the supported range.
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let millis = t
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(millis.min(MAX_MILLIS))
    }

    /// Milliseconds since the epoch, if within the supported range.
    pub fn from_unix_millis(millis: i64) -> Option<Timestamp> {
        (0..=MAX_MILLIS)
            .contains(&millis)
            .then_some(Timestamp(millis))
    }

    /// Milliseconds since the epoch.
    pub fn unix_millis(self) -> i64 {
        self.0
    }

    /// The time as a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        // The range check at construction keeps this non-negative.
        UNIX_EPOCH + std::time::Duration::from_millis(self.0.unsigned_abs())
    }

    /// Parses any RFC 3339 date-time (any offset), converting to UTC and
    /// dropping digits below the millisecond.
    pub fn parse(s: &str) -> Result<Timestamp, String> {
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("{s:?}: {e}"))?;
        let millis = i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000))
            .map_err(|_| format!("{s:?}: out of range"))?;
        Timestamp::from_unix_millis(millis)
            .ok_or_else(|| format!("{s:?}: before 1970 or after 9999"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .map_err(|_| fmt::Error)?;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = String;

    fn from_str(s: &str) -> Result<Timestamp, String> {
        Timestamp::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_with_milliseconds() {
        let t =
            Timestamp::from_system_time(UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456));
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123Z");
        assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp::from_unix_millis(MAX_MILLIS).map(|t| t.to_string()),
            Some("9999-12-31T23:59:59.999Z".to_string())
        );
    }

    #[test]
    fn parses_offsets_into_utc() {
        let t = Timestamp::parse("2023-11-14T23:13:20.1239+01:00").unwrap();
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            Timestamp::parse("2023-11-14T22:13:20Z")
                .unwrap()
                .unix_millis(),
            1_700_000_000_000
        );
        assert!(Timestamp::parse("1969-12-31T23:59:59Z").is_err());
        assert!(Timestamp::parse("yesterday").is_err());
    }

    #[test]
    fn clamps_out_of_range_times() {
        assert_eq!(
            Timestamp::from_system_time(UNIX_EPOCH - Duration::from_secs(1)),
            Timestamp::EPOCH
        );
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(
            Timestamp::from_system_time(far).to_string(),
            "9999-12-31T23:59:59.999Z"
        );
    }
}
