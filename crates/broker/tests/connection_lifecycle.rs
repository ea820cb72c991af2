//! The life of a connection: CONNECT negotiation (client ids, protocol
//! levels, keep-alive), session takeover, the keep-alive timeout and the
//! DISCONNECT every MQTT 5 client gets when the broker shuts down.

mod common;

use std::time::{Duration, Instant};

use civitas_mqtt::{Packet, Protocol, QoS, ReasonCode};
use civitas_testkit::{TestBroker, TestBrokerOptions};
use common::raw::{RawClient, connect_packet, publish_packet};
use common::v5::{DisconnectReasonCode, V5Client};

async fn anon_broker() -> anyhow::Result<TestBroker> {
    TestBroker::start_with(TestBrokerOptions::with_anonymous()).await
}

#[tokio::test]
async fn v5_empty_client_id_is_assigned_one_and_limits_are_advertised() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let (_c, ack) =
        RawClient::connect_with(broker.addr_of("anon"), connect_packet(Protocol::V5, "")).await?;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert!(!ack.session_present);
    let assigned = ack
        .properties
        .assigned_client_identifier
        .clone()
        .unwrap_or_default();
    assert!(assigned.starts_with("civitas-"), "assigned id {assigned:?}");

    let limits = civitas_broker::Limits::default();
    let p = &ack.properties;
    assert_eq!(p.receive_maximum, Some(limits.receive_maximum));
    assert_eq!(p.maximum_packet_size, Some(limits.max_packet_size));
    assert_eq!(p.topic_alias_maximum, Some(limits.topic_alias_maximum));
    assert_eq!(p.shared_subscription_available, Some(true));
    assert_eq!(p.subscription_identifiers_available, Some(true));
    assert_eq!(p.server_keep_alive, None, "60 s is within the limit");

    // Two anonymous clients never share an assigned id.
    let (_d, ack2) =
        RawClient::connect_with(broker.addr_of("anon"), connect_packet(Protocol::V5, "")).await?;
    assert_ne!(ack2.properties.assigned_client_identifier, Some(assigned));
    Ok(())
}

#[tokio::test]
async fn v5_empty_client_id_over_mutual_tls_is_the_certificate_common_name() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let lamp = broker.device("lamp-20")?;
    let (_, port) = broker.mqtt5_options(&lamp).await?.broker_address();
    let tunnel = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (mut c, ack) = RawClient::connect_with(tunnel, connect_packet(Protocol::V5, "")).await?;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(
        ack.properties.assigned_client_identifier.as_deref(),
        Some("lamp-20")
    );
    // The identity's topic grants apply under the assigned id.
    let ack = c
        .subscribe("city/north/things/lamp-20/cmd/#", QoS::AtLeastOnce)
        .await?;
    assert_eq!(ack.reason_codes, vec![ReasonCode::GRANTED_QOS_1]);
    Ok(())
}

#[tokio::test]
async fn v311_empty_client_id_needs_clean_session() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let mut persistent = connect_packet(Protocol::V311, "");
    persistent.clean_start = false;
    let (mut c, ack) = RawClient::connect_with(broker.addr_of("anon"), persistent).await?;
    // Return code 2, "identifier rejected".
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert!(c.closed().await?.is_empty());

    let (_c, ack) =
        RawClient::connect_with(broker.addr_of("anon"), connect_packet(Protocol::V311, "")).await?;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    Ok(())
}

/// A CONNECT for protocol `name` at `level`, clean session, client id "x".
fn connect_bytes(name: &str, level: u8) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(&[level, 0x02, 0x00, 0x3c]);
    if level >= 5 {
        body.push(0); // empty property block
    }
    body.extend_from_slice(&[0x00, 0x01, b'x']);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

#[tokio::test]
async fn unsupported_protocol_levels_are_refused_in_a_format_the_client_reads() -> anyhow::Result<()>
{
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");

    // MQTT 3.1 ("MQIsdp", level 3): 3.1.1-style CONNACK, return code 1.
    let mut c = RawClient::open(addr, Protocol::V311).await?;
    c.send_bytes(&connect_bytes("MQIsdp", 3)).await?;
    match c.recv().await? {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.reason_code, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
        }
        other => anyhow::bail!("expected CONNACK, got {other:?}"),
    }
    assert!(c.closed().await?.is_empty());

    // "MQTT" level 3 is not 3.1.1 either.
    let mut c = RawClient::open(addr, Protocol::V311).await?;
    c.send_bytes(&connect_bytes("MQTT", 3)).await?;
    match c.recv().await? {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.reason_code, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION)
        }
        other => anyhow::bail!("expected CONNACK, got {other:?}"),
    }

    // A later version (level 6) gets the MQTT 5 CONNACK with 0x84.
    let mut c = RawClient::open(addr, Protocol::V5).await?;
    c.send_bytes(&connect_bytes("MQTT", 6)).await?;
    match c.recv().await? {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.reason_code, ReasonCode(0x84));
            assert!(!ack.session_present);
        }
        other => anyhow::bail!("expected CONNACK, got {other:?}"),
    }
    assert!(c.closed().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn second_connection_takes_over_the_session() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut first_connect = connect_packet(Protocol::V5, "meter-1");
    first_connect.properties.session_expiry_interval = Some(60);
    let mut first = RawClient::connect_ok(addr, first_connect.clone()).await?;
    first.subscribe("meters/1/cmd", QoS::AtLeastOnce).await?;

    let mut second_connect = first_connect;
    second_connect.clean_start = false;
    let (mut second, ack) = RawClient::connect_with(addr, second_connect).await?;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert!(
        ack.session_present,
        "the session moves to the new connection"
    );
    assert_eq!(first.disconnected().await?, ReasonCode::SESSION_TAKEN_OVER);

    // The subscription came with the session.
    let mut publisher = RawClient::v5(addr, "console").await?;
    publisher
        .publish(publish_packet(
            "meters/1/cmd",
            QoS::AtLeastOnce,
            None,
            "read",
        ))
        .await?;
    let p = second.recv_publish().await?;
    assert_eq!(p.topic, "meters/1/cmd");
    assert_eq!(&p.payload[..], b"read");
    Ok(())
}

