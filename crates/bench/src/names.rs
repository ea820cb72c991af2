//! Client ids (= certificate common names) and topics, shared by the
//! scenarios and the broker configurations that must grant them.

/// The operator console: sends commands and broadcasts.
pub const CONTROL_CENTER: &str = "control-center";
/// The readiness probe.
pub const PROBE: &str = "bench-probe";
/// Consumers in the fan-in shared-subscription group.
pub const CONSUMERS: usize = 4;
/// Publisher/subscriber pairs in the ceiling scenario.
pub const PAIRS: usize = 4;
/// The shared subscription the fan-in consumers join.
pub const INGEST_FILTER: &str = "$share/ingest/city/+/things/+/telemetry";
/// The topic every streetlight subscribes to for broadcasts.
pub const BROADCAST_TOPIC: &str = "city/bench/broadcast";

pub fn device(i: usize) -> String {
    format!("dev-{i:05}")
}

pub fn consumer(i: usize) -> String {
    format!("ingest-{i}")
}

pub fn publisher(i: usize) -> String {
    format!("pub-{i}")
}

pub fn sink(i: usize) -> String {
    format!("sink-{i}")
}

pub fn telemetry_topic(id: &str) -> String {
    format!("city/bench/things/{id}/telemetry")
}

pub fn command_topic(id: &str) -> String {
    format!("city/bench/things/{id}/cmd")
}

/// Identities that may subscribe to the whole city (consumers, sinks, the
/// probe); everyone else only to their own subtree and the broadcast topic.
pub fn watchers() -> Vec<String> {
    let mut v: Vec<String> = (0..CONSUMERS).map(consumer).collect();
    v.extend((0..PAIRS).map(sink));
    v.push(PROBE.to_string());
    v
}

/// Every fixed identity (not devices).
pub fn fixed() -> Vec<String> {
    let mut v = watchers();
    v.extend((0..PAIRS).map(publisher));
    v.push(CONTROL_CENTER.to_string());
    v
}
