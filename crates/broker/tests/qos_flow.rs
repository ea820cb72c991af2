//! QoS 2 exactly once in both directions, duplicates included, and MQTT 5
//! flow control: the client's Receive Maximum bounds what the broker has
//! in flight towards it, the broker's bounds what the client may send.

mod common;

use civitas_mqtt::{Packet, Protocol, Publish, QoS, ReasonCode};
use civitas_testkit::{TestBroker, TestBrokerOptions};
use common::raw::{RawClient, ack, connect_packet, publish_packet};

async fn anon_broker() -> anyhow::Result<TestBroker> {
    TestBroker::start_with(TestBrokerOptions::with_anonymous()).await
}

fn publishes(packets: &[Packet]) -> Vec<&Publish> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn duplicated_qos2_publish_is_delivered_once() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut sub = RawClient::v5(addr, "valve-sub").await?;
    sub.subscribe("valves/#", QoS::ExactlyOnce).await?;

    let mut publisher = RawClient::v5(addr, "valve-1").await?;
    let mut p = publish_packet("valves/1/set", QoS::ExactlyOnce, Some(7), "open");
    publisher.send(&Packet::Publish(p.clone())).await?;
    assert_eq!(publisher.recv().await?, Packet::PubRec(ack(7)));
    // The PUBREC "got lost": the client sends the PUBLISH again.
    p.dup = true;
    publisher.send(&Packet::Publish(p.clone())).await?;
    assert_eq!(publisher.recv().await?, Packet::PubRec(ack(7)));
    publisher.send(&Packet::PubRel(ack(7))).await?;
    assert_eq!(publisher.recv().await?, Packet::PubComp(ack(7)));
    // And a PUBREL retransmitted after PUBCOMP is answered, not an error.
    publisher.send(&Packet::PubRel(ack(7))).await?;
    match publisher.recv().await? {
        Packet::PubComp(a) => {
            assert_eq!(a.packet_id, 7);
            assert_eq!(a.reason_code, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND);
        }
        other => anyhow::bail!("expected PUBCOMP, got {other:?}"),
    }

    let got = sub.recv_publish().await?;
    assert_eq!(&got.payload[..], b"open");
    assert_eq!(got.qos, QoS::ExactlyOnce);
    let id = got.packet_id.unwrap_or(0);
    sub.send(&Packet::PubRec(ack(id))).await?;
    assert_eq!(sub.recv().await?, Packet::PubRel(ack(id)));
    sub.send(&Packet::PubComp(ack(id))).await?;
    assert!(publishes(&sub.drain().await?).is_empty(), "delivered once");

    // After PUBCOMP the packet id is free: the same id is a new message.
    p.dup = false;
    p.payload = "close".into();
    publisher.send(&Packet::Publish(p)).await?;
    assert_eq!(publisher.recv().await?, Packet::PubRec(ack(7)));
    assert_eq!(&sub.recv_publish().await?.payload[..], b"close");
    Ok(())
}

#[tokio::test]
async fn qos2_from_a_resumed_session_is_still_deduplicated() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut sub = RawClient::v5(addr, "valve-sub").await?;
    sub.subscribe("valves/#", QoS::AtMostOnce).await?;

    let mut connect = connect_packet(Protocol::V5, "valve-2");
    connect.properties.session_expiry_interval = Some(60);
    let mut publisher = RawClient::connect_ok(addr, connect.clone()).await?;
    let mut p = publish_packet("valves/2/set", QoS::ExactlyOnce, Some(9), "half");
    publisher.send(&Packet::Publish(p.clone())).await?;
    assert_eq!(publisher.recv().await?, Packet::PubRec(ack(9)));
    drop(publisher);

    connect.clean_start = false;
    let mut publisher = RawClient::connect_ok(addr, connect).await?;
    p.dup = true;
    publisher.send(&Packet::Publish(p)).await?;
    assert_eq!(publisher.recv().await?, Packet::PubRec(ack(9)));
    publisher.send(&Packet::PubRel(ack(9))).await?;
    assert_eq!(publisher.recv().await?, Packet::PubComp(ack(9)));

    assert_eq!(&sub.recv_publish().await?.payload[..], b"half");
    assert!(publishes(&sub.drain().await?).is_empty(), "delivered once");
    Ok(())
}

