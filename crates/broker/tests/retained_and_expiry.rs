//! Retained messages under MQTT 5 subscription options (Retain Handling
//! 0/1/2, Retain As Published), clearing by an empty payload, and Message
//! Expiry for retained and queued messages, with the remaining interval
//! passed on.

mod common;

use std::time::{Duration, Instant};

use civitas_mqtt::{
    Packet, Protocol, Publish, QoS, ReasonCode, RetainHandling, SubscriptionOptions,
};
use civitas_testkit::{TestBroker, TestBrokerOptions, wait_for_async};
use common::TIMEOUT;
use common::raw::{RawClient, ack, connect_packet, publish_packet};

async fn anon_broker() -> anyhow::Result<TestBroker> {
    TestBroker::start_with(TestBrokerOptions::with_anonymous()).await
}

fn retained(topic: &str, qos: QoS, payload: &str) -> Publish {
    let mut p = publish_packet(topic, qos, None, payload);
    p.retain = true;
    p
}

fn opts(qos: QoS, retain_handling: RetainHandling, rap: bool) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        no_local: false,
        retain_as_published: rap,
        retain_handling,
    }
}

fn publishes(packets: Vec<Packet>) -> Vec<Publish> {
    packets
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn retain_handling_decides_when_retained_messages_are_sent() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut publisher = RawClient::v5(addr, "lamp").await?;
    publisher
        .publish(retained("lamps/1/state", QoS::ExactlyOnce, "on"))
        .await?;

    let mut c = RawClient::v5(addr, "viewer").await?;
    let at_subscribe = opts(QoS::AtLeastOnce, RetainHandling::SendAtSubscribe, false);
    for _ in 0..2 {
        let ack = c
            .subscribe_with(&[("lamps/1/state", at_subscribe)], None)
            .await?;
        assert_eq!(ack.reason_codes, vec![ReasonCode::GRANTED_QOS_1]);
        let p = c.recv_publish().await?;
        assert!(p.retain);
        assert_eq!(&p.payload[..], b"on");
        assert_eq!(p.qos, QoS::AtLeastOnce, "min(published 2, granted 1)");
        c.send(&Packet::PubAck(ack_of(&p))).await?;
    }

    let if_new = opts(QoS::AtMostOnce, RetainHandling::SendIfNew, false);
    c.subscribe_with(&[("lamps/+/state", if_new)], None).await?;
    let p = c.recv_publish().await?;
    assert!(p.retain);
    c.subscribe_with(&[("lamps/+/state", if_new)], None).await?;
    assert!(
        c.drain().await?.is_empty(),
        "the subscription already existed"
    );

    let never = opts(QoS::AtMostOnce, RetainHandling::DoNotSend, false);
    c.subscribe_with(&[("lamps/#", never)], None).await?;
    assert!(c.drain().await?.is_empty());
    Ok(())
}

fn ack_of(p: &Publish) -> civitas_mqtt::PubAck {
    ack(p.packet_id.unwrap_or(0))
}

#[tokio::test]
async fn retain_as_published_keeps_the_flag_on_live_messages() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut keeps = RawClient::v5(addr, "keeps").await?;
    keeps
        .subscribe_with(
            &[(
                "lamps/#",
                opts(QoS::AtMostOnce, RetainHandling::SendAtSubscribe, true),
            )],
            None,
        )
        .await?;
    let mut clears = RawClient::v5(addr, "clears").await?;
    clears.subscribe("lamps/#", QoS::AtMostOnce).await?;

    let mut publisher = RawClient::v5(addr, "lamp").await?;
    publisher
        .publish(retained("lamps/2/state", QoS::AtLeastOnce, "on"))
        .await?;
    publisher
        .publish(publish_packet(
            "lamps/2/state",
            QoS::AtLeastOnce,
            None,
            "blink",
        ))
        .await?;
    let got: Vec<bool> = [keeps.recv_publish().await?, keeps.recv_publish().await?]
        .iter()
        .map(|p| p.retain)
        .collect();
    assert_eq!(got, vec![true, false]);
    let got: Vec<bool> = [clears.recv_publish().await?, clears.recv_publish().await?]
        .iter()
        .map(|p| p.retain)
        .collect();
    assert_eq!(got, vec![false, false]);

    // Whatever the option, a retained message sent because of a new
    // subscription carries retain 1; MQTT 3.1.1 subscribers too.
    let mut old = RawClient::connect_ok(addr, connect_packet(Protocol::V311, "old")).await?;
    old.subscribe("lamps/2/state", QoS::AtMostOnce).await?;
    assert!(old.recv_publish().await?.retain);
    Ok(())
}

