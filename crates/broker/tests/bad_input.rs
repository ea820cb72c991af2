//! Bad input from one client closes that client, with the reason code an
//! MQTT 5 client can read, and nothing else: a bystander connected before
//! keeps publishing and receiving. Also clients that never get as far as
//! CONNECT, with or without finishing the TLS handshake.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use civitas_mqtt::{Packet, Protocol, QoS, ReasonCode, SubAck, SubscriptionOptions, encode};
use civitas_testkit::{TestBroker, TestBrokerOptions, wait_for};
use common::TIMEOUT;
use common::raw::{RawClient, connect_packet, options, publish_packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn anon_broker() -> anyhow::Result<TestBroker> {
    let mut o = TestBrokerOptions::with_anonymous();
    o.config.limits.connect_timeout_secs = 1;
    TestBroker::start_with(o).await
}

/// A client that is subscribed to its own topic and checks, after the
/// offender is gone, that the broker still serves it.
struct Bystander {
    client: RawClient,
}

impl Bystander {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Bystander> {
        let mut client = RawClient::v5(addr, "bystander").await?;
        client.subscribe("bystander/echo", QoS::AtLeastOnce).await?;
        Ok(Bystander { client })
    }

    async fn still_served(&mut self) -> anyhow::Result<()> {
        let c = &mut self.client;
        let code = c
            .publish(publish_packet(
                "bystander/echo",
                QoS::AtMostOnce,
                None,
                "still here",
            ))
            .await?;
        assert_eq!(code, ReasonCode::SUCCESS);
        let p = c.recv_publish().await?;
        assert_eq!(&p.payload[..], b"still here");
        Ok(())
    }
}

/// Connect an MQTT 5 offender, send `bytes`, and return the DISCONNECT
/// reason it was closed with.
async fn offend(addr: SocketAddr, bytes: &[u8]) -> anyhow::Result<ReasonCode> {
    let mut c = RawClient::v5(addr, "offender").await?;
    c.send_bytes(bytes).await?;
    c.disconnected().await
}

fn encoded(packet: &Packet, protocol: Protocol) -> anyhow::Result<Vec<u8>> {
    let mut out = BytesMut::new();
    encode(packet, protocol, &mut out)?;
    Ok(out.to_vec())
}

#[tokio::test]
async fn malformed_packets_get_0x81() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut bystander = Bystander::connect(addr).await?;

    // PUBLISH with QoS 3.
    let mut qos3 = encoded(
        &Packet::Publish(publish_packet("a/b", QoS::AtMostOnce, None, "x")),
        Protocol::V5,
    )?;
    qos3[0] |= 0b0110;
    assert_eq!(offend(addr, &qos3).await?, ReasonCode::MALFORMED_PACKET);
    // A topic length that runs past the end of the packet.
    assert_eq!(
        offend(addr, &[0x30, 0x04, 0x00, 0x10, b'a', b'b']).await?,
        ReasonCode::MALFORMED_PACKET
    );
    // A remaining length that is not a valid variable byte integer.
    assert_eq!(
        offend(addr, &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]).await?,
        ReasonCode::MALFORMED_PACKET
    );
    // Reserved packet type 0.
    assert_eq!(
        offend(addr, &[0x00, 0x00]).await?,
        ReasonCode::MALFORMED_PACKET
    );
    // Wrong fixed-header flags on SUBSCRIBE.
    assert_eq!(
        offend(addr, &[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00]).await?,
        ReasonCode::MALFORMED_PACKET
    );
    bystander.still_served().await?;
    assert!(broker.stats().protocol_errors.load(Ordering::Relaxed) >= 5);
    Ok(())
}