#[tokio::test]
async fn qos2_towards_the_client_completes_once() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut sub = RawClient::v5(addr, "valve-sub").await?;
    sub.subscribe("valves/#", QoS::ExactlyOnce).await?;
    let mut publisher = RawClient::v5(addr, "valve-3").await?;
    publisher
        .publish(publish_packet("valves/3/set", QoS::ExactlyOnce, None, "x"))
        .await?;

    let p = sub.recv_publish().await?;
    let id = p.packet_id.unwrap_or(0);
    sub.send(&Packet::PubRec(ack(id))).await?;
    assert_eq!(sub.recv().await?, Packet::PubRel(ack(id)));
    // A duplicated PUBREC gets the PUBREL again; nothing is resent.
    sub.send(&Packet::PubRec(ack(id))).await?;
    assert_eq!(sub.recv().await?, Packet::PubRel(ack(id)));
    sub.send(&Packet::PubComp(ack(id))).await?;
    assert!(sub.drain().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn broker_keeps_within_the_clients_receive_maximum() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut connect = connect_packet(Protocol::V5, "slow-display");
    connect.properties.receive_maximum = Some(2);
    let mut sub = RawClient::connect_ok(addr, connect).await?;
    sub.subscribe("display/#", QoS::ExactlyOnce).await?;

    let mut publisher = RawClient::v5(addr, "display-feed").await?;
    for i in 0..6 {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        publisher
            .publish(publish_packet("display/line", qos, None, &format!("{i}")))
            .await?;
    }
    // Every message is routed (acknowledged) before these pings, so the
    // broker has sent all it is going to send before the second PINGRESP.
    let received = sub.drain().await?;
    let first = publishes(&received);
    assert_eq!(first.len(), 2, "only Receive Maximum messages in flight");
    assert_eq!(&first[0].payload[..], b"0");
    assert_eq!(&first[1].payload[..], b"1");
    let (qos1_id, qos2_id) = (
        first[0].packet_id.unwrap_or(0),
        first[1].packet_id.unwrap_or(0),
    );

    // Acknowledging the QoS 1 message opens the window by one.
    sub.send(&Packet::PubAck(ack(qos1_id))).await?;
    let received = sub.drain().await?;
    let next = publishes(&received);
    assert_eq!(next.len(), 1);
    assert_eq!(&next[0].payload[..], b"2");
    let third_id = next[0].packet_id.unwrap_or(0);

    // A QoS 2 message stays in flight until PUBCOMP, not PUBREC.
    sub.send(&Packet::PubRec(ack(qos2_id))).await?;
    assert_eq!(sub.drain().await?, vec![Packet::PubRel(ack(qos2_id))]);
    sub.send(&Packet::PubComp(ack(qos2_id))).await?;
    let received = sub.drain().await?;
    let next = publishes(&received);
    assert_eq!(next.len(), 1);
    assert_eq!(&next[0].payload[..], b"3");
    assert_ne!(next[0].packet_id, Some(third_id));
    Ok(())
}

#[tokio::test]
async fn a_backlog_larger_than_one_write_reaches_a_reader_that_lags() -> anyhow::Result<()> {
    // Megabytes for a reader that is not reading yet: the socket fills,
    // the broker stops at its write mark with most of it still queued, and
    // once the reader reads it must come back for every part of the rest
    // by itself — nothing new arrives to wake it.
    // Small messages: the broker's estimate of what fits under its mark
    // runs out before the mark itself is reached.
    const MESSAGES: usize = 40_000;
    let mut options = TestBrokerOptions::with_anonymous();
    options.config.limits.max_queued_messages = MESSAGES;
    let broker = TestBroker::start_with(options).await?;
    let addr = broker.addr_of("anon");
    let mut sub = RawClient::v5(addr, "archive").await?;
    sub.subscribe("meters/#", QoS::AtMostOnce).await?;

    let mut publisher = RawClient::v5(addr, "meter-feed").await?;
    let body = "x".repeat(100);
    let mut burst = bytes::BytesMut::new();
    for i in 0..MESSAGES {
        let payload = format!("{i:05}{body}");
        let p = publish_packet("meters/7/reading", QoS::AtMostOnce, None, &payload);
        civitas_mqtt::encode(&Packet::Publish(p), Protocol::V5, &mut burst)?;
    }
    publisher.send_bytes(&burst).await?;
    // A round trip after the burst: the broker has read all of it.
    publisher.ping().await?;
    for i in 0..MESSAGES {
        let got = sub.recv_publish().await?;
        assert_eq!(&got.payload[..5], format!("{i:05}").as_bytes(), "in order");
    }
    Ok(())
}

