//! MQTT 3.1.1 over mutual TLS with rumqttc as the peer: publish and
//! subscribe at every QoS, retained messages, wills, persistent sessions,
//! and the refusal of bad certificates and spoofed client ids.

mod common;

use bytes::Bytes;
use civitas_testkit::TestBroker;
use common::{V4Client, connect_fails};
use rumqttc::QoS;

const T: &str = "city/centre/things";

#[tokio::test]
async fn publish_and_subscribe_each_qos() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let lamp = broker.device("lamp-1")?;
    let cc = broker.device("control-center")?;
    let mut sub = V4Client::connect(broker.mqtt_options(&cc).await?).await?;
    sub.client.subscribe("city/#", QoS::ExactlyOnce).await?;
    let ack = sub.suback().await?;
    assert_eq!(
        ack.return_codes,
        vec![rumqttc::SubscribeReasonCode::Success(QoS::ExactlyOnce)]
    );

    let publisher = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let topic = format!("{T}/lamp-1/telemetry/{i}");
        publisher
            .client
            .publish(&topic, qos, false, format!("reading {i}"))
            .await?;
        let p = sub.next_publish().await?;
        assert_eq!(p.topic, topic);
        assert_eq!(p.qos, qos);
        assert_eq!(p.payload, Bytes::from(format!("reading {i}")));
    }
    Ok(())
}

#[tokio::test]
async fn retained_message_is_sent_on_subscribe_and_cleared_by_empty_payload() -> anyhow::Result<()>
{
    let broker = TestBroker::start().await?;
    let lamp = broker.device("lamp-2")?;
    let topic = format!("{T}/lamp-2/state");
    let publisher = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    publisher
        .client
        .publish(&topic, QoS::AtLeastOnce, true, "on")
        .await?;

    let cc = broker.device("control-center")?;
    let mut sub = V4Client::connect(broker.mqtt_options(&cc).await?).await?;
    sub.client.subscribe(&topic, QoS::AtLeastOnce).await?;
    let p = sub.next_publish().await?;
    assert!(p.retain);
    assert_eq!(p.payload, Bytes::from("on"));

    // Clear it, then a new subscriber gets nothing retained.
    publisher
        .client
        .publish(&topic, QoS::AtLeastOnce, true, "")
        .await?;
    let cleared = sub.next_publish().await?;
    assert!(cleared.payload.is_empty());
    sub.client.unsubscribe(&topic).await?;
    sub.next_incoming("UNSUBACK", |p| matches!(p, rumqttc::Packet::UnsubAck(_)))
        .await?;
    sub.client.subscribe(&topic, QoS::AtLeastOnce).await?;
    sub.suback().await?;
    publisher
        .client
        .publish(&topic, QoS::AtLeastOnce, false, "marker")
        .await?;
    let next = sub.next_publish().await?;
    assert_eq!(
        next.payload,
        Bytes::from("marker"),
        "a cleared retained message must not be sent"
    );
    Ok(())
}

#[tokio::test]
async fn will_is_published_when_the_device_vanishes() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let cc = broker.device("control-center")?;
    let mut sub = V4Client::connect(broker.mqtt_options(&cc).await?).await?;
    sub.client.subscribe("city/#", QoS::AtLeastOnce).await?;
    sub.suback().await?;

    let lamp = broker.device("lamp-3")?;
    let mut opts = broker.mqtt_options(&lamp).await?;
    let will_topic = format!("{T}/lamp-3/status");
    opts.set_last_will(rumqttc::LastWill::new(
        &will_topic,
        "offline",
        QoS::AtLeastOnce,
        false,
    ));
    let dev = V4Client::connect(opts).await?;
    dev.kill();
    let p = sub.next_publish().await?;
    assert_eq!(p.topic, will_topic);
    assert_eq!(p.payload, Bytes::from("offline"));
    Ok(())
}

#[tokio::test]
async fn persistent_session_receives_what_was_sent_while_offline_even_across_restart()
-> anyhow::Result<()> {
    let mut broker = TestBroker::start().await?;
    let cc = broker.device("control-center")?;
    let mut opts = broker.mqtt_options(&cc).await?;
    opts.set_clean_session(false);
    let mut sub = V4Client::connect(opts.clone()).await?;
    sub.client
        .subscribe("city/+/things/+/telemetry", QoS::AtLeastOnce)
        .await?;
    sub.suback().await?;
    sub.client.disconnect().await?;
    sub.closed().await.ok();

    let lamp = broker.device("lamp-4")?;
    let publisher = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    for i in 0..5 {
        publisher
            .client
            .publish(
                format!("{T}/lamp-4/telemetry"),
                QoS::AtLeastOnce,
                false,
                format!("{i}"),
            )
            .await?;
    }
    publisher.client.disconnect().await?;
    // Wait until the broker has accepted all five (acked means durable).
    civitas_testkit::wait_for("5 messages received", common::TIMEOUT, || {
        broker
            .stats()
            .messages_received
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 5
    })
    .await?;
    broker.restart().await?;

    let mut sub = V4Client::connect(opts).await?;
    for i in 0..5 {
        let p = sub.next_publish().await?;
        assert_eq!(p.payload, Bytes::from(format!("{i}")));
    }
    Ok(())
}

#[tokio::test]
async fn foreign_expired_and_missing_certificates_are_refused() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let foreign = broker.pki.foreign_device("lamp-5")?;
    let err = connect_fails(broker.mqtt_options(&foreign).await?).await?;
    assert!(!err.is_empty());
    let expired = broker.pki.expired_device("lamp-6")?;
    connect_fails(broker.mqtt_options(&expired).await?).await?;

    let ca = broker.pki.ca_bundle();
    let no_cert = broker
        .mqtt_options_with("lamp-7", civitas_testkit::ClientTls::ServerOnly(&ca))
        .await?;
    connect_fails(no_cert).await?;
    civitas_testkit::wait_for("three TLS failures counted", common::TIMEOUT, || {
        broker
            .stats()
            .tls_failures
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn spoofed_client_id_is_refused() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let lamp = broker.device("lamp-8")?;
    let mut opts = broker.mqtt_options(&lamp).await?;
    opts.set_client_id("lamp-9".to_string());
    let err = connect_fails(opts).await?;
    assert!(err.contains("BadClientId"), "{err}");
    Ok(())
}

#[tokio::test]
async fn device_cannot_publish_or_subscribe_outside_its_tree() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let lamp = broker.device("lamp-10")?;
    let mut c = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    c.client.subscribe("city/#", QoS::AtLeastOnce).await?;
    let ack = c.suback().await?;
    assert_eq!(
        ack.return_codes,
        vec![rumqttc::SubscribeReasonCode::Failure]
    );
    c.client
        .subscribe(format!("{T}/lamp-10/#"), QoS::AtLeastOnce)
        .await?;
    let ack = c.suback().await?;
    assert_eq!(
        ack.return_codes,
        vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    c.client
        .publish(
            format!("{T}/lamp-11/telemetry"),
            QoS::AtLeastOnce,
            false,
            "x",
        )
        .await?;
    civitas_testkit::wait_for("publish denied", common::TIMEOUT, || {
        broker
            .stats()
            .publish_denied
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    })
    .await?;
    Ok(())
}
