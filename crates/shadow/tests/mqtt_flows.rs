//! The AWS documented shadow flows through a running broker, over MQTT
//! 3.1.1 and MQTT 5: an operator sets `desired`, the device receives the
//! delta and reports, gets, deletes; errors arrive on `/rejected` with
//! AWS's codes; shadows survive a broker restart. Whole documents are
//! compared, with timestamps normalized to "T".

mod mqtt;

use civitas_testkit::{TestBroker, TestBrokerOptions};
use mqtt::{Client, Protocol, expect, shadow_factory};
use serde_json::json;

const LAMP: &str = "$aws/things/lamp-1/shadow";

async fn broker() -> anyhow::Result<TestBroker> {
    TestBroker::start_with_services(TestBrokerOptions::with_anonymous(), vec![shadow_factory()])
        .await
}

/// The device, subscribed to every reply of its classic shadow.
async fn lamp(broker: &TestBroker, protocol: Protocol) -> anyhow::Result<Client> {
    let mut device = Client::device(broker, &broker.device("lamp-1")?, protocol).await?;
    for op in ["update", "get", "delete"] {
        device.subscribed(&format!("{LAMP}/{op}/+")).await?;
    }
    Ok(device)
}

async fn documented_flow(protocol: Protocol) -> anyhow::Result<()> {
    let broker = broker().await?;
    let mut device = lamp(&broker, protocol).await?;
    let mut operator = Client::operator(&broker, protocol).await?;
    let update = format!("{LAMP}/update");
    let t = json!({"timestamp": "T"});

    // The operator asks for power: the device sees accepted, the delta
    // and the documents, in that order.
    operator
        .publish(
            &update,
            r#"{"state":{"desired":{"power":"on"}},"clientToken":"app-1"}"#,
        )
        .await?;
    let desired = json!({"power": "on"});
    let desired_meta = json!({"power": t});
    assert_eq!(
        device.replies(3).await?,
        expect(&[
            (
                "$aws/things/lamp-1/shadow/update/accepted",
                json!({
                    "state": {"desired": desired},
                    "metadata": {"desired": desired_meta},
                    "version": 1, "timestamp": "T", "clientToken": "app-1"
                })
            ),
            (
                "$aws/things/lamp-1/shadow/update/delta",
                json!({
                    "state": desired, "metadata": desired_meta,
                    "version": 1, "timestamp": "T", "clientToken": "app-1"
                })
            ),
            (
                "$aws/things/lamp-1/shadow/update/documents",
                json!({
                    "current": {
                        "state": {"desired": desired},
                        "metadata": {"desired": desired_meta},
                        "version": 1
                    },
                    "timestamp": "T", "clientToken": "app-1"
                })
            ),
        ])
    );

    // The device reports what it did: no delta any more.
    device
        .publish(
            &update,
            r#"{"state":{"reported":{"power":"on","lux":12}},"clientToken":"dev-1"}"#,
        )
        .await?;
    let reported = json!({"power": "on", "lux": 12});
    let reported_meta = json!({"power": t, "lux": t});
    let in_sync = json!({
        "state": {"desired": desired, "reported": reported},
        "metadata": {"desired": desired_meta, "reported": reported_meta},
        "version": 2
    });
    assert_eq!(
        device.replies(2).await?,
        expect(&[
            (
                "$aws/things/lamp-1/shadow/update/accepted",
                json!({
                    "state": {"reported": reported},
                    "metadata": {"reported": reported_meta},
                    "version": 2, "timestamp": "T", "clientToken": "dev-1"
                })
            ),
            (
                "$aws/things/lamp-1/shadow/update/documents",
                json!({
                    "previous": {
                        "state": {"desired": desired},
                        "metadata": {"desired": desired_meta},
                        "version": 1
                    },
                    "current": in_sync,
                    "timestamp": "T", "clientToken": "dev-1"
                })
            ),
        ])
    );

    // A stale version is refused with 409 and changes nothing.
    operator
        .publish(
            &update,
            r#"{"state":{"desired":{"power":"off"}},"version":1,"clientToken":"app-2"}"#,
        )
        .await?;
    assert_eq!(
        device.reply().await?,
        (
            "$aws/things/lamp-1/shadow/update/rejected".to_owned(),
            json!({"code": 409, "message": "Version conflict", "timestamp": "T", "clientToken": "app-2"})
        )
    );

    // With the right version the change goes through and opens a delta,
    // which get then shows.
    operator
        .publish(
            &update,
            r#"{"state":{"desired":{"power":"off"}},"version":2,"clientToken":"app-3"}"#,
        )
        .await?;
    let topics: Vec<String> = device.replies(3).await?.into_iter().map(|r| r.0).collect();
    assert_eq!(
        topics,
        [
            "$aws/things/lamp-1/shadow/update/accepted",
            "$aws/things/lamp-1/shadow/update/delta",
            "$aws/things/lamp-1/shadow/update/documents"
        ]
    );
    device
        .publish(&format!("{LAMP}/get"), r#"{"clientToken":"g-1"}"#)
        .await?;
    assert_eq!(
        device.reply().await?,
        (
            "$aws/things/lamp-1/shadow/get/accepted".to_owned(),
            json!({
                "state": {
                    "desired": {"power": "off"},
                    "reported": reported,
                    "delta": {"power": "off"}
                },
                "metadata": {"desired": desired_meta, "reported": reported_meta},
                "version": 3, "timestamp": "T", "clientToken": "g-1"
            })
        )
    );

    // Malformed requests get AWS's 400 documents.
    device.publish(&update, "{").await?;
    assert_eq!(
        device.reply().await?,
        (
            "$aws/things/lamp-1/shadow/update/rejected".to_owned(),
            json!({"code": 400, "message": "Invalid JSON", "timestamp": "T"})
        )
    );
    device
        .publish(&update, r#"{"state":{"desired":"on"},"clientToken":"bad"}"#)
        .await?;
    assert_eq!(
        device.reply().await?,
        (
            "$aws/things/lamp-1/shadow/update/rejected".to_owned(),
            json!({"code": 400, "message": "Desired node must be an object", "timestamp": "T", "clientToken": "bad"})
        )
    );

    // Delete, then the shadow is gone (404), and a new one continues the
    // version count.
    device
        .publish(&format!("{LAMP}/delete"), r#"{"clientToken":"d-1"}"#)
        .await?;
    assert_eq!(
        device.reply().await?,
        (
            "$aws/things/lamp-1/shadow/delete/accepted".to_owned(),
            json!({"version": 3, "timestamp": "T", "clientToken": "d-1"})
        )
    );
    device.publish(&format!("{LAMP}/get"), "").await?;
    assert_eq!(
        device.reply().await?,
        (
            "$aws/things/lamp-1/shadow/get/rejected".to_owned(),
            json!({"code": 404, "message": "No shadow exists with name: 'lamp-1'"})
        )
    );
    device
        .publish(&update, r#"{"state":{"reported":{"power":"on"}}}"#)
        .await?;
    let (topic, accepted) = device.reply().await?;
    assert_eq!(topic, "$aws/things/lamp-1/shadow/update/accepted");
    assert_eq!(accepted["version"], 4);
    Ok(())
}

#[tokio::test]
async fn documented_flow_over_mqtt_3_1_1() -> anyhow::Result<()> {
    documented_flow(Protocol::V4).await
}

#[tokio::test]
async fn documented_flow_over_mqtt_5() -> anyhow::Result<()> {
    documented_flow(Protocol::V5).await
}

#[tokio::test]
async fn named_shadows_answer_on_their_own_topics() -> anyhow::Result<()> {
    let broker = broker().await?;
    let mut device = lamp(&broker, Protocol::V5).await?;
    let config = format!("{LAMP}/name/config");
    device.subscribed(&format!("{config}/update/+")).await?;
    device
        .publish(
            &format!("{config}/update"),
            r#"{"state":{"reported":{"interval":60}},"clientToken":"n-1"}"#,
        )
        .await?;
    let got = device.replies(2).await?;
    assert_eq!(
        got[0],
        (
            "$aws/things/lamp-1/shadow/name/config/update/accepted".to_owned(),
            json!({
                "state": {"reported": {"interval": 60}},
                "metadata": {"reported": {"interval": {"timestamp": "T"}}},
                "version": 1, "timestamp": "T", "clientToken": "n-1"
            })
        )
    );
    assert_eq!(
        got[1].0,
        "$aws/things/lamp-1/shadow/name/config/update/documents"
    );
    // The classic shadow is a different one and does not exist.
    device.publish(&format!("{LAMP}/get"), "").await?;
    assert_eq!(
        device.reply().await?,
        (
            "$aws/things/lamp-1/shadow/get/rejected".to_owned(),
            json!({"code": 404, "message": "No shadow exists with name: 'lamp-1'"})
        )
    );
    Ok(())
}

#[tokio::test]
async fn shadows_survive_a_broker_restart() -> anyhow::Result<()> {
    let mut broker = broker().await?;
    let update = format!("{LAMP}/update");
    {
        let mut device = lamp(&broker, Protocol::V4).await?;
        device
            .publish(
                &update,
                r#"{"state":{"desired":{"power":"on"},"reported":{"power":"off"}}}"#,
            )
            .await?;
        device.replies(3).await?;
        device
            .publish(&update, r#"{"state":{"reported":{"lux":3}}}"#)
            .await?;
        device.replies(3).await?;
    }
    broker.restart().await?;

    let mut device = lamp(&broker, Protocol::V5).await?;
    device
        .publish(&format!("{LAMP}/get"), r#"{"clientToken":"after"}"#)
        .await?;
    let t = json!({"timestamp": "T"});
    assert_eq!(
        device.reply().await?,
        (
            "$aws/things/lamp-1/shadow/get/accepted".to_owned(),
            json!({
                "state": {
                    "desired": {"power": "on"},
                    "reported": {"power": "off", "lux": 3},
                    "delta": {"power": "on"}
                },
                "metadata": {
                    "desired": {"power": t},
                    "reported": {"power": t, "lux": t}
                },
                "version": 2, "timestamp": "T", "clientToken": "after"
            })
        )
    );
    // The version count goes on from the stored one.
    device
        .publish(
            &update,
            r#"{"state":{"reported":{"power":"on"}},"version":2}"#,
        )
        .await?;
    let (topic, accepted) = device.reply().await?;
    assert_eq!(topic, "$aws/things/lamp-1/shadow/update/accepted");
    assert_eq!(accepted["version"], 3);
    Ok(())
}
