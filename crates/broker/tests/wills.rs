//! Will messages: the Will Delay Interval (and its cancellation when the
//! client comes back in time), the session expiry that bounds it,
//! DISCONNECT with and without 0x04, takeover, and the will's properties.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use civitas_mqtt::{Connect, Packet, Protocol, QoS, ReasonCode, Will, WillProperties};
use civitas_testkit::{TestBroker, TestBrokerOptions};
use common::raw::{RawClient, connect_packet};
use common::v5::{V5Client, topic};

async fn anon_broker() -> anyhow::Result<TestBroker> {
    TestBroker::start_with(TestBrokerOptions::with_anonymous()).await
}

/// A v5 CONNECT with a will on `wills/{client_id}` saying "gone".
fn with_will(client_id: &str, delay: Option<u32>, expiry: u32) -> Connect {
    let mut c = connect_packet(Protocol::V5, client_id);
    c.properties.session_expiry_interval = Some(expiry);
    c.will = Some(Will {
        topic: format!("wills/{client_id}"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: WillProperties {
            will_delay_interval: delay,
            ..Default::default()
        },
    });
    c
}

async fn watcher(addr: SocketAddr) -> anyhow::Result<RawClient> {
    let mut w = RawClient::v5(addr, "watcher").await?;
    w.subscribe("wills/#", QoS::AtLeastOnce).await?;
    Ok(w)
}

fn topics(packets: &[Packet]) -> Vec<String> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p.topic.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn will_is_published_after_its_delay() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut w = watcher(addr).await?;
    let c = RawClient::connect_ok(addr, with_will("pump-1", Some(1), 30)).await?;
    drop(c);
    let lost = Instant::now();
    let p = w.recv_publish().await?;
    let elapsed = lost.elapsed();
    assert_eq!(p.topic, "wills/pump-1");
    assert_eq!(&p.payload[..], b"gone");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "published after {elapsed:?}, the delay is 1 s"
    );
    Ok(())
}

#[tokio::test]
async fn will_is_cancelled_when_the_client_returns_within_the_delay() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut w = watcher(addr).await?;
    let returning = RawClient::connect_ok(addr, with_will("pump-2", Some(1), 30)).await?;
    let gone_for_good = RawClient::connect_ok(addr, with_will("pump-3", Some(1), 30)).await?;
    // pump-2 goes first, so its will would be due first.
    drop(returning);
    let lost = Instant::now();
    drop(gone_for_good);
    let mut back = with_will("pump-2", Some(1), 30);
    back.clean_start = false;
    let (_back, ack) = RawClient::connect_with(addr, back).await?;
    assert!(ack.session_present);
    assert!(
        lost.elapsed() < Duration::from_millis(900),
        "reconnected too late for the test"
    );

    // pump-3's will marks the time by which pump-2's would have come.
    assert_eq!(w.recv_publish().await?.topic, "wills/pump-3");
    assert!(topics(&w.drain().await?).is_empty());
    Ok(())
}

#[tokio::test]
async fn will_is_published_when_the_session_ends_before_the_delay() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut w = watcher(addr).await?;

    // Session expiry 0: the session ends with the connection.
    let c = RawClient::connect_ok(addr, with_will("pump-4", Some(30), 0)).await?;
    drop(c);
    let lost = Instant::now();
    assert_eq!(w.recv_publish().await?.topic, "wills/pump-4");
    assert!(lost.elapsed() < Duration::from_millis(900));

    // Session expiry 1 s, will delay 30 s: published when the session
    // expires.
    let c = RawClient::connect_ok(addr, with_will("pump-5", Some(30), 1)).await?;
    drop(c);
    let lost = Instant::now();
    assert_eq!(w.recv_publish().await?.topic, "wills/pump-5");
    let elapsed = lost.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "published after {elapsed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn disconnect_with_will_publishes_it_and_a_normal_disconnect_does_not() -> anyhow::Result<()>
{
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut w = watcher(addr).await?;

    let c = RawClient::connect_ok(addr, with_will("pump-6", None, 0)).await?;
    c.disconnect(ReasonCode::DISCONNECT_WITH_WILL).await?;
    assert_eq!(w.recv_publish().await?.topic, "wills/pump-6");

    let c = RawClient::connect_ok(addr, with_will("pump-7", None, 0)).await?;
    c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await?;
    // Also with a persistent session and a will delay.
    let c = RawClient::connect_ok(addr, with_will("pump-8", Some(1), 30)).await?;
    c.disconnect(ReasonCode::NORMAL_DISCONNECTION).await?;
    // A 0x04 disconnect with a delay still waits for it, then publishes.
    let c = RawClient::connect_ok(addr, with_will("pump-9", Some(1), 30)).await?;
    c.disconnect(ReasonCode::DISCONNECT_WITH_WILL).await?;
    assert_eq!(w.recv_publish().await?.topic, "wills/pump-9");
    assert!(topics(&w.drain().await?).is_empty());
    Ok(())
}

