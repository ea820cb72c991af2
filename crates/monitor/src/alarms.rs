//! Named alarms. An alarm is raised (with a message saying why) and later
//! cleared; it remembers when each happened and how many times it has
//! gone off, so an operator sees a flapping alarm for what it is.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    Raised,
    Cleared,
}

/// One alarm as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    pub name: String,
    pub state: AlarmState,
    /// Why it was last raised.
    pub message: String,
    /// When the current (or last) episode began, unix ms.
    pub raised_at_ms: u64,
    /// When it was last raised or its message replaced, unix ms.
    pub updated_at_ms: u64,
    /// When it was last cleared; `None` while it has never been.
    pub cleared_at_ms: Option<u64>,
    /// How many times it went from cleared (or unknown) to raised.
    pub times_raised: u64,
}

impl Alarm {
    pub fn is_raised(&self) -> bool {
        self.state == AlarmState::Raised
    }
}

#[derive(Default)]
pub(crate) struct Alarms(Mutex<BTreeMap<String, Alarm>>);

impl Alarms {
    pub(crate) fn raise(&self, name: &str, message: String, now_ms: u64) -> bool {
        let mut alarms = self.0.lock();
        match alarms.get_mut(name) {
            Some(a) if a.is_raised() => {
                a.message = message;
                a.updated_at_ms = now_ms;
                false
            }
            Some(a) => {
                a.state = AlarmState::Raised;
                a.message = message;
                a.raised_at_ms = now_ms;
                a.updated_at_ms = now_ms;
                a.times_raised += 1;
                true
            }
            None => {
                alarms.insert(
                    name.to_owned(),
                    Alarm {
                        name: name.to_owned(),
                        state: AlarmState::Raised,
                        message,
                        raised_at_ms: now_ms,
                        updated_at_ms: now_ms,
                        cleared_at_ms: None,
                        times_raised: 1,
                    },
                );
                true
            }
        }
    }

    pub(crate) fn clear(&self, name: &str, now_ms: u64) -> bool {
        let mut alarms = self.0.lock();
        match alarms.get_mut(name) {
            Some(a) if a.is_raised() => {
                a.state = AlarmState::Cleared;
                a.cleared_at_ms = Some(now_ms);
                a.updated_at_ms = now_ms;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<Alarm> {
        self.0.lock().get(name).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Alarm> {
        self.0.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::{AlarmState, Monitor};

    #[test]
    fn raise_clear_and_raise_again_keeps_the_history() {
        let now = Arc::new(AtomicU64::new(1_000));
        let clock = now.clone();
        let m = Monitor::with_clock(move || clock.load(Ordering::Relaxed));

        assert!(!m.clear_alarm("lamp"), "never raised: nothing to clear");
        assert!(m.raise_alarm("lamp", "power 180 W"));
        now.store(2_000, Ordering::Relaxed);
        assert!(!m.raise_alarm("lamp", "power 190 W"), "already raised");
        let a = m.alarm("lamp").unwrap();
        assert_eq!(
            (a.state, a.message.as_str(), a.raised_at_ms, a.updated_at_ms),
            (AlarmState::Raised, "power 190 W", 1_000, 2_000)
        );

        now.store(3_000, Ordering::Relaxed);
        assert!(m.clear_alarm("lamp"));
        assert!(!m.clear_alarm("lamp"));
        assert!(m.active_alarms().is_empty());
        let a = m.alarm("lamp").unwrap();
        assert_eq!(
            (a.state, a.cleared_at_ms),
            (AlarmState::Cleared, Some(3_000))
        );

        now.store(4_000, Ordering::Relaxed);
        assert!(m.raise_alarm("lamp", "power 200 W"));
        let a = m.alarm("lamp").unwrap();
        assert_eq!((a.times_raised, a.raised_at_ms), (2, 4_000));
        assert_eq!(m.active_alarms().len(), 1);
    }

    #[test]
    fn alarms_serialize_for_display() {
        let m = Monitor::with_clock(|| 5);
        m.raise_alarm("a", "why");
        let json = serde_json::to_value(m.alarms()).unwrap();
        assert_eq!(json[0]["state"], "raised");
        assert_eq!(json[0]["cleared_at_ms"], serde_json::Value::Null);
    }
}