#[tokio::test]
async fn takeover_over_mutual_tls_disconnects_the_first_device() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let lamp = broker.device("lamp-21")?;
    let mut first = V5Client::connect(broker.mqtt5_options(&lamp).await?).await?;
    let _second = V5Client::connect(broker.mqtt5_options(&lamp).await?).await?;
    assert_eq!(
        first.server_disconnect().await?,
        DisconnectReasonCode::SessionTakenOver
    );
    Ok(())
}

#[tokio::test]
async fn silent_client_is_disconnected_after_one_and_a_half_keep_alives() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut connect = connect_packet(Protocol::V5, "sleepy");
    connect.keep_alive = 1;
    let mut silent = RawClient::connect_ok(addr, connect.clone()).await?;
    let start = Instant::now();

    // A client that pings in time on the same settings stays connected.
    connect.client_id = "awake".into();
    let mut awake = RawClient::connect_ok(addr, connect).await?;

    let mut silent_task = tokio::spawn(async move { silent.disconnected().await });
    let mut pings = 0;
    let reason = loop {
        tokio::select! {
            r = &mut silent_task => break r??,
            _ = tokio::time::sleep(Duration::from_millis(400)) => {
                assert!(awake.ping().await?.is_empty());
                pings += 1;
            }
        }
    };
    let elapsed = start.elapsed();
    assert_eq!(reason, ReasonCode::KEEP_ALIVE_TIMEOUT);
    assert!(
        elapsed >= Duration::from_millis(1400),
        "closed after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(4), "closed after {elapsed:?}");
    // The pinging client outlived the silent one and keeps working.
    assert!(pings >= 3);
    assert!(awake.ping().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn keep_alive_above_the_limit_is_capped_in_connack_and_enforced() -> anyhow::Result<()> {
    let mut options = TestBrokerOptions::with_anonymous();
    options.config.limits.max_keep_alive_secs = 1;
    let broker = TestBroker::start_with(options).await?;
    let addr = broker.addr_of("anon");

    let mut connect = connect_packet(Protocol::V5, "slow-pinger");
    connect.keep_alive = 600;
    let (mut c, ack) = RawClient::connect_with(addr, connect).await?;
    assert_eq!(ack.properties.server_keep_alive, Some(1));
    let start = Instant::now();
    assert_eq!(c.disconnected().await?, ReasonCode::KEEP_ALIVE_TIMEOUT);
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}"
    );

    // Keep-alive 0 (none) is not allowed to outlast the limit either.
    let mut connect = connect_packet(Protocol::V5, "never-pings");
    connect.keep_alive = 0;
    let (_c, ack) = RawClient::connect_with(addr, connect).await?;
    assert_eq!(ack.properties.server_keep_alive, Some(1));
    Ok(())
}

#[tokio::test]
async fn v311_keep_alive_timeout_closes_without_disconnect() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let mut connect = connect_packet(Protocol::V311, "old-sensor");
    connect.keep_alive = 1;
    let mut c = RawClient::connect_ok(broker.addr_of("anon"), connect).await?;
    assert!(
        c.closed().await?.is_empty(),
        "MQTT 3.1.1 has no DISCONNECT from the server"
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_sends_server_shutting_down_to_v5_clients() -> anyhow::Result<()> {
    let mut broker = anon_broker().await?;
    let lamp = broker.device("lamp-22")?;
    let mut device = V5Client::connect(broker.mqtt5_options(&lamp).await?).await?;
    let mut raw = RawClient::v5(broker.addr_of("anon"), "bench").await?;
    let mut old = RawClient::connect_ok(
        broker.addr_of("anon"),
        connect_packet(Protocol::V311, "old-bench"),
    )
    .await?;
    broker.stop().await?;
    assert_eq!(
        device.server_disconnect().await?,
        DisconnectReasonCode::ServerShuttingDown
    );
    assert_eq!(raw.disconnected().await?, ReasonCode::SERVER_SHUTTING_DOWN);
    assert!(old.closed().await?.is_empty());
    Ok(())
}