#[tokio::test]
async fn invalid_utf8_in_a_topic_gets_0x81() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut bystander = Bystander::connect(addr).await?;
    // PUBLISH QoS 0, topic "a" 0xC3 0x28 (an invalid two-byte sequence),
    // empty properties, no payload.
    let bytes = [0x30, 0x06, 0x00, 0x03, b'a', 0xc3, 0x28, 0x00];
    assert_eq!(offend(addr, &bytes).await?, ReasonCode::MALFORMED_PACKET);
    // The same in a SUBSCRIBE filter.
    let bytes = [0x82, 0x08, 0x00, 0x01, 0x00, 0x00, 0x02, 0xff, b'#', 0x00];
    assert_eq!(offend(addr, &bytes).await?, ReasonCode::MALFORMED_PACKET);
    bystander.still_served().await
}

#[tokio::test]
async fn wildcard_in_a_publish_topic_gets_0x90() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut bystander = Bystander::connect(addr).await?;
    for topic in ["bystander/#", "bystander/+"] {
        let bytes = encoded(
            &Packet::Publish(publish_packet(topic, QoS::AtLeastOnce, Some(1), "x")),
            Protocol::V5,
        )?;
        assert_eq!(offend(addr, &bytes).await?, ReasonCode::TOPIC_NAME_INVALID);
    }
    bystander.still_served().await
}

#[tokio::test]
async fn protocol_errors_get_0x82() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut bystander = Bystander::connect(addr).await?;

    let second_connect = encoded(
        &Packet::Connect(Box::new(connect_packet(Protocol::V5, "offender"))),
        Protocol::V5,
    )?;
    assert_eq!(
        offend(addr, &second_connect).await?,
        ReasonCode::PROTOCOL_ERROR
    );

    // Packet identifier 0 on a QoS 1 PUBLISH.
    let mut zero_id = encoded(
        &Packet::Publish(publish_packet("a", QoS::AtLeastOnce, Some(1), "x")),
        Protocol::V5,
    )?;
    // Fixed header (2 bytes), topic "a" (3 bytes), then the packet id.
    zero_id[5..7].copy_from_slice(&[0, 0]);
    assert_eq!(offend(addr, &zero_id).await?, ReasonCode::PROTOCOL_ERROR);

    // A packet only a server sends.
    let suback = encoded(
        &Packet::SubAck(SubAck {
            packet_id: 1,
            reason_codes: vec![ReasonCode::GRANTED_QOS_0],
            properties: Default::default(),
        }),
        Protocol::V5,
    )?;
    assert_eq!(offend(addr, &suback).await?, ReasonCode::PROTOCOL_ERROR);

    // A subscription identifier in a PUBLISH from a client.
    let mut with_id = publish_packet("bystander/echo", QoS::AtMostOnce, None, "x");
    with_id.properties.subscription_identifiers = vec![5];
    let bytes = encoded(&Packet::Publish(with_id), Protocol::V5)?;
    assert_eq!(offend(addr, &bytes).await?, ReasonCode::PROTOCOL_ERROR);

    bystander.still_served().await?;
    // The offending PUBLISH above was not delivered.
    let c = &mut bystander.client;
    assert!(c.drain().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn invalid_filters_are_refused_one_by_one_in_suback() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut c = RawClient::v5(addr, "filters").await?;
    let q1 = options(QoS::AtLeastOnce);
    let ack = c
        .subscribe_with(
            &[
                ("a/#/b", q1),
                ("ok/+", q1),
                ("a+/b", q1),
                ("$share/g", q1),
                ("$share/g+/x", q1),
                ("", q1),
                ("$share/g/ok/#", SubscriptionOptions::default()),
            ],
            None,
        )
        .await?;
    let f = ReasonCode::TOPIC_FILTER_INVALID;
    assert_eq!(
        ack.reason_codes,
        vec![
            f,
            ReasonCode::GRANTED_QOS_1,
            f,
            f,
            f,
            f,
            ReasonCode::GRANTED_QOS_0
        ]
    );
    // The connection stays up and the good filter works.
    let mut publisher = RawClient::v5(addr, "pub").await?;
    publisher
        .publish(publish_packet("ok/1", QoS::AtLeastOnce, None, "x"))
        .await?;
    assert_eq!(c.recv_publish().await?.topic, "ok/1");

    // MQTT 3.1.1 has a single failure code.
    let mut old = RawClient::connect_ok(addr, connect_packet(Protocol::V311, "old")).await?;
    let ack = old
        .subscribe_with(&[("a/#/b", q1), ("ok/+", q1)], None)
        .await?;
    assert_eq!(
        ack.reason_codes,
        vec![ReasonCode::UNSPECIFIED_ERROR, ReasonCode::GRANTED_QOS_1]
    );
    Ok(())
}