#[tokio::test]
async fn client_over_the_brokers_receive_maximum_is_disconnected() -> anyhow::Result<()> {
    let mut options = TestBrokerOptions::with_anonymous();
    options.config.limits.receive_maximum = 2;
    let broker = TestBroker::start_with(options).await?;
    let addr = broker.addr_of("anon");
    let mut bystander = RawClient::v5(addr, "bystander").await?;
    bystander.subscribe("pumps/#", QoS::AtMostOnce).await?;

    let (mut c, connack) =
        RawClient::connect_with(addr, connect_packet(Protocol::V5, "pump-1")).await?;
    assert_eq!(connack.properties.receive_maximum, Some(2));
    for id in 1..=2 {
        let p = publish_packet("pumps/1", QoS::ExactlyOnce, Some(id), "on");
        c.send(&Packet::Publish(p)).await?;
        assert_eq!(c.recv().await?, Packet::PubRec(ack(id)));
    }
    // Resending one of the two still unreleased is not a new message.
    let mut again = publish_packet("pumps/1", QoS::ExactlyOnce, Some(2), "on");
    again.dup = true;
    c.send(&Packet::Publish(again)).await?;
    assert_eq!(c.recv().await?, Packet::PubRec(ack(2)));
    // A third one is.
    let third = publish_packet("pumps/1", QoS::ExactlyOnce, Some(3), "on");
    c.send(&Packet::Publish(third)).await?;
    assert_eq!(
        c.disconnected().await?,
        ReasonCode::RECEIVE_MAXIMUM_EXCEEDED
    );

    assert_eq!(
        sub_count(&mut bystander).await?,
        2,
        "the third was not routed"
    );
    let mut other = RawClient::v5(addr, "pump-2").await?;
    other
        .publish(publish_packet("pumps/2", QoS::AtLeastOnce, None, "ok"))
        .await?;
    assert_eq!(bystander.recv_publish().await?.topic, "pumps/2");
    Ok(())
}

/// How many PUBLISHes the broker had sent, once it has caught up.
async fn sub_count(c: &mut RawClient) -> anyhow::Result<usize> {
    Ok(publishes(&c.drain().await?).len())
}

#[tokio::test]
async fn rumqttc_qos2_over_mutual_tls_arrives_once_in_order() -> anyhow::Result<()> {
    use common::v5::V5Client;
    use rumqttc::v5::mqttbytes::QoS as RQoS;

    let broker = TestBroker::start().await?;
    let cc = broker.device("control-center")?;
    let mut sub = V5Client::connect(broker.mqtt5_options(&cc).await?).await?;
    sub.client
        .subscribe("city/+/things/+/meter", RQoS::ExactlyOnce)
        .await?;
    sub.suback().await?;
    let meter = broker.device("meter-1")?;
    let publisher = V5Client::connect(broker.mqtt5_options(&meter).await?).await?;
    for i in 0..20 {
        publisher
            .client
            .publish(
                "city/port/things/meter-1/meter",
                RQoS::ExactlyOnce,
                false,
                format!("{i}"),
            )
            .await?;
    }
    for i in 0..20 {
        let p = sub.next_publish().await?;
        assert_eq!(p.qos, RQoS::ExactlyOnce);
        assert_eq!(p.payload, format!("{i}"));
    }
    // Nothing more: one more message marks the end of the stream.
    publisher
        .client
        .publish(
            "city/port/things/meter-1/meter",
            RQoS::ExactlyOnce,
            false,
            "end",
        )
        .await?;
    assert_eq!(sub.next_publish().await?.payload, "end");
    Ok(())
}
