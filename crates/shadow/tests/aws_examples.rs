//! The flows of the AWS IoT developer guide ("Device Shadow service
//! documents", "Device Shadow MQTT topics"), replayed over MQTT topics and
//! compared as whole JSON documents, timestamps included.

mod common;

use common::*;
use serde_json::json;

const LAMP: &str = "$aws/things/lamp/shadow";

#[test]
fn desired_then_reported_then_in_sync() {
    let f = memory();

    // An app asks for a change: accepted, a delta for the device, documents.
    let got = f.publish(
        &format!("{LAMP}/update"),
        r#"{"state":{"desired":{"color":"RED","state":"STOP"}},"clientToken":"app-1"}"#,
    );
    let desired_meta = json!({"color": {"timestamp": T0}, "state": {"timestamp": T0}});
    assert_eq!(
        got,
        replies(&[
            (
                "$aws/things/lamp/shadow/update/accepted",
                json!({
                    "state": {"desired": {"color": "RED", "state": "STOP"}},
                    "metadata": {"desired": desired_meta},
                    "version": 1, "timestamp": T0, "clientToken": "app-1"
                })
            ),
            (
                "$aws/things/lamp/shadow/update/delta",
                json!({
                    "state": {"color": "RED", "state": "STOP"},
                    "metadata": desired_meta,
                    "version": 1, "timestamp": T0, "clientToken": "app-1"
                })
            ),
            (
                "$aws/things/lamp/shadow/update/documents",
                json!({
                    "current": {
                        "state": {"desired": {"color": "RED", "state": "STOP"}},
                        "metadata": {"desired": desired_meta},
                        "version": 1
                    },
                    "timestamp": T0, "clientToken": "app-1"
                })
            ),
        ])
    );

    // The device reports part of it: the delta lists every desired key
    // still out of sync, including those this update did not touch, with
    // the desired side's timestamps.
    f.tick(10);
    let t1 = T0 + 10;
    let got = f.publish(
        &format!("{LAMP}/update"),
        r#"{"state":{"reported":{"color":"GREEN","engine":"ON"}},"clientToken":"dev-1"}"#,
    );
    let reported_meta = json!({"color": {"timestamp": t1}, "engine": {"timestamp": t1}});
    assert_eq!(
        got,
        replies(&[
            (
                "$aws/things/lamp/shadow/update/accepted",
                json!({
                    "state": {"reported": {"color": "GREEN", "engine": "ON"}},
                    "metadata": {"reported": reported_meta},
                    "version": 2, "timestamp": t1, "clientToken": "dev-1"
                })
            ),
            (
                "$aws/things/lamp/shadow/update/delta",
                json!({
                    "state": {"color": "RED", "state": "STOP"},
                    "metadata": desired_meta,
                    "version": 2, "timestamp": t1, "clientToken": "dev-1"
                })
            ),
            (
                "$aws/things/lamp/shadow/update/documents",
                json!({
                    "previous": {
                        "state": {"desired": {"color": "RED", "state": "STOP"}},
                        "metadata": {"desired": desired_meta},
                        "version": 1
                    },
                    "current": {
                        "state": {
                            "desired": {"color": "RED", "state": "STOP"},
                            "reported": {"color": "GREEN", "engine": "ON"}
                        },
                        "metadata": {"desired": desired_meta, "reported": reported_meta},
                        "version": 2
                    },
                    "timestamp": t1, "clientToken": "dev-1"
                })
            ),
        ])
    );

    // The guide's "Delta state" example: get carries the delta; reported
    // keys absent from desired are not in it.
    let got = f.publish(&format!("{LAMP}/get"), r#"{"clientToken":"g-1"}"#);
    assert_eq!(
        got,
        replies(&[(
            "$aws/things/lamp/shadow/get/accepted",
            json!({
                "state": {
                    "desired": {"color": "RED", "state": "STOP"},
                    "reported": {"color": "GREEN", "engine": "ON"},
                    "delta": {"color": "RED", "state": "STOP"}
                },
                "metadata": {"desired": desired_meta, "reported": reported_meta},
                "version": 2, "timestamp": t1, "clientToken": "g-1"
            })
        )])
    );

    // Once reported matches desired there is no delta message, and a
    // request without a token gets replies without one.
    f.tick(5);
    let t2 = t1 + 5;
    let got = f.publish(
        &format!("{LAMP}/update"),
        r#"{"state":{"reported":{"color":"RED","state":"STOP"}}}"#,
    );
    let reported_meta = json!({
        "color": {"timestamp": t2}, "engine": {"timestamp": t1}, "state": {"timestamp": t2}
    });
    let topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "$aws/things/lamp/shadow/update/accepted",
            "$aws/things/lamp/shadow/update/documents"
        ]
    );
    assert_eq!(
        got[0].1,
        json!({
            "state": {"reported": {"color": "RED", "state": "STOP"}},
            "metadata": {"reported": {"color": {"timestamp": t2}, "state": {"timestamp": t2}}},
            "version": 3, "timestamp": t2
        })
    );
    assert_eq!(got[1].1["current"]["metadata"]["reported"], reported_meta);
    assert!(got[1].1.get("clientToken").is_none());

    let got = f.publish(&format!("{LAMP}/get"), "");
    assert_eq!(
        got,
        replies(&[(
            "$aws/things/lamp/shadow/get/accepted",
            json!({
                "state": {
                    "desired": {"color": "RED", "state": "STOP"},
                    "reported": {"color": "RED", "engine": "ON", "state": "STOP"}
                },
                "metadata": {"desired": desired_meta, "reported": reported_meta},
                "version": 3, "timestamp": t2
            })
        )])
    );
}