#[tokio::test]
async fn disconnect_with_an_error_reason_keeps_the_will() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut w = watcher(addr).await?;
    // Only 0x00 discards the will (MQTT 5 section 3.14.4); a client that
    // leaves because something went wrong on its side still has it sent.
    for (id, reason) in [
        ("pump-11", ReasonCode::UNSPECIFIED_ERROR),
        ("pump-12", ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR),
    ] {
        let c = RawClient::connect_ok(addr, with_will(id, None, 0)).await?;
        c.disconnect(reason).await?;
        assert_eq!(w.recv_publish().await?.topic, format!("wills/{id}"));
    }
    Ok(())
}

#[tokio::test]
async fn takeover_publishes_the_first_connections_will() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut w = watcher(addr).await?;
    let mut first = RawClient::connect_ok(addr, with_will("pump-10", None, 30)).await?;
    let mut second = connect_packet(Protocol::V5, "pump-10");
    second.clean_start = false;
    second.properties.session_expiry_interval = Some(30);
    let _second = RawClient::connect_ok(addr, second).await?;
    assert_eq!(first.disconnected().await?, ReasonCode::SESSION_TAKEN_OVER);
    assert_eq!(w.recv_publish().await?.topic, "wills/pump-10");
    Ok(())
}

#[tokio::test]
async fn will_keeps_its_properties_and_retain_flag() -> anyhow::Result<()> {
    use rumqttc::v5::mqttbytes::QoS as RQoS;
    use rumqttc::v5::mqttbytes::v5::{LastWill, LastWillProperties};

    let broker = TestBroker::start().await?;
    let cc = broker.device("control-center")?;
    let mut sub = V5Client::connect(broker.mqtt5_options(&cc).await?).await?;
    sub.client.subscribe("city/#", RQoS::AtLeastOnce).await?;
    sub.suback().await?;

    let lamp = broker.device("lamp-50")?;
    let will_topic = "city/east/things/lamp-50/status";
    let mut options = broker.mqtt5_options(&lamp).await?;
    options.set_last_will(LastWill::new(
        will_topic,
        "{\"online\":false}",
        RQoS::AtLeastOnce,
        true,
        Some(LastWillProperties {
            delay_interval: None,
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(600),
            content_type: Some("application/json".into()),
            response_topic: Some("city/east/things/lamp-50/cmd/revive".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            user_properties: vec![("site".into(), "east".into()), ("site".into(), "b".into())],
        }),
    ));
    let device = V5Client::connect(options).await?;
    device.kill();

    let p = sub.next_publish().await?;
    assert_eq!(topic(&p), will_topic);
    assert_eq!(p.payload, "{\"online\":false}");
    assert!(
        !p.retain,
        "a live subscriber sees retain 0 without retain-as-published"
    );
    let props = p.properties.unwrap_or_default();
    assert_eq!(props.payload_format_indicator, Some(1));
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        props.response_topic.as_deref(),
        Some("city/east/things/lamp-50/cmd/revive")
    );
    assert_eq!(props.correlation_data.as_deref(), Some(&b"\x00\x01"[..]));
    assert_eq!(
        props.user_properties,
        vec![
            ("site".to_string(), "east".to_string()),
            ("site".into(), "b".into())
        ]
    );
    let expiry = props.message_expiry_interval.unwrap_or(0);
    assert!((598..=600).contains(&expiry), "remaining expiry {expiry}");

    // It was retained as well.
    drop(sub);
    let mut late = V5Client::connect(broker.mqtt5_options(&cc).await?).await?;
    late.client.subscribe(will_topic, RQoS::AtLeastOnce).await?;
    let p = late.next_publish().await?;
    assert!(p.retain);
    assert_eq!(p.payload, "{\"online\":false}");
    Ok(())
}

#[tokio::test]
async fn will_expiry_counts_from_its_publication_not_from_the_disconnect() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut w = watcher(addr).await?;
    // The delay (2 s) is longer than the message expiry (1 s): the will
    // must still be delivered, with its full expiry interval.
    let mut connect = with_will("pump-13", Some(2), 30);
    if let Some(will) = connect.will.as_mut() {
        will.properties.message_expiry_interval = Some(1);
        will.retain = true;
    }
    let c = RawClient::connect_ok(addr, connect).await?;
    drop(c);
    let p = w.recv_publish().await?;
    assert_eq!(p.topic, "wills/pump-13");
    assert_eq!(p.properties.message_expiry_interval, Some(1));
    // Retained, it is there for a subscriber right after publication.
    let mut late = RawClient::v5(addr, "late").await?;
    late.subscribe("wills/pump-13", QoS::AtMostOnce).await?;
    let retained = late.recv_publish().await?;
    assert!(retained.retain);
    Ok(())
}
