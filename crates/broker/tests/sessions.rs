//! Sessions across connections: clean start, the session expiry interval
//! (also across a broker restart), messages queued while the client was
//! away, and the resumption of QoS 1/2 flows that were in flight.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use civitas_mqtt::{Connect, Disconnect, DisconnectProperties, Packet, Protocol, QoS, ReasonCode};
use civitas_testkit::{TestBroker, TestBrokerOptions, wait_for_async};
use common::TIMEOUT;
use common::raw::{RawClient, ack, connect_packet, publish_packet};

async fn anon_broker() -> anyhow::Result<TestBroker> {
    TestBroker::start_with(TestBrokerOptions::with_anonymous()).await
}

fn persistent(client_id: &str, expiry: u32) -> Connect {
    let mut c = connect_packet(Protocol::V5, client_id);
    c.properties.session_expiry_interval = Some(expiry);
    c
}

fn resume(client_id: &str, expiry: u32) -> Connect {
    let mut c = persistent(client_id, expiry);
    c.clean_start = false;
    c
}

/// Publish QoS 1 to `topic` from a fresh client; the PUBACK's reason code
/// tells whether any session (connected or not) is subscribed.
async fn probe(addr: SocketAddr, topic: &str) -> anyhow::Result<ReasonCode> {
    let mut c = RawClient::v5(addr, "probe").await?;
    c.publish(publish_packet(topic, QoS::AtLeastOnce, None, "probe"))
        .await
}

#[tokio::test]
async fn session_is_kept_for_its_expiry_interval_and_then_dropped() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut c = RawClient::connect_ok(addr, persistent("gauge-1", 2)).await?;
    c.subscribe("gauges/1/cmd", QoS::AtLeastOnce).await?;
    c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await?;
    let disconnected = Instant::now();

    // Within the interval the subscription is still there and the session
    // is resumed.
    assert_eq!(probe(addr, "gauges/1/cmd").await?, ReasonCode::SUCCESS);
    let (c, ack) = RawClient::connect_with(addr, resume("gauge-1", 2)).await?;
    assert!(ack.session_present);
    let p = {
        let mut c = c;
        let p = c.recv_publish().await?;
        c.send(&Packet::PubAck(ack_for(&p))).await?;
        c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await?;
        p
    };
    assert_eq!(&p.payload[..], b"probe", "queued while away");
    let disconnected_again = Instant::now();
    assert!(disconnected_again.duration_since(disconnected) < Duration::from_secs(2));

    // After the interval it is gone: nobody matches any more.
    wait_for_async("the session to expire", TIMEOUT, || async {
        probe(addr, "gauges/1/cmd").await.ok() == Some(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    })
    .await?;
    let elapsed = disconnected_again.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900),
        "expired after {elapsed:?}"
    );
    let (_c, ack) = RawClient::connect_with(addr, resume("gauge-1", 2)).await?;
    assert!(!ack.session_present);
    Ok(())
}

fn ack_for(p: &civitas_mqtt::Publish) -> civitas_mqtt::PubAck {
    ack(p.packet_id.unwrap_or(0))
}

#[tokio::test]
async fn clean_start_discards_the_stored_session() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut c = RawClient::connect_ok(addr, persistent("gauge-2", 60)).await?;
    c.subscribe("gauges/2/cmd", QoS::AtLeastOnce).await?;
    c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await?;
    assert_eq!(probe(addr, "gauges/2/cmd").await?, ReasonCode::SUCCESS);

    let (mut c, ack) = RawClient::connect_with(addr, persistent("gauge-2", 60)).await?;
    assert!(!ack.session_present);
    assert!(c.drain().await?.is_empty(), "nothing from the old session");
    assert_eq!(
        probe(addr, "gauges/2/cmd").await?,
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    Ok(())
}

#[tokio::test]
async fn disconnect_can_shorten_the_expiry_but_not_set_it_after_zero() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut c = RawClient::connect_ok(addr, persistent("gauge-3", 60)).await?;
    c.subscribe("gauges/3/cmd", QoS::AtLeastOnce).await?;
    c.send(&Packet::Disconnect(Disconnect {
        reason_code: ReasonCode::NORMAL_DISCONNECTION,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            ..Default::default()
        },
    }))
    .await?;
    c.closed().await?;
    assert_eq!(
        probe(addr, "gauges/3/cmd").await?,
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );

    let mut c = RawClient::v5(addr, "gauge-4").await?;
    c.send(&Packet::Disconnect(Disconnect {
        reason_code: ReasonCode::NORMAL_DISCONNECTION,
        properties: DisconnectProperties {
            session_expiry_interval: Some(60),
            ..Default::default()
        },
    }))
    .await?;
    assert_eq!(c.disconnected().await?, ReasonCode::PROTOCOL_ERROR);
    Ok(())
}