#[test]
fn nested_objects_differ_only_in_their_leaves() {
    let f = memory();
    let got = f.publish(
        "$aws/things/car/shadow/update",
        r#"{"state":{
            "desired":{"lights":{"color":{"r":255,"g":255,"b":255}}},
            "reported":{"lights":{"color":{"r":255,"g":0,"b":255}}}}}"#,
    );
    let leaf = json!({"timestamp": T0});
    assert_eq!(
        got[1],
        (
            "$aws/things/car/shadow/update/delta".to_owned(),
            json!({
                "state": {"lights": {"color": {"g": 255}}},
                "metadata": {"lights": {"color": {"g": leaf}}},
                "version": 1, "timestamp": T0
            })
        )
    );
    let doc = &f.publish("$aws/things/car/shadow/get", "")[0].1;
    assert_eq!(
        doc["state"]["delta"],
        json!({"lights": {"color": {"g": 255}}})
    );
    assert_eq!(
        doc["metadata"]["reported"],
        json!({"lights": {"color": {"r": leaf, "g": leaf, "b": leaf}}})
    );

    // Changing one nested leaf keeps the others' timestamps.
    f.tick(1);
    f.publish(
        "$aws/things/car/shadow/update",
        r#"{"state":{"reported":{"lights":{"color":{"g":255}}}}}"#,
    );
    let doc = &f.publish("$aws/things/car/shadow/get", "")[0].1;
    assert!(doc["state"].get("delta").is_none());
    assert_eq!(
        doc["metadata"]["reported"],
        json!({"lights": {"color": {"r": leaf, "g": {"timestamp": T0 + 1}, "b": leaf}}})
    );
}

#[test]
fn null_deletes_a_key_and_a_null_section_clears_it() {
    let f = memory();
    f.publish(
        "$aws/things/fan/shadow/update",
        r#"{"state":{"desired":{"speed":3,"mode":"auto"},"reported":{"speed":3}}}"#,
    );

    // The accepted document echoes the null, stamped like any leaf.
    let got = f.publish(
        "$aws/things/fan/shadow/update",
        r#"{"state":{"desired":{"mode":null}}}"#,
    );
    assert_eq!(
        got,
        replies(&[
            (
                "$aws/things/fan/shadow/update/accepted",
                json!({
                    "state": {"desired": {"mode": null}},
                    "metadata": {"desired": {"mode": {"timestamp": T0}}},
                    "version": 2, "timestamp": T0
                })
            ),
            (
                "$aws/things/fan/shadow/update/documents",
                json!({
                    "previous": {
                        "state": {"desired": {"speed": 3, "mode": "auto"}, "reported": {"speed": 3}},
                        "metadata": {
                            "desired": {"speed": {"timestamp": T0}, "mode": {"timestamp": T0}},
                            "reported": {"speed": {"timestamp": T0}}
                        },
                        "version": 1
                    },
                    "current": {
                        "state": {"desired": {"speed": 3}, "reported": {"speed": 3}},
                        "metadata": {
                            "desired": {"speed": {"timestamp": T0}},
                            "reported": {"speed": {"timestamp": T0}}
                        },
                        "version": 2
                    },
                    "timestamp": T0
                })
            ),
        ])
    );

    // The guide's example: report and drop desired in one update.
    let got = f.publish(
        "$aws/things/fan/shadow/update",
        r#"{"state":{"reported":{"speed":4},"desired":null}}"#,
    );
    assert_eq!(
        got[0].1,
        json!({
            "state": {"reported": {"speed": 4}, "desired": null},
            "metadata": {"reported": {"speed": {"timestamp": T0}}, "desired": {"timestamp": T0}},
            "version": 3, "timestamp": T0
        })
    );
    assert_eq!(
        f.publish("$aws/things/fan/shadow/get", "")[0].1,
        json!({
            "state": {"reported": {"speed": 4}},
            "metadata": {"reported": {"speed": {"timestamp": T0}}},
            "version": 3, "timestamp": T0
        })
    );

    // With both sections gone the shadow still exists, empty.
    f.publish(
        "$aws/things/fan/shadow/update",
        r#"{"state":{"reported":null}}"#,
    );
    assert_eq!(
        f.publish("$aws/things/fan/shadow/get", "")[0].1,
        json!({"state": {}, "metadata": {}, "version": 4, "timestamp": T0})
    );
}

