//! Presence events: `$aws/events/presence/connected/{clientId}` and
//! `.../disconnected/{clientId}` in AWS IoT's JSON shape.

mod common;

use civitas_testkit::{TestBroker, TestBrokerOptions};
use common::V4Client;
use rumqttc::QoS;

#[tokio::test]
async fn connect_and_disconnect_are_announced() -> anyhow::Result<()> {
    let broker = TestBroker::start_with(TestBrokerOptions::with_anonymous()).await?;
    let anon = broker.addr_of("anon");
    let mut watcher = V4Client::connect(rumqttc::MqttOptions::new(
        "ops-watcher",
        "127.0.0.1",
        anon.port(),
    ))
    .await?;
    watcher
        .client
        .subscribe("$aws/events/presence/#", QoS::AtLeastOnce)
        .await?;
    watcher.suback().await?;

    let lamp = broker.device("lamp-1")?;
    let device = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    let connected = watcher.next_publish().await?;
    assert_eq!(connected.topic, "$aws/events/presence/connected/lamp-1");
    let c: serde_json::Value = serde_json::from_slice(&connected.payload)?;
    assert_eq!(c["clientId"], "lamp-1");
    assert_eq!(c["eventType"], "connected");
    assert_eq!(c["principalIdentifier"], lamp.serial_hex.as_str());
    assert!(c["timestamp"].as_u64().is_some_and(|t| t > 0));
    assert_eq!(c["sessionIdentifier"].as_str().map(str::len), Some(36));

    device.kill();
    let gone = watcher.next_publish().await?;
    assert_eq!(gone.topic, "$aws/events/presence/disconnected/lamp-1");
    let d: serde_json::Value = serde_json::from_slice(&gone.payload)?;
    assert_eq!(d["eventType"], "disconnected");
    assert_eq!(d["disconnectReason"], "CONNECTION_LOST");
    assert_eq!(d["clientInitiatedDisconnect"], false);
    assert_eq!(d["sessionIdentifier"], c["sessionIdentifier"]);
    assert_eq!(d["versionNumber"], c["versionNumber"]);

    // A clean DISCONNECT is reported as the client's own.
    let device = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    let again = watcher.next_publish().await?;
    let a: serde_json::Value = serde_json::from_slice(&again.payload)?;
    assert!(a["versionNumber"].as_u64() > c["versionNumber"].as_u64());
    device.client.disconnect().await?;
    let bye = watcher.next_publish().await?;
    let b: serde_json::Value = serde_json::from_slice(&bye.payload)?;
    assert_eq!(b["disconnectReason"], "CLIENT_INITIATED_DISCONNECT");
    assert_eq!(b["clientInitiatedDisconnect"], true);
    Ok(())
}
