//! The HTTPS device API driven by curl with real client certificates:
//! publishes reach MQTT subscribers, shadows answer as over MQTT, and the
//! device's policies decide what it may do.

mod common;

use civitas_testkit::external;
use common::{Fixture, Mqtt, operator};
use serde_json::{Value, json};

fn curl() -> Option<std::path::PathBuf> {
    external::require("curl")
}

fn without_timestamp(mut doc: Value) -> Value {
    if let Some(map) = doc.as_object_mut() {
        map.remove("timestamp");
    }
    doc
}

#[tokio::test]
async fn a_publish_over_https_reaches_an_mqtt_subscriber() -> anyhow::Result<()> {
    let Some(curl) = curl() else { return Ok(()) };
    let fx = Fixture::start().await?;
    let lamp = fx.device("lamp-1")?;
    let cc = fx.broker.device("control-center")?;
    fx.registry.register(&cc, vec![operator()]);
    let mut watcher = Mqtt::connect(&fx.broker, &cc).await?;
    watcher.subscribe("city/#").await?;
    let http = fx.curl(&curl);

    let answer = http
        .ok(
            &lamp,
            "POST",
            "/topics/city%2Fnorth%2Fthings%2Flamp-1%2Ftelemetry?qos=1",
            Some(br#"{"power_w":42}"#),
        )
        .await?;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["message"], "OK");
    assert_eq!(answer.body["traceId"].as_str().map(str::len), Some(36));
    let p = watcher.next().await?;
    assert_eq!(p.topic, "city/north/things/lamp-1/telemetry");
    assert_eq!(&p.payload[..], br#"{"power_w":42}"#);
    assert_eq!(p.qos, rumqttc::QoS::AtLeastOnce);

    // Unencoded slashes name the same topic.
    let answer = http
        .ok(
            &lamp,
            "POST",
            "/topics/city/north/things/lamp-1/status",
            Some(b"on"),
        )
        .await?;
    assert_eq!(answer.status, 200);
    assert_eq!(
        watcher.next().await?.topic,
        "city/north/things/lamp-1/status"
    );
    Ok(())
}

#[tokio::test]
async fn publishes_outside_the_devices_policy_are_forbidden() -> anyhow::Result<()> {
    let Some(curl) = curl() else { return Ok(()) };
    let fx = Fixture::start().await?;
    let lamp = fx.device("lamp-1")?;
    let cc = fx.broker.device("control-center")?;
    fx.registry.register(&cc, vec![operator()]);
    let mut watcher = Mqtt::connect(&fx.broker, &cc).await?;
    watcher.subscribe("city/#").await?;
    let http = fx.curl(&curl);

    let forged = http
        .ok(
            &lamp,
            "POST",
            "/topics/city/north/things/lamp-2/telemetry",
            Some(b"x"),
        )
        .await?;
    assert_eq!(forged.status, 403);
    assert_eq!(forged.body["message"], "Forbidden");
    assert!(forged.body["traceId"].is_string());

    // The standard policy grants no iot:RetainPublish.
    let retained = http
        .ok(
            &lamp,
            "POST",
            "/topics/city/north/things/lamp-1/status?retain=true",
            Some(b"x"),
        )
        .await?;
    assert_eq!(retained.status, 403);
    assert!(watcher.quiet().await, "a refused publish was delivered");

    // A certificate the registry does not know gets nothing.
    let stranger = fx.broker.device("lamp-9")?;
    let answer = http
        .ok(
            &stranger,
            "POST",
            "/topics/city/north/things/lamp-9/telemetry",
            Some(b"x"),
        )
        .await?;
    assert_eq!(answer.status, 403);
    Ok(())
}

#[tokio::test]
async fn bad_publish_requests_are_refused_with_aws_errors() -> anyhow::Result<()> {
    let Some(curl) = curl() else { return Ok(()) };
    let fx = Fixture::start().await?;
    let lamp = fx.device("lamp-1")?;
    let http = fx.curl(&curl);
    let topic = "/topics/city/north/things/lamp-1/telemetry";
    for query in ["?qos=2", "?qos=x", "?retain=yes"] {
        let answer = http
            .ok(&lamp, "POST", &format!("{topic}{query}"), Some(b"x"))
            .await?;
        assert_eq!(answer.status, 400, "{query}: {:?}", answer.body);
        assert!(answer.body["message"].is_string());
    }
    let wildcard = http
        .ok(
            &lamp,
            "POST",
            "/topics/city/north/things/%2B/telemetry",
            Some(b"x"),
        )
        .await?;
    assert_eq!(wildcard.status, 400);
    let big = vec![b'a'; 128 * 1024 + 1];
    let answer = http.ok(&lamp, "POST", topic, Some(&big)).await?;
    assert_eq!(answer.status, 413);
    let answer = http.ok(&lamp, "GET", topic, None).await?;
    assert_eq!(answer.status, 405);
    let answer = http.ok(&lamp, "GET", "/nothing/here", None).await?;
    assert_eq!(answer.status, 404);
    // Exactly the limit is fine.
    let limit = vec![b'a'; 128 * 1024];
    assert_eq!(
        http.ok(&lamp, "POST", topic, Some(&limit)).await?.status,
        200
    );
    Ok(())
}

#[tokio::test]
async fn shadow_requests_over_https_match_mqtt() -> anyhow::Result<()> {
    let Some(curl) = curl() else { return Ok(()) };
    let fx = Fixture::start().await?;
    let lamp = fx.device("lamp-2")?;
    let mut mqtt = Mqtt::connect(&fx.broker, &lamp).await?;
    mqtt.subscribe("$aws/things/lamp-2/shadow/#").await?;
    let http = fx.curl(&curl);
    let shadow = "/things/lamp-2/shadow";

    // Not there yet: the same 404 document both ways.
    let missing = http.ok(&lamp, "GET", shadow, None).await?;
    assert_eq!(missing.status, 404);
    mqtt.client
        .publish(
            "$aws/things/lamp-2/shadow/get",
            rumqttc::QoS::AtLeastOnce,
            false,
            "",
        )
        .await?;
    let rejected = mqtt
        .next_on("$aws/things/lamp-2/shadow/get/rejected")
        .await?;
    assert_eq!(missing.body, rejected);
    assert_eq!(
        missing.body,
        json!({"code": 404, "message": "No shadow exists with name: 'lamp-2'"})
    );

    // An update over HTTPS answers with /update/accepted, which MQTT
    // subscribers also receive, followed by the delta.
    let update = br#"{"state":{"desired":{"on":true}},"clientToken":"t1"}"#;
    let accepted = http.ok(&lamp, "POST", shadow, Some(update)).await?;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    assert_eq!(accepted.body["version"], 1);
    assert_eq!(accepted.body["clientToken"], "t1");
    let published = mqtt
        .next_on("$aws/things/lamp-2/shadow/update/accepted")
        .await?;
    assert_eq!(accepted.body, published);
    let delta = mqtt
        .next_on("$aws/things/lamp-2/shadow/update/delta")
        .await?;
    assert_eq!(delta["state"], json!({"on": true}));

    // The same document over both.
    let got = http.ok(&lamp, "GET", shadow, None).await?;
    assert_eq!(got.status, 200);
    mqtt.client
        .publish(
            "$aws/things/lamp-2/shadow/get",
            rumqttc::QoS::AtLeastOnce,
            false,
            "",
        )
        .await?;
    let over_mqtt = mqtt
        .next_on("$aws/things/lamp-2/shadow/get/accepted")
        .await?;
    assert_eq!(without_timestamp(got.body), without_timestamp(over_mqtt));

    // Errors carry the shadow service's codes: a stale version is 409.
    let stale = http
        .ok(
            &lamp,
            "POST",
            shadow,
            Some(br#"{"state":{"reported":{"on":true}},"version":7}"#),
        )
        .await?;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.body["code"], 409);
    assert_eq!(stale.body["message"], "Version conflict");
    let invalid = http.ok(&lamp, "POST", shadow, Some(b"not json")).await?;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.body["message"], "Invalid JSON");

    // Delete, then it is gone.
    let deleted = http.ok(&lamp, "DELETE", shadow, None).await?;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body["version"], 1);
    let published = mqtt
        .next_on("$aws/things/lamp-2/shadow/delete/accepted")
        .await?;
    assert_eq!(deleted.body, published);
    assert_eq!(http.ok(&lamp, "GET", shadow, None).await?.status, 404);
    assert_eq!(http.ok(&lamp, "DELETE", shadow, None).await?.status, 404);

    // Named shadows by ?name=.
    let named = "/things/lamp-2/shadow?name=settings";
    let accepted = http
        .ok(
            &lamp,
            "POST",
            named,
            Some(br#"{"state":{"reported":{"level":3}}}"#),
        )
        .await?;
    assert_eq!(accepted.status, 200);
    let published = mqtt
        .next_on("$aws/things/lamp-2/shadow/name/settings/update/accepted")
        .await?;
    assert_eq!(accepted.body, published);
    let got = http.ok(&lamp, "GET", named, None).await?;
    assert_eq!(got.body["state"]["reported"], json!({"level": 3}));
    assert_eq!(fx.shadows.get("lamp-2", Some("settings"))?.version, 1);
    Ok(())
}