/// Wait for the peer to close `stream`; how long it took from `start`.
async fn closed_after(
    stream: &mut tokio::net::TcpStream,
    start: Instant,
) -> anyhow::Result<Duration> {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(TIMEOUT, stream.read(&mut buf)).await? {
            Ok(0) | Err(_) => return Ok(start.elapsed()),
            Ok(_) => {}
        }
    }
}

fn about_one_second(elapsed: Duration) {
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}, the connect timeout is 1 s"
    );
}

#[tokio::test]
async fn client_that_never_sends_connect_is_closed_after_the_connect_timeout() -> anyhow::Result<()>
{
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut bystander = Bystander::connect(addr).await?;

    // Plain TCP, not a byte sent.
    let start = Instant::now();
    let mut idle = tokio::net::TcpStream::connect(addr).await?;
    // Half a CONNECT does not count either.
    let mut partial = tokio::net::TcpStream::connect(addr).await?;
    partial.write_all(&[0x10, 0x20, 0x00, 0x04, b'M']).await?;
    // Over mutual TLS: the tunnel finishes the handshake, then sends nothing.
    let lamp = broker.device("lamp-30")?;
    let (_, port) = broker.mqtt5_options(&lamp).await?.broker_address();
    let mut tls_idle = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;

    about_one_second(closed_after(&mut idle, start).await?);
    about_one_second(closed_after(&mut partial, start).await?);
    about_one_second(closed_after(&mut tls_idle, start).await?);
    bystander.still_served().await
}

#[tokio::test]
async fn client_that_never_finishes_the_tls_handshake_is_closed() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let mut bystander = Bystander::connect(broker.addr_of("anon")).await?;
    let before = broker.stats().tls_failures.load(Ordering::Relaxed);

    let start = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(broker.addr()).await?;
    // The first bytes of a TLS record header announcing a ClientHello,
    // and then nothing.
    let mut stalled = tokio::net::TcpStream::connect(broker.addr()).await?;
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await?;

    about_one_second(closed_after(&mut silent, start).await?);
    about_one_second(closed_after(&mut stalled, start).await?);
    wait_for("two TLS failures counted", TIMEOUT, || {
        broker.stats().tls_failures.load(Ordering::Relaxed) >= before + 2
    })
    .await?;
    bystander.still_served().await
}

#[tokio::test]
async fn packets_before_connect_close_without_connack() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut bystander = Bystander::connect(addr).await?;
    let mut c = RawClient::open(addr, Protocol::V5).await?;
    c.send(&Packet::PingReq).await?;
    assert!(c.closed().await?.is_empty());

    // A CONNECT whose client id is not UTF-8.
    let mut c = RawClient::open(addr, Protocol::V5).await?;
    let mut connect = encoded(
        &Packet::Connect(Box::new(connect_packet(Protocol::V5, "ab"))),
        Protocol::V5,
    )?;
    let n = connect.len();
    connect[n - 1] = 0xff;
    c.send_bytes(&connect).await?;
    let got = c.closed().await?;
    assert!(
        got.iter()
            .all(|p| matches!(p, Packet::ConnAck(a) if a.reason_code.is_error())),
        "{got:?}"
    );
    bystander.still_served().await
}
