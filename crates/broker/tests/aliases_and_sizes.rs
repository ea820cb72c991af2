//! Topic aliases in both directions and the two Maximum Packet Sizes: the
//! broker's, which closes a client that exceeds it, and the client's,
//! which the broker respects by not sending what would not fit.

mod common;

use civitas_mqtt::{Connect, Packet, Protocol, Publish, QoS, ReasonCode};
use civitas_testkit::{TestBroker, TestBrokerOptions};
use common::raw::{RawClient, ack, connect_packet, publish_packet};
use common::v5::{V5Client, topic};

async fn anon_broker() -> anyhow::Result<TestBroker> {
    TestBroker::start_with(TestBrokerOptions::with_anonymous()).await
}

fn aliased(topic: &str, alias: u16, payload: &str) -> Publish {
    let mut p = publish_packet(topic, QoS::AtMostOnce, None, payload);
    p.properties.topic_alias = Some(alias);
    p
}

#[tokio::test]
async fn inbound_alias_is_learned_reused_and_remapped() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut sub = RawClient::v5(addr, "alias-sub").await?;
    sub.subscribe("meters/#", QoS::AtMostOnce).await?;

    let mut c = RawClient::v5(addr, "alias-pub").await?;
    c.send(&Packet::Publish(aliased("meters/1/kwh", 1, "a")))
        .await?;
    c.send(&Packet::Publish(aliased("", 1, "b"))).await?;
    c.send(&Packet::Publish(aliased("meters/2/kwh", 1, "c")))
        .await?;
    c.send(&Packet::Publish(aliased("", 1, "d"))).await?;
    let mut qos1 = aliased("", 1, "e");
    qos1.qos = QoS::AtLeastOnce;
    qos1.packet_id = Some(1);
    c.send(&Packet::Publish(qos1)).await?;
    assert_eq!(c.recv().await?, Packet::PubAck(ack(1)));

    for (t, payload) in [
        ("meters/1/kwh", "a"),
        ("meters/1/kwh", "b"),
        ("meters/2/kwh", "c"),
        ("meters/2/kwh", "d"),
        ("meters/2/kwh", "e"),
    ] {
        let p = sub.recv_publish().await?;
        assert_eq!((p.topic.as_str(), &p.payload[..]), (t, payload.as_bytes()));
        // The subscriber did not ask for aliases: the publisher's alias is
        // not passed on.
        assert_eq!(p.properties.topic_alias, None);
    }
    Ok(())
}

#[tokio::test]
async fn inbound_alias_errors_close_only_the_offender() -> anyhow::Result<()> {
    let mut options = TestBrokerOptions::with_anonymous();
    options.config.limits.topic_alias_maximum = 3;
    let broker = TestBroker::start_with(options).await?;
    let addr = broker.addr_of("anon");
    let mut bystander = RawClient::v5(addr, "bystander").await?;
    bystander.subscribe("meters/#", QoS::AtMostOnce).await?;

    let (mut c, connack) =
        RawClient::connect_with(addr, connect_packet(Protocol::V5, "alias-1")).await?;
    assert_eq!(connack.properties.topic_alias_maximum, Some(3));
    c.send(&Packet::Publish(aliased("meters/1", 3, "ok")))
        .await?;
    c.send(&Packet::Publish(aliased("meters/1", 4, "too far")))
        .await?;
    assert_eq!(c.disconnected().await?, ReasonCode::TOPIC_ALIAS_INVALID);

    // Alias 0 is never valid.
    let mut c = RawClient::v5(addr, "alias-2").await?;
    c.send(&Packet::Publish(aliased("meters/2", 0, "zero")))
        .await?;
    assert_eq!(c.disconnected().await?, ReasonCode::TOPIC_ALIAS_INVALID);

    // An alias that was never set, and aliases do not outlive the
    // connection that set them.
    let mut c = RawClient::v5(addr, "alias-3").await?;
    c.send(&Packet::Publish(aliased("meters/3", 2, "set")))
        .await?;
    c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await?;
    let mut c = RawClient::v5(addr, "alias-3").await?;
    c.send(&Packet::Publish(aliased("", 2, "unknown"))).await?;
    assert_eq!(c.disconnected().await?, ReasonCode::PROTOCOL_ERROR);

    let got = bystander.drain().await?;
    let payloads: Vec<&[u8]> = got
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(&p.payload[..]),
            _ => None,
        })
        .collect();
    assert_eq!(payloads, vec![&b"ok"[..], b"set"]);
    Ok(())
}