#[tokio::test]
async fn another_devices_shadow_is_forbidden() -> anyhow::Result<()> {
    let Some(curl) = curl() else { return Ok(()) };
    let fx = Fixture::start().await?;
    let owner = fx.device("lamp-2")?;
    let other = fx.device("lamp-3")?;
    let http = fx.curl(&curl);
    let update = br#"{"state":{"desired":{"on":true}}}"#;
    assert_eq!(
        http.ok(&owner, "POST", "/things/lamp-2/shadow", Some(update))
            .await?
            .status,
        200
    );
    for (method, body) in [("GET", None), ("POST", Some(&update[..])), ("DELETE", None)] {
        let answer = http
            .ok(&other, method, "/things/lamp-2/shadow", body)
            .await?;
        assert_eq!(answer.status, 403, "{method}: {:?}", answer.body);
        assert_eq!(answer.body["message"], "Forbidden");
        let named = http
            .ok(&other, method, "/things/lamp-2/shadow?name=settings", body)
            .await?;
        assert_eq!(named.status, 403, "{method} named");
    }
    // Untouched by the refused requests.
    assert_eq!(fx.shadows.get("lamp-2", None)?.version, 1);
    Ok(())
}

#[tokio::test]
async fn a_client_without_a_certificate_never_reaches_http() -> anyhow::Result<()> {
    let Some(curl) = curl() else { return Ok(()) };
    let fx = Fixture::start().await?;
    let http = fx.curl(&curl);
    let refused = http
        .request(
            None,
            "POST",
            "/topics/city/north/things/lamp-1/telemetry",
            Some(b"x"),
        )
        .await?;
    assert!(
        matches!(refused, Err(code) if code != 0),
        "expected a TLS failure, got {refused:?}"
    );
    // Nor does one from a CA civitas does not trust.
    let foreign = fx.broker.pki.foreign_device("lamp-1")?;
    let refused = http
        .request(Some(&foreign), "GET", "/things/lamp-1/shadow", None)
        .await?;
    assert!(matches!(refused, Err(code) if code != 0), "{refused:?}");
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_the_listener() -> anyhow::Result<()> {
    let Some(curl) = curl() else { return Ok(()) };
    let fx = Fixture::start().await?;
    let lamp = fx.device("lamp-1")?;
    let http = fx.curl(&curl);
    assert_eq!(
        http.ok(&lamp, "GET", "/things/lamp-1/shadow", None)
            .await?
            .status,
        404
    );
    fx.shutdown.cancel();
    tokio::time::timeout(common::TIMEOUT, fx.served)
        .await
        .map_err(|_| anyhow::anyhow!("the API did not stop"))???;
    let after = http
        .request(Some(&lamp), "GET", "/things/lamp-1/shadow", None)
        .await?;
    assert!(matches!(after, Err(code) if code != 0), "{after:?}");
    Ok(())
}