#[test]
fn arrays_replace_whole_and_their_metadata_mirrors_them() {
    let f = memory();
    let got = f.publish(
        "$aws/things/rgb/shadow/update",
        r#"{"state":{"desired":{"colors":["RED","GREEN","BLUE"],"zones":[{"id":1}]}}}"#,
    );
    let ts = json!({"timestamp": T0});
    assert_eq!(
        got[0].1["metadata"],
        json!({"desired": {"colors": [ts, ts, ts], "zones": [{"id": ts}]}})
    );

    f.tick(1);
    let got = f.publish(
        "$aws/things/rgb/shadow/update",
        r#"{"state":{"desired":{"colors":["RED"]},"reported":{"colors":["RED","GREEN"],"zones":[{"id":1}]}}}"#,
    );
    // Arrays compare as values: the whole desired array is the delta.
    assert_eq!(
        got[1].1,
        json!({
            "state": {"colors": ["RED"]},
            "metadata": {"colors": [{"timestamp": T0 + 1}]},
            "version": 2, "timestamp": T0 + 1
        })
    );
    let doc = &f.publish("$aws/things/rgb/shadow/get", "")[0].1;
    assert_eq!(
        doc["state"]["desired"],
        json!({"colors": ["RED"], "zones": [{"id": 1}]})
    );
    assert_eq!(doc["state"]["delta"], json!({"colors": ["RED"]}));
}