fn with_alias_max(client_id: &str, max: u16) -> Connect {
    let mut c = connect_packet(Protocol::V5, client_id);
    c.properties.topic_alias_maximum = Some(max);
    c
}

#[tokio::test]
async fn outbound_aliases_within_the_clients_maximum() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut sub = RawClient::connect_ok(addr, with_alias_max("alias-sub", 2)).await?;
    sub.subscribe("lines/#", QoS::AtMostOnce).await?;
    let mut plain = RawClient::v5(addr, "no-alias-sub").await?;
    plain.subscribe("lines/#", QoS::AtMostOnce).await?;

    let mut publisher = RawClient::v5(addr, "lines").await?;
    let sequence = [
        "lines/1", "lines/1", "lines/2", "lines/3", "lines/2", "lines/1",
    ];
    for t in sequence {
        publisher
            .publish(publish_packet(t, QoS::AtLeastOnce, None, t))
            .await?;
    }
    // (topic on the wire, alias) for each message.
    let expected = [
        ("lines/1", Some(1)),
        ("", Some(1)),
        ("lines/2", Some(2)),
        ("lines/3", None), // both aliases taken
        ("", Some(2)),
        ("", Some(1)),
    ];
    for (t, (wire, alias)) in sequence.iter().zip(expected) {
        let p = sub.recv_publish().await?;
        assert_eq!(&p.payload[..], t.as_bytes());
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), (wire, alias));
        let q = plain.recv_publish().await?;
        assert_eq!((q.topic.as_str(), q.properties.topic_alias), (*t, None));
    }
    Ok(())
}

/// A real client over mutual TLS: rumqttc hands PUBLISHes to the
/// application as they came off the wire (alias unresolved), but it tracks
/// the aliases itself and would close the connection on one it did not
/// know; the connection staying up shows the aliases were valid to it.
#[tokio::test]
async fn rumqttc_accepts_the_aliases_it_is_sent() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let cc = broker.device("control-center")?;
    let mut options = broker.mqtt5_options(&cc).await?;
    options.set_topic_alias_max(Some(4));
    let mut sub = V5Client::connect(options).await?;
    sub.client
        .subscribe("city/#", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await?;
    sub.suback().await?;
    let lamp = broker.device("lamp-40")?;
    let publisher = V5Client::connect(broker.mqtt5_options(&lamp).await?).await?;
    let t = "city/west/things/lamp-40/telemetry";
    for i in 0..3 {
        publisher
            .client
            .publish(
                t,
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                false,
                format!("{i}"),
            )
            .await?;
    }
    for i in 0..3 {
        let p = sub.next_publish().await?;
        let expected_topic = if i == 0 { t } else { "" };
        assert_eq!(topic(&p), expected_topic);
        assert_eq!(p.payload, format!("{i}"));
        let alias = p.properties.as_ref().and_then(|p| p.topic_alias);
        assert_eq!(alias, Some(1));
    }
    sub.client
        .publish(
            "city/west/things/control-center/ack",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            "done",
        )
        .await?;
    let p = sub.next_publish().await?;
    assert_eq!(topic(&p), "city/west/things/control-center/ack");
    assert_eq!(p.properties.and_then(|p| p.topic_alias), Some(2));
    assert!(sub.errors.try_recv().is_err(), "still connected");
    Ok(())
}

