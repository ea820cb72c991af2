//! Fixtures shared by the shadow service's integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use civitas_shadow::{ManualClock, MemoryShadowStore, Requester, ShadowService};
use serde_json::Value;

/// 2023-11-14T22:13:20Z: every timestamp in a reply is this, in seconds,
/// unless a test moves the clock.
pub const NOW_MS: u64 = 1_700_000_000_000;
pub const T0: u64 = NOW_MS / 1000;

pub struct Fixture {
    pub shadows: ShadowService,
    pub clock: Arc<ManualClock>,
    pub device: Requester,
}

pub fn memory() -> Fixture {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    Fixture {
        shadows: ShadowService::new(MemoryShadowStore::new(), Arc::clone(&clock)),
        clock,
        device: Requester::new("device-1"),
    }
}

impl Fixture {
    /// Publishes `payload` on `topic` and returns the replies as
    /// (topic, JSON) pairs, in order.
    pub fn publish(&self, topic: &str, payload: &str) -> Vec<(String, Value)> {
        self.publish_bytes(topic, payload.as_bytes())
    }

    pub fn publish_bytes(&self, topic: &str, payload: &[u8]) -> Vec<(String, Value)> {
        self.shadows
            .handle_mqtt(topic, payload, &self.device)
            .unwrap_or_else(|| panic!("{topic} is not a shadow topic"))
            .into_iter()
            .map(|r| {
                let doc = serde_json::from_slice(&r.payload).expect("replies are JSON");
                (r.topic, doc)
            })
            .collect()
    }

    /// Advances the clock by whole seconds.
    pub fn tick(&self, secs: u64) {
        self.clock.advance(secs * 1000);
    }
}

/// `[(topic, doc)]` from string topics, for whole-reply comparisons.
pub fn replies(expected: &[(&str, Value)]) -> Vec<(String, Value)> {
    expected
        .iter()
        .map(|(t, v)| ((*t).to_owned(), v.clone()))
        .collect()
}