#[test]
fn versions_guard_updates() {
    let f = memory();
    // A new shadow is at version 0.
    let got = f.publish(
        "$aws/things/v/shadow/update",
        r#"{"state":{"reported":{"a":1}},"version":0}"#,
    );
    assert_eq!(got[0].1["version"], 1);

    let got = f.publish(
        "$aws/things/v/shadow/update",
        r#"{"state":{"reported":{"a":2}},"version":1,"clientToken":"c"}"#,
    );
    assert_eq!(got[0].0, "$aws/things/v/shadow/update/accepted");
    assert_eq!(got[0].1["version"], 2);

    for stale in [1, 0, 5] {
        let got = f.publish(
            "$aws/things/v/shadow/update",
            &format!(r#"{{"state":{{"reported":{{"a":3}}}},"version":{stale},"clientToken":"c"}}"#),
        );
        assert_eq!(
            got,
            replies(&[(
                "$aws/things/v/shadow/update/rejected",
                json!({"code": 409, "message": "Version conflict", "timestamp": T0, "clientToken": "c"})
            )])
        );
    }
    assert_eq!(
        f.publish("$aws/things/v/shadow/get", "")[0].1["state"],
        json!({"reported": {"a": 2}})
    );
}

#[test]
fn delete_keeps_the_version_for_48_hours() {
    let f = memory();
    for n in 1..=3 {
        f.publish(
            &format!("{LAMP}/update"),
            &format!(r#"{{"state":{{"reported":{{"n":{n}}}}}}}"#),
        );
    }
    let got = f.publish(&format!("{LAMP}/delete"), r#"{"clientToken":"d-1"}"#);
    assert_eq!(
        got,
        replies(&[(
            "$aws/things/lamp/shadow/delete/accepted",
            json!({"version": 3, "timestamp": T0, "clientToken": "d-1"})
        )])
    );
    let not_found = json!({"code": 404, "message": "No shadow exists with name: 'lamp'"});
    assert_eq!(
        f.publish(&format!("{LAMP}/get"), ""),
        replies(&[("$aws/things/lamp/shadow/get/rejected", not_found.clone())])
    );
    // The payload of a delete is ignored, but for its client token.
    assert_eq!(
        f.publish(&format!("{LAMP}/delete"), "not json"),
        replies(&[("$aws/things/lamp/shadow/delete/rejected", not_found)])
    );

    // Re-created within 48 hours: the count goes on, and nothing before
    // the delete shows as `previous`.
    f.tick(47 * 3600);
    let got = f.publish(
        &format!("{LAMP}/update"),
        r#"{"state":{"reported":{"n":4}}}"#,
    );
    assert_eq!(got[0].1["version"], 4);
    assert_eq!(
        got[1].1,
        json!({
            "current": {
                "state": {"reported": {"n": 4}},
                "metadata": {"reported": {"n": {"timestamp": T0 + 47 * 3600}}},
                "version": 4
            },
            "timestamp": T0 + 47 * 3600
        })
    );

    // Deleted for longer than 48 hours: the count starts over.
    f.publish(&format!("{LAMP}/delete"), "");
    f.tick(48 * 3600 + 1);
    let got = f.publish(
        &format!("{LAMP}/update"),
        r#"{"state":{"reported":{"n":5}},"version":0}"#,
    );
    assert_eq!(got[0].1["version"], 1);
}

#[test]
fn named_shadows_have_their_own_topics_and_documents() {
    let f = memory();
    let cfg = "$aws/things/lamp/shadow/name/cfg";
    assert_eq!(
        f.publish(&format!("{cfg}/get"), ""),
        replies(&[(
            "$aws/things/lamp/shadow/name/cfg/get/rejected",
            json!({"code": 404, "message": "No shadow exists with name: 'lamp~cfg'"})
        )])
    );
    let got = f.publish(&format!("{cfg}/update"), r#"{"state":{"desired":{"x":1}}}"#);
    let topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "$aws/things/lamp/shadow/name/cfg/update/accepted",
            "$aws/things/lamp/shadow/name/cfg/update/delta",
            "$aws/things/lamp/shadow/name/cfg/update/documents"
        ]
    );
    f.publish(
        "$aws/things/lamp/shadow/name/$package/update",
        r#"{"state":{"reported":{}}}"#,
    );
    f.publish(
        &format!("{LAMP}/update"),
        r#"{"state":{"reported":{"on":true}}}"#,
    );

    // The classic shadow is separate and not listed among the named ones.
    assert_eq!(
        f.publish(&format!("{LAMP}/get"), "")[0].1["state"],
        json!({"reported": {"on": true}})
    );
    assert_eq!(
        f.shadows.list_named_shadows("lamp").unwrap(),
        ["$package", "cfg"]
    );
    f.publish(&format!("{cfg}/delete"), "");
    assert_eq!(f.shadows.list_named_shadows("lamp").unwrap(), ["$package"]);
}

#[test]
fn the_https_calls_give_the_same_documents() {
    let f = memory();
    let outcome = f
        .shadows
        .update(
            "lamp",
            None,
            br#"{"state":{"desired":{"on":true}},"clientToken":"h"}"#,
        )
        .unwrap();
    assert_eq!(outcome.version, 1);
    let mqtt_replies: Vec<_> = outcome
        .replies()
        .into_iter()
        .map(|r| (r.topic, serde_json::from_slice(&r.payload).unwrap()))
        .collect();
    assert_eq!(mqtt_replies[0].1, outcome.accepted);
    assert_eq!(Some(&mqtt_replies[1].1), outcome.delta.as_ref());
    assert_eq!(mqtt_replies[2].1, outcome.documents);

    let doc = f.shadows.get("lamp", None).unwrap();
    assert_eq!(
        doc.to_json(None),
        f.publish(&format!("{LAMP}/get"), "")[0].1
    );
    let deleted = f.shadows.delete("lamp", None).unwrap();
    assert_eq!(deleted.accepted, json!({"version": 1, "timestamp": T0}));
    assert_eq!(
        deleted.replies()[0].topic,
        "$aws/things/lamp/shadow/delete/accepted"
    );
    assert_eq!(f.shadows.get("lamp", None).unwrap_err().code(), 404);
}

#[test]
fn only_request_topics_are_handled() {
    let f = memory();
    for topic in [
        "$aws/things/lamp/shadow/update/accepted",
        "$aws/things/lamp/shadow/get/rejected",
        "$aws/things/lamp/jobs/get",
        "lamp/shadow/update",
    ] {
        assert!(
            f.shadows.handle_mqtt(topic, b"{}", &f.device).is_none(),
            "{topic}"
        );
    }
}
