//! Every error AWS documents for the shadow service, as the `/rejected`
//! document a device receives: code, exact message, timestamp (absent on
//! 404) and the client token when the request carried a valid one.

mod common;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use civitas_shadow::{
    ManualClock, MemoryShadowStore, Requester, ShadowService, ShadowStore, StoreFailure,
    StoredShadow,
};
use common::*;
use serde_json::{Value, json};

const UPDATE: &str = "$aws/things/lamp/shadow/update";
const REJECTED: &str = "$aws/things/lamp/shadow/update/rejected";

fn error(code: u16, message: &str, token: Option<&str>) -> Value {
    let mut doc = json!({"code": code, "message": message, "timestamp": T0});
    if let Some(token) = token {
        doc["clientToken"] = json!(token);
    }
    doc
}

#[test]
fn bad_requests_are_400_with_aws_messages() {
    let f = memory();
    let seven_deep = r#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}"#;
    let arrays_count = r#"{"a":[[[[[[1]]]]]]}"#;
    let long_token = "t".repeat(65);
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("".into(), "Invalid JSON", None),
        ("{".into(), "Invalid JSON", None),
        (r#""state""#.into(), "Invalid JSON", None),
        (
            r#"{"clientToken":"c"}"#.into(),
            "Missing required node: state",
            Some("c"),
        ),
        (
            r#"{"clientToken":"c","state":{}}"#.into(),
            "Missing required node: state",
            Some("c"),
        ),
        (
            r#"{"clientToken":"c","state":[1]}"#.into(),
            "State node must be an object",
            Some("c"),
        ),
        (
            r#"{"clientToken":"c","state":{"desired":"on"}}"#.into(),
            "Desired node must be an object",
            Some("c"),
        ),
        (
            r#"{"clientToken":"c","state":{"reported":7}}"#.into(),
            "Reported node must be an object",
            Some("c"),
        ),
        (
            r#"{"clientToken":"c","state":{"reported":{},"color":1}}"#.into(),
            "State contains an invalid node",
            Some("c"),
        ),
        (
            r#"{"clientToken":"c","state":{"desired":{"c":["a",null]}}}"#.into(),
            "State contains an invalid node",
            Some("c"),
        ),
        (
            r#"{"clientToken":"c","state":{"reported":{}},"version":1.5}"#.into(),
            "Invalid version",
            Some("c"),
        ),
        (
            r#"{"clientToken":"c","state":{"reported":{}},"version":null}"#.into(),
            "Invalid version",
            Some("c"),
        ),
        (
            r#"{"clientToken":"c","state":{"reported":{}},"version":-2}"#.into(),
            "Invalid version",
            Some("c"),
        ),
        (
            r#"{"clientToken":7,"state":{"reported":{}}}"#.into(),
            "Invalid clientToken",
            None,
        ),
        (
            format!(r#"{{"clientToken":"{long_token}","state":{{"reported":{{}}}}}}"#),
            "Invalid clientToken",
            None,
        ),
        (
            format!(r#"{{"clientToken":"c","state":{{"desired":{seven_deep}}}}}"#),
            "JSON contains too many levels of nesting; maximum is 6",
            Some("c"),
        ),
        (
            format!(r#"{{"clientToken":"c","state":{{"reported":{arrays_count}}}}}"#),
            "JSON contains too many levels of nesting; maximum is 6",
            Some("c"),
        ),
    ];
    for (payload, message, token) in cases {
        assert_eq!(
            f.publish(UPDATE, &payload),
            replies(&[(REJECTED, error(400, message, token))]),
            "{payload}"
        );
    }
    // A 64-byte token is fine; none of the above created the shadow.
    let token = "t".repeat(64);
    let got = f.publish(
        UPDATE,
        &format!(r#"{{"clientToken":"{token}","state":{{"reported":{{"a":1}}}}}}"#),
    );
    assert_eq!(got[0].1["clientToken"], json!(token));
    assert_eq!(got[0].1["version"], 1);

    assert_eq!(
        f.publish("$aws/things/lamp/shadow/get", "{"),
        replies(&[(
            "$aws/things/lamp/shadow/get/rejected",
            error(400, "Invalid JSON", None)
        )])
    );
    assert_eq!(
        f.publish(
            "$aws/things/lamp/shadow/get",
            &format!(r#"{{"clientToken":"{long_token}"}}"#)
        ),
        replies(&[(
            "$aws/things/lamp/shadow/get/rejected",
            error(400, "Invalid clientToken", None)
        )])
    );
}

#[test]
fn bad_names_are_400() {
    let f = memory();
    assert_eq!(
        f.publish(
            "$aws/things/bad.name/shadow/update",
            r#"{"state":{"reported":{}},"clientToken":"c"}"#
        ),
        replies(&[(
            "$aws/things/bad.name/shadow/update/rejected",
            error(400, "Invalid thing name", Some("c"))
        )])
    );
    let long = "s".repeat(65);
    let topic = format!("$aws/things/lamp/shadow/name/{long}/get");
    assert_eq!(
        f.publish(&topic, ""),
        replies(&[(
            format!("{topic}/rejected").as_str(),
            error(400, "Invalid shadow name", None)
        )])
    );
    assert_eq!(
        f.publish("$aws/things//shadow/delete", ""),
        replies(&[(
            "$aws/things//shadow/delete/rejected",
            error(400, "Invalid thing name", None)
        )])
    );
    // The same checks guard the HTTPS calls.
    assert_eq!(f.shadows.get("bad name", None).unwrap_err().code(), 400);
    assert_eq!(f.shadows.get("lamp", Some("")).unwrap_err().code(), 400);
    assert_eq!(
        f.shadows.update("a/b", None, b"{}").unwrap_err().code(),
        400
    );
    assert_eq!(
        f.shadows.delete("lamp", Some("a b")).unwrap_err().code(),
        400
    );
    assert_eq!(f.shadows.list_named_shadows("").unwrap_err().code(), 400);
}

#[test]
fn missing_shadows_are_404_without_a_timestamp() {
    let f = memory();
    for op in ["get", "delete"] {
        assert_eq!(
            f.publish(
                &format!("$aws/things/lamp/shadow/{op}"),
                r#"{"clientToken":"x"}"#
            ),
            replies(&[(
                format!("$aws/things/lamp/shadow/{op}/rejected").as_str(),
                json!({"code": 404, "message": "No shadow exists with name: 'lamp'", "clientToken": "x"})
            )])
        );
    }
    let e = f.shadows.get("lamp", Some("cfg")).unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        (404, "No shadow exists with name: 'lamp~cfg'")
    );
}

#[test]
fn a_stale_version_is_409() {
    let f = memory();
    f.publish(UPDATE, r#"{"state":{"reported":{"a":1}}}"#);
    assert_eq!(
        f.publish(UPDATE, r#"{"state":{"reported":{"a":2}},"version":7}"#),
        replies(&[(REJECTED, error(409, "Version conflict", None))])
    );
    assert_eq!(
        f.shadows
            .update(
                "lamp",
                None,
                br#"{"state":{"reported":{"a":2}},"version":0}"#
            )
            .unwrap_err()
            .code(),
        409
    );
}

#[test]
fn oversized_state_or_payload_is_413() {
    let f = memory();
    // desired + reported, serialized, may reach 8192 bytes and no more.
    let fits = "x".repeat(8192 - r#"{"a":""}"#.len());
    let got = f.publish(
        UPDATE,
        &format!(r#"{{"state":{{"desired":{{"a":"{fits}"}}}}}}"#),
    );
    assert_eq!(got[0].0, "$aws/things/lamp/shadow/update/accepted");
    assert_eq!(
        f.publish(
            UPDATE,
            r#"{"state":{"reported":{"b":1}},"clientToken":"c"}"#
        ),
        replies(&[(
            REJECTED,
            error(
                413,
                "The payload exceeds the maximum size allowed",
                Some("c")
            )
        )])
    );
    // Deleting makes room again; metadata does not count.
    let got = f.publish(UPDATE, r#"{"state":{"desired":null,"reported":{"b":1}}}"#);
    assert_eq!(got[0].1["version"], 2);

    let half = "y".repeat(5000);
    f.publish(
        UPDATE,
        &format!(r#"{{"state":{{"reported":{{"h1":"{half}"}}}}}}"#),
    );
    assert_eq!(
        f.publish(
            UPDATE,
            &format!(r#"{{"state":{{"desired":{{"h2":"{half}"}}}}}}"#)
        ),
        replies(&[(
            REJECTED,
            error(413, "The payload exceeds the maximum size allowed", None)
        )])
    );
    // The refused update changed nothing.
    assert_eq!(f.shadows.get("lamp", None).unwrap().version, 3);

    // A request larger than any MQTT message AWS accepts is not even read.
    let huge = format!(
        r#"{{"state":{{"reported":{{}}}}}}{}"#,
        " ".repeat(128 * 1024)
    );
    assert_eq!(
        f.publish(UPDATE, &huge),
        replies(&[(
            REJECTED,
            error(413, "The payload exceeds the maximum size allowed", None)
        )])
    );
}

#[test]
fn a_payload_that_is_not_utf8_is_415() {
    let f = memory();
    let expected = replies(&[(
        REJECTED,
        error(
            415,
            "Unsupported documented encoding; supported encoding is UTF-8",
            None,
        ),
    )]);
    assert_eq!(
        f.publish_bytes(UPDATE, b"{\"state\":{\"reported\":{\"a\":\"\xc3\x28\"}}}"),
        expected
    );
}

/// A store whose saves wait at a gate, reporting each arrival.
struct GatedStore {
    inner: MemoryShadowStore,
    open: Mutex<bool>,
    opened: Condvar,
    arrived: Mutex<Sender<()>>,
}

impl GatedStore {
    fn new() -> (Arc<GatedStore>, Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        let store = GatedStore {
            inner: MemoryShadowStore::new(),
            open: Mutex::new(false),
            opened: Condvar::new(),
            arrived: Mutex::new(tx),
        };
        (Arc::new(store), rx)
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl ShadowStore for GatedStore {
    fn load(&self, thing: &str, name: Option<&str>) -> Result<Option<StoredShadow>, StoreFailure> {
        self.inner.load(thing, name)
    }
    fn save(&self, thing: &str, name: Option<&str>, s: &StoredShadow) -> Result<(), StoreFailure> {
        self.arrived.lock().unwrap().send(()).unwrap();
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        self.inner.save(thing, name, s)
    }
    fn delete(&self, thing: &str, name: Option<&str>) -> Result<(), StoreFailure> {
        self.inner.delete(thing, name)
    }
    fn names(&self, thing: &str) -> Result<Vec<String>, StoreFailure> {
        self.inner.names(thing)
    }
}

#[test]
fn an_eleventh_request_in_flight_is_429() {
    let (store, arrived) = GatedStore::new();
    let shadows = ShadowService::new(Arc::clone(&store), Arc::new(ManualClock::new(NOW_MS)));
    let device = Requester::new("device-1");
    let workers: Vec<_> = (0..10)
        .map(|i| {
            let (shadows, device) = (shadows.clone(), device.clone());
            thread::spawn(move || {
                let topic = format!("$aws/things/t{i}/shadow/update");
                shadows
                    .handle_mqtt(&topic, br#"{"state":{"reported":{"a":1}}}"#, &device)
                    .unwrap()
            })
        })
        .collect();
    for _ in 0..10 {
        arrived.recv().unwrap();
    }
    assert_eq!(shadows.in_flight("device-1"), 10);

    let refused = shadows
        .handle_mqtt(
            "$aws/things/t0/shadow/get",
            br#"{"clientToken":"k"}"#,
            &device,
        )
        .unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].topic, "$aws/things/t0/shadow/get/rejected");
    assert_eq!(
        serde_json::from_slice::<Value>(&refused[0].payload).unwrap(),
        error(429, "Too Many Requests", Some("k"))
    );
    // Another connection is not held back.
    let other = shadows
        .handle_mqtt(
            "$aws/things/t0/shadow/get",
            b"",
            &Requester::new("device-2"),
        )
        .unwrap();
    assert_eq!(other[0].topic, "$aws/things/t0/shadow/get/rejected");
    assert!(String::from_utf8_lossy(&other[0].payload).contains("404"));

    store.open();
    for w in workers {
        let replies = w.join().unwrap();
        assert!(replies[0].topic.ends_with("/update/accepted"));
    }
    assert_eq!(shadows.in_flight("device-1"), 0);
    let again = shadows
        .handle_mqtt("$aws/things/t0/shadow/get", b"", &device)
        .unwrap();
    assert_eq!(again[0].topic, "$aws/things/t0/shadow/get/accepted");
}

#[test]
fn a_broker_that_queues_requests_counts_them_when_queued() {
    let f = memory();
    let tickets: Vec<_> = (0..10)
        .map(|_| f.shadows.begin_request(&f.device).expect("under the limit"))
        .collect();
    assert!(f.shadows.begin_request(&f.device).is_none());
    assert_eq!(f.shadows.in_flight("device-1"), 10);
    let too_many = replies(&[(REJECTED, error(429, "Too Many Requests", Some("q")))]);
    assert_eq!(
        f.publish(
            UPDATE,
            r#"{"state":{"reported":{"a":1}},"clientToken":"q"}"#
        ),
        too_many
    );
    let refused = f
        .shadows
        .reject_too_many(UPDATE, br#"{"clientToken":"q"}"#)
        .unwrap();
    assert_eq!(refused[0].topic, REJECTED);
    assert_eq!(
        serde_json::from_slice::<Value>(&refused[0].payload).unwrap(),
        too_many[0].1
    );
    assert!(f.shadows.reject_too_many("city/lamp", b"").is_none());

    // The queued requests run elsewhere, each releasing its place.
    let mut tickets = tickets.into_iter();
    let ticket = tickets.next().unwrap();
    let shadows = f.shadows.clone();
    let replies = thread::spawn(move || {
        shadows.handle_admitted(UPDATE, br#"{"state":{"reported":{"a":1}}}"#, ticket)
    })
    .join()
    .unwrap()
    .unwrap();
    assert_eq!(replies[0].topic, "$aws/things/lamp/shadow/update/accepted");
    assert_eq!(f.shadows.in_flight("device-1"), 9);
    drop(tickets);
    assert_eq!(f.shadows.in_flight("device-1"), 0);
}

/// A store that fails every call.
struct BrokenStore;

impl ShadowStore for BrokenStore {
    fn load(&self, _: &str, _: Option<&str>) -> Result<Option<StoredShadow>, StoreFailure> {
        Err("disk on fire".into())
    }
    fn save(&self, _: &str, _: Option<&str>, _: &StoredShadow) -> Result<(), StoreFailure> {
        Err("disk on fire".into())
    }
    fn delete(&self, _: &str, _: Option<&str>) -> Result<(), StoreFailure> {
        Err("disk on fire".into())
    }
    fn names(&self, _: &str) -> Result<Vec<String>, StoreFailure> {
        Err("disk on fire".into())
    }
}

/// Loads work, saves fail.
struct ReadOnlyStore(MemoryShadowStore);

impl ShadowStore for ReadOnlyStore {
    fn load(&self, thing: &str, name: Option<&str>) -> Result<Option<StoredShadow>, StoreFailure> {
        self.0.load(thing, name)
    }
    fn save(&self, _: &str, _: Option<&str>, _: &StoredShadow) -> Result<(), StoreFailure> {
        Err("read-only".into())
    }
    fn delete(&self, _: &str, _: Option<&str>) -> Result<(), StoreFailure> {
        Err("read-only".into())
    }
    fn names(&self, thing: &str) -> Result<Vec<String>, StoreFailure> {
        self.0.names(thing)
    }
}

#[test]
fn a_failing_store_is_500_and_keeps_its_cause() {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let shadows = ShadowService::new(BrokenStore, Arc::clone(&clock));
    let device = Requester::new("d");
    let got = shadows
        .handle_mqtt(
            "$aws/things/lamp/shadow/get",
            br#"{"clientToken":"c"}"#,
            &device,
        )
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&got[0].payload).unwrap(),
        error(500, "Internal service failure", Some("c"))
    );
    let e = shadows.get("lamp", None).unwrap_err();
    assert_eq!(e.code(), 500);
    let cause = std::error::Error::source(&e).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("disk on fire"));
    assert_eq!(shadows.list_named_shadows("lamp").unwrap_err().code(), 500);

    let shadows = ShadowService::new(ReadOnlyStore(MemoryShadowStore::new()), clock);
    let got = shadows
        .handle_mqtt(
            UPDATE,
            br#"{"state":{"reported":{"a":1}},"clientToken":"u"}"#,
            &device,
        )
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].topic, REJECTED);
    assert_eq!(
        serde_json::from_slice::<Value>(&got[0].payload).unwrap(),
        error(500, "Internal service failure", Some("u"))
    );
}