#[tokio::test]
async fn session_and_queued_messages_survive_a_restart() -> anyhow::Result<()> {
    let mut broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut c = RawClient::connect_ok(addr, persistent("gauge-5", 600)).await?;
    c.subscribe("gauges/5/#", QoS::ExactlyOnce).await?;
    c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await?;

    let mut publisher = RawClient::v5(addr, "console").await?;
    for (i, qos) in [QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtLeastOnce]
        .into_iter()
        .enumerate()
    {
        let code = publisher
            .publish(publish_packet(
                &format!("gauges/5/{i}"),
                qos,
                None,
                &format!("m{i}"),
            ))
            .await?;
        assert_eq!(code, ReasonCode::SUCCESS);
    }
    drop(publisher);
    broker.restart().await?;

    let (mut c, connack) = RawClient::connect_with(addr, resume("gauge-5", 600)).await?;
    assert!(connack.session_present, "the session survived the restart");
    let mut received = Vec::new();
    for (i, qos) in [QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtLeastOnce]
        .into_iter()
        .enumerate()
    {
        let p = c.recv_publish().await?;
        assert_eq!(p.topic, format!("gauges/5/{i}"));
        assert_eq!(p.qos, qos);
        assert!(!p.dup, "never sent before");
        received.push(p);
    }
    for p in received {
        let id = p.packet_id.unwrap_or(0);
        if p.qos == QoS::AtLeastOnce {
            c.send(&Packet::PubAck(ack(id))).await?;
        } else {
            c.send(&Packet::PubRec(ack(id))).await?;
            assert_eq!(c.recv().await?, Packet::PubRel(ack(id)));
            c.send(&Packet::PubComp(ack(id))).await?;
        }
    }
    // The subscription was restored too.
    assert_eq!(probe(addr, "gauges/5/x").await?, ReasonCode::SUCCESS);
    assert_eq!(c.recv_publish().await?.topic, "gauges/5/x");
    Ok(())
}

#[tokio::test]
async fn expiry_keeps_counting_across_a_restart() -> anyhow::Result<()> {
    let mut broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut c = RawClient::connect_ok(addr, persistent("gauge-6", 2)).await?;
    c.subscribe("gauges/6/cmd", QoS::AtLeastOnce).await?;
    c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await?;
    let disconnected = Instant::now();
    broker.restart().await?;
    assert_eq!(probe(addr, "gauges/6/cmd").await?, ReasonCode::SUCCESS);
    wait_for_async("the restored session to expire", TIMEOUT, || async {
        probe(addr, "gauges/6/cmd").await.ok() == Some(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    })
    .await?;
    let elapsed = disconnected.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(5),
        "expired after {elapsed:?}"
    );
    Ok(())
}

/// Subscribe `client_id` (persistent) to `topic`, then have a publisher
/// send one message at `qos`; returns the subscriber, connected.
async fn subscriber_with_one_message(
    addr: SocketAddr,
    client_id: &str,
    topic: &str,
    qos: QoS,
) -> anyhow::Result<RawClient> {
    let mut c = RawClient::connect_ok(addr, persistent(client_id, 600)).await?;
    c.subscribe(topic, qos).await?;
    let mut publisher = RawClient::v5(addr, &format!("{client_id}-pub")).await?;
    publisher
        .publish(publish_packet(topic, qos, None, "reading"))
        .await?;
    Ok(c)
}

#[tokio::test]
async fn unacknowledged_qos1_is_resent_with_dup_and_the_same_packet_id() -> anyhow::Result<()> {
    let mut broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut c = subscriber_with_one_message(addr, "gauge-7", "gauges/7", QoS::AtLeastOnce).await?;
    let first = c.recv_publish().await?;
    assert!(!first.dup);
    drop(c); // gone before PUBACK

    let (mut c, ack1) = RawClient::connect_with(addr, resume("gauge-7", 600)).await?;
    assert!(ack1.session_present);
    let again = c.recv_publish().await?;
    assert!(again.dup);
    assert_eq!(again.packet_id, first.packet_id);
    assert_eq!(again.payload, first.payload);
    drop(c);

    // In-flight state is durable: after a restart it is resent again.
    broker.restart().await?;
    let (mut c, _) = RawClient::connect_with(addr, resume("gauge-7", 600)).await?;
    let after_restart = c.recv_publish().await?;
    assert!(after_restart.dup);
    assert_eq!(after_restart.packet_id, first.packet_id);
    c.send(&Packet::PubAck(ack_for(&after_restart))).await?;
    drop(c);

    let (mut c, _) = RawClient::connect_with(addr, resume("gauge-7", 600)).await?;
    assert!(c.drain().await?.is_empty(), "acknowledged: not sent again");
    Ok(())
}