#[tokio::test]
async fn empty_payload_clears_the_retained_message_for_good() -> anyhow::Result<()> {
    let mut broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut live = RawClient::v5(addr, "live").await?;
    live.subscribe("lamps/#", QoS::AtMostOnce).await?;
    let mut publisher = RawClient::v5(addr, "lamp").await?;
    publisher
        .publish(retained("lamps/3/state", QoS::AtLeastOnce, "on"))
        .await?;
    publisher
        .publish(retained("lamps/4/state", QoS::AtLeastOnce, "off"))
        .await?;
    publisher
        .publish(retained("lamps/3/state", QoS::AtLeastOnce, ""))
        .await?;
    drop(publisher);
    // The clearing message itself is delivered to current subscribers.
    let mut payloads = Vec::new();
    for _ in 0..3 {
        payloads.push(live.recv_publish().await?.payload.to_vec());
    }
    assert_eq!(payloads, vec![b"on".to_vec(), b"off".to_vec(), Vec::new()]);

    for round in ["before restart", "after restart"] {
        let mut c = RawClient::v5(addr, "late").await?;
        c.subscribe("lamps/#", QoS::AtMostOnce).await?;
        let got = publishes(c.drain().await?);
        assert_eq!(got.len(), 1, "{round}: {got:?}");
        assert_eq!(got[0].topic, "lamps/4/state");
        assert!(got[0].retain);
        drop(c);
        if round == "before restart" {
            broker.restart().await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn expired_retained_message_is_no_longer_sent() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut publisher = RawClient::v5(addr, "lamp").await?;
    let mut p = retained("lamps/5/state", QoS::AtLeastOnce, "on");
    p.properties.message_expiry_interval = Some(1);
    publisher.publish(p).await?;
    let published = Instant::now();
    let mut forever = retained("lamps/6/state", QoS::AtLeastOnce, "on");
    forever.properties.message_expiry_interval = Some(3600);
    publisher.publish(forever).await?;

    let mut c = RawClient::v5(addr, "viewer").await?;
    c.subscribe("lamps/5/state", QoS::AtMostOnce).await?;
    let p = c.recv_publish().await?;
    assert_eq!(p.properties.message_expiry_interval, Some(1));
    drop(c);

    wait_for_async("the retained message to expire", TIMEOUT, || async {
        let Ok(mut c) = RawClient::v5(addr, "viewer").await else {
            return false;
        };
        c.subscribe("lamps/5/state", QoS::AtMostOnce).await.is_ok()
            && c.drain().await.is_ok_and(|got| got.is_empty())
    })
    .await?;
    let elapsed = published.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "expired after {elapsed:?}"
    );

    let mut c = RawClient::v5(addr, "viewer").await?;
    c.subscribe("lamps/6/state", QoS::AtMostOnce).await?;
    let p = c.recv_publish().await?;
    let remaining = p.properties.message_expiry_interval.unwrap_or(0);
    assert!((3590..=3600).contains(&remaining), "remaining {remaining}");
    Ok(())
}

#[tokio::test]
async fn expired_queued_message_is_dropped_and_others_carry_what_remains() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut connect = connect_packet(Protocol::V5, "offline");
    connect.properties.session_expiry_interval = Some(600);
    let mut c = RawClient::connect_ok(addr, connect.clone()).await?;
    c.subscribe("queue/#", QoS::AtLeastOnce).await?;
    c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await?;

    let mut publisher = RawClient::v5(addr, "feeder").await?;
    for (t, expiry) in [
        ("queue/1", Some(1)),
        ("queue/2", Some(10)),
        ("queue/3", None),
    ] {
        let mut p = publish_packet(t, QoS::AtLeastOnce, None, t);
        p.properties.message_expiry_interval = expiry;
        publisher.publish(p).await?;
    }
    let published = Instant::now();
    // Expiry is measured on the wall clock: let more than the first
    // message's second pass, without reaching the second message's ten.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    connect.clean_start = false;
    let mut c = RawClient::connect_ok(addr, connect).await?;
    let first = c.recv_publish().await?;
    let second = c.recv_publish().await?;
    let elapsed = published.elapsed().as_secs_f64();
    assert_eq!(first.topic, "queue/2", "queue/1 expired while queued");
    let remaining = first.properties.message_expiry_interval.unwrap_or(0);
    let expected = (10.0 - elapsed).ceil() as u32;
    assert!(
        remaining == expected || remaining == expected + 1,
        "remaining {remaining} after {elapsed:.1} s of 10"
    );
    assert!(remaining < 10);
    assert_eq!(second.topic, "queue/3");
    assert_eq!(second.properties.message_expiry_interval, None);
    Ok(())
}