#[tokio::test]
async fn publish_over_the_brokers_maximum_packet_size_gets_0x95() -> anyhow::Result<()> {
    let mut options = TestBrokerOptions::with_anonymous();
    options.config.limits.max_packet_size = 1024;
    let broker = TestBroker::start_with(options).await?;
    let addr = broker.addr_of("anon");
    let mut bystander = RawClient::v5(addr, "bystander").await?;
    bystander.subscribe("blobs/#", QoS::AtMostOnce).await?;

    let (mut c, connack) =
        RawClient::connect_with(addr, connect_packet(Protocol::V5, "blob-1")).await?;
    assert_eq!(connack.properties.maximum_packet_size, Some(1024));
    // Exactly at the limit is fine.
    let fits = "x".repeat(1024 - 13);
    let p = publish_packet("blobs/1", QoS::AtMostOnce, None, &fits);
    assert_eq!(
        civitas_mqtt::encoded_len(&Packet::Publish(p.clone()), Protocol::V5),
        1024
    );
    c.publish(p).await?;
    let too_big = publish_packet("blobs/1", QoS::AtLeastOnce, Some(1), &"y".repeat(1500));
    c.send(&Packet::Publish(too_big)).await?;
    assert_eq!(c.disconnected().await?, ReasonCode::PACKET_TOO_LARGE);

    // A 3.1.1 client is just closed.
    let mut old = RawClient::connect_ok(addr, connect_packet(Protocol::V311, "blob-2")).await?;
    let too_big = publish_packet("blobs/2", QoS::AtMostOnce, None, &"z".repeat(1500));
    old.send(&Packet::Publish(too_big)).await?;
    assert!(old.closed().await?.is_empty());

    let got = bystander.drain().await?;
    assert_eq!(got.len(), 1, "only the message that fitted: {got:?}");
    bystander
        .publish(publish_packet("blobs/3", QoS::AtLeastOnce, None, "small"))
        .await?;
    assert_eq!(bystander.recv_publish().await?.topic, "blobs/3");
    Ok(())
}

#[tokio::test]
async fn message_larger_than_the_clients_maximum_is_not_sent_to_it() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut connect = with_alias_max("small-device", 4);
    connect.properties.maximum_packet_size = Some(64);
    connect.properties.receive_maximum = Some(1);
    let mut small = RawClient::connect_ok(addr, connect).await?;
    small.subscribe("feed/#", QoS::AtLeastOnce).await?;
    let mut big = RawClient::v5(addr, "big-device").await?;
    big.subscribe("feed/#", QoS::AtLeastOnce).await?;

    let mut publisher = RawClient::v5(addr, "feed").await?;
    for payload in [
        "x".repeat(100),
        "ok".to_string(),
        "y".repeat(100),
        "ok2".to_string(),
    ] {
        publisher
            .publish(publish_packet("feed/a", QoS::AtLeastOnce, None, &payload))
            .await?;
    }
    // The large ones are skipped (and do not hold the one-message window);
    // the alias for "feed/a" is introduced with the first message that is
    // actually sent.
    let p = small.recv_publish().await?;
    assert_eq!(&p.payload[..], b"ok");
    assert_eq!(p.topic, "feed/a");
    assert_eq!(p.properties.topic_alias, Some(1));
    small
        .send(&Packet::PubAck(ack(p.packet_id.unwrap_or(0))))
        .await?;
    let p = small.recv_publish().await?;
    assert_eq!(&p.payload[..], b"ok2");
    assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("", Some(1)));
    small
        .send(&Packet::PubAck(ack(p.packet_id.unwrap_or(0))))
        .await?;
    assert!(small.drain().await?.is_empty());

    for _ in 0..4 {
        let p = big.recv_publish().await?;
        big.send(&Packet::PubAck(ack(p.packet_id.unwrap_or(0))))
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn disconnect_fits_the_clients_maximum_packet_size() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut connect = connect_packet(Protocol::V5, "tiny");
    connect.properties.maximum_packet_size = Some(16);
    let mut c = RawClient::connect_ok(addr, connect).await?;
    // A protocol error: the DISCONNECT's reason string would not fit in
    // 16 bytes, so it is left out and the reason code still arrives.
    c.send(&Packet::SubAck(Default::default())).await?;
    let got = c.closed().await?;
    match got.as_slice() {
        [Packet::Disconnect(d)] => {
            assert_eq!(d.reason_code, ReasonCode::PROTOCOL_ERROR);
            assert_eq!(d.properties.reason_string, None);
        }
        other => anyhow::bail!("expected one DISCONNECT, got {other:?}"),
    }
    Ok(())
}