#[tokio::test]
async fn qos2_resumes_with_publish_before_pubrec_and_pubrel_after() -> anyhow::Result<()> {
    let mut broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut c = subscriber_with_one_message(addr, "gauge-8", "gauges/8", QoS::ExactlyOnce).await?;
    let first = c.recv_publish().await?;
    let id = first.packet_id.unwrap_or(0);
    drop(c); // before PUBREC: the PUBLISH comes again

    let (mut c, _) = RawClient::connect_with(addr, resume("gauge-8", 600)).await?;
    let again = c.recv_publish().await?;
    assert!(again.dup);
    assert_eq!(again.packet_id, Some(id));
    c.send(&Packet::PubRec(ack(id))).await?;
    assert_eq!(c.recv().await?, Packet::PubRel(ack(id)));
    drop(c); // before PUBCOMP: only the PUBREL comes again

    let (mut c, _) = RawClient::connect_with(addr, resume("gauge-8", 600)).await?;
    assert_eq!(c.recv().await?, Packet::PubRel(ack(id)));
    drop(c);

    broker.restart().await?;
    let (mut c, _) = RawClient::connect_with(addr, resume("gauge-8", 600)).await?;
    assert_eq!(
        c.recv().await?,
        Packet::PubRel(ack(id)),
        "PUBREL state is durable"
    );
    c.send(&Packet::PubComp(ack(id))).await?;
    assert!(c.drain().await?.is_empty());
    drop(c);

    let (mut c, _) = RawClient::connect_with(addr, resume("gauge-8", 600)).await?;
    assert!(c.drain().await?.is_empty(), "the flow is complete");
    Ok(())
}

#[tokio::test]
async fn v311_persistent_session_resends_unacknowledged_messages() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut connect = connect_packet(Protocol::V311, "gauge-9");
    connect.clean_start = false;
    let mut c = RawClient::connect_ok(addr, connect.clone()).await?;
    c.subscribe("gauges/9", QoS::AtLeastOnce).await?;
    let mut publisher = RawClient::v5(addr, "gauge-9-pub").await?;
    publisher
        .publish(publish_packet("gauges/9", QoS::AtLeastOnce, None, "x"))
        .await?;
    let first = c.recv_publish().await?;
    drop(c);
    let (mut c, ack1) = RawClient::connect_with(addr, connect).await?;
    assert!(ack1.session_present);
    let again = c.recv_publish().await?;
    assert!(again.dup);
    assert_eq!(again.packet_id, first.packet_id);
    Ok(())
}

#[tokio::test]
async fn session_expiry_above_the_limit_is_capped_in_connack() -> anyhow::Result<()> {
    let mut options = TestBrokerOptions::with_anonymous();
    options.config.limits.max_session_expiry_secs = 1;
    let broker = TestBroker::start_with(options).await?;
    let addr = broker.addr_of("anon");
    let (mut c, connack) = RawClient::connect_with(addr, persistent("gauge-10", 3600)).await?;
    assert_eq!(connack.properties.session_expiry_interval, Some(1));
    c.subscribe("gauges/10/cmd", QoS::AtLeastOnce).await?;
    c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await?;
    let disconnected = Instant::now();
    wait_for_async("the capped session to expire", TIMEOUT, || async {
        probe(addr, "gauges/10/cmd").await.ok() == Some(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    })
    .await?;
    assert!(disconnected.elapsed() < Duration::from_secs(5));
    // Within the limit, nothing is said.
    let (_c, connack) = RawClient::connect_with(addr, persistent("gauge-11", 1)).await?;
    assert_eq!(connack.properties.session_expiry_interval, None);
    Ok(())
}

#[tokio::test]
async fn rumqttc_resumes_its_session_over_mutual_tls() -> anyhow::Result<()> {
    use common::v5::V5Client;
    use rumqttc::v5::mqttbytes::QoS as RQoS;

    let mut broker = TestBroker::start().await?;
    let cc = broker.device("control-center")?;
    let mut options = broker.mqtt5_options(&cc).await?;
    options.set_clean_start(false);
    options.set_session_expiry_interval(Some(600));
    let mut sub = V5Client::connect(options.clone()).await?;
    assert!(!sub.connack.session_present);
    sub.client
        .subscribe("city/+/things/+/alarm", RQoS::AtLeastOnce)
        .await?;
    sub.suback().await?;
    sub.client.disconnect().await?;
    sub.closed().await?;

    let siren = broker.device("siren-1")?;
    let publisher = V5Client::connect(broker.mqtt5_options(&siren).await?).await?;
    for i in 0..3 {
        publisher
            .client
            .publish(
                "city/port/things/siren-1/alarm",
                RQoS::AtLeastOnce,
                false,
                format!("{i}"),
            )
            .await?;
    }
    publisher.client.disconnect().await?;
    civitas_testkit::wait_for("three messages received", TIMEOUT, || {
        broker
            .stats()
            .messages_received
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    })
    .await?;
    broker.restart().await?;

    let mut sub = V5Client::connect(options).await?;
    assert!(sub.connack.session_present);
    for i in 0..3 {
        assert_eq!(sub.next_publish().await?.payload, format!("{i}"));
    }
    Ok(())
}
