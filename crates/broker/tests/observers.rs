//! Observers see every routed message; the handle publishes as the broker
//! or on a client's behalf.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use civitas_broker::{BrokerHandle, HandleError, MessageObserver};
use civitas_store::StoredMessage;
use civitas_testkit::{TestBroker, TestBrokerOptions};
use common::V4Client;
use parking_lot::Mutex;
use rumqttc::QoS;

#[derive(Debug, Default)]
struct Seen(Mutex<Vec<(String, Option<String>)>>);

impl MessageObserver for Seen {
    fn observe(&self, message: &Arc<StoredMessage>, publisher: Option<&str>) {
        self.0
            .lock()
            .push((message.topic.clone(), publisher.map(str::to_string)));
    }
}

#[tokio::test]
async fn a_handle_before_the_broker_runs_says_so() {
    let handle = BrokerHandle::default();
    assert_eq!(
        handle.publish(
            "x",
            Bytes::new(),
            civitas_mqtt::QoS::AtMostOnce,
            false,
            Default::default()
        ),
        Err(HandleError::NotRunning)
    );
}

#[tokio::test]
async fn observers_see_client_messages_and_the_handle_publishes() -> anyhow::Result<()> {
    let seen = Arc::new(Seen::default());
    let observer: Arc<dyn MessageObserver> = seen.clone();
    let broker = TestBroker::start_observed(TestBrokerOptions::default(), observer).await?;
    let cc = broker.device("control-center")?;
    let mut watcher = V4Client::connect(broker.mqtt_options(&cc).await?).await?;
    watcher.client.subscribe("city/#", QoS::AtLeastOnce).await?;
    watcher.suback().await?;

    let lamp = broker.device("lamp-1")?;
    let device = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    device
        .client
        .publish(
            "city/a/things/lamp-1/telemetry",
            QoS::AtLeastOnce,
            false,
            "21",
        )
        .await?;
    watcher.next_publish().await?;
    assert!(seen.0.lock().contains(&(
        "city/a/things/lamp-1/telemetry".to_string(),
        Some("lamp-1".to_string())
    )));

    let published = broker.handle().publish(
        "city/a/things/lamp-1/cmd/power",
        Bytes::from_static(b"on"),
        civitas_mqtt::QoS::AtLeastOnce,
        false,
        Default::default(),
    )?;
    assert_eq!(published.receivers, 1);
    let p = watcher.next_publish().await?;
    assert_eq!(p.topic, "city/a/things/lamp-1/cmd/power");
    assert_eq!(&p.payload[..], b"on");
    assert!(
        seen.0
            .lock()
            .contains(&("city/a/things/lamp-1/cmd/power".to_string(), None))
    );

    // On a client's behalf (the HTTPS data plane): observers see that
    // client as the publisher.
    broker.handle().publish_from(
        "lamp-1",
        "city/a/things/lamp-1/status",
        Bytes::from_static(b"ok"),
        civitas_mqtt::QoS::AtLeastOnce,
        false,
        Default::default(),
    )?;
    assert_eq!(
        watcher.next_publish().await?.topic,
        "city/a/things/lamp-1/status"
    );
    assert!(seen.0.lock().contains(&(
        "city/a/things/lamp-1/status".to_string(),
        Some("lamp-1".to_string())
    )));
    Ok(())
}
