//! MQTT over secure WebSocket (`transport = "wss"`): the same mutual TLS
//! and identity as MQTT over TCP, then an upgrade that requires the
//! `mqtt` subprotocol. Peers: paho-mqtt's own WebSocket transport, and
//! rumqttc and the raw codec client through a tokio-tungstenite relay.

mod common;

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bytes::BytesMut;
use civitas_broker::{AuthMode, Broker, BrokerConfig, Transport};
use civitas_mqtt::{Packet, Protocol, QoS, ReasonCode, Subscribe, Subscription, decode, encode};
use civitas_testkit::{
    ClientTls, ClientWebSocket, TestBroker, TestBrokerOptions, client_config, external, listener,
    wait_for, ws_connect, ws_tunnel,
};
use common::V4Client;
use common::raw::{RawClient, connect_packet, options, publish_packet};
use common::v5::V5Client;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const T: &str = "city/centre/things";

/// The default mutual-TLS listener, a mutual-TLS wss listener ("wss") and
/// a password wss listener ("wss-pw").
async fn wss_broker() -> anyhow::Result<TestBroker> {
    let mut config = BrokerConfig::default();
    config
        .listeners
        .push(listener("wss", AuthMode::Mtls, Transport::Wss, true));
    config
        .listeners
        .push(listener("wss-pw", AuthMode::Password, Transport::Wss, true));
    TestBroker::start_with(TestBrokerOptions { config }).await
}

#[tokio::test]
async fn rumqttc_over_wss_with_a_device_certificate() -> anyhow::Result<()> {
    let broker = wss_broker().await?;
    let cc = broker.device("control-center")?;
    let mut console = V4Client::connect(broker.mqtt_options(&cc).await?).await?;
    console
        .client
        .subscribe("city/#", rumqttc::QoS::AtLeastOnce)
        .await?;
    console.suback().await?;

    let lamp = broker.device("lamp-ws")?;
    let relay = ws_tunnel(
        broker.addr_of("wss"),
        Some(client_config(ClientTls::Device(&lamp))?),
    )
    .await?;

    // MQTT 3.1.1: publish over WebSocket, received over TCP.
    let mut options = rumqttc::MqttOptions::new("lamp-ws", "127.0.0.1", relay.port());
    options.set_keep_alive(Duration::from_secs(30));
    let mut v4 = V4Client::connect(options).await?;
    let telemetry = format!("{T}/lamp-ws/telemetry");
    v4.client
        .publish(
            &telemetry,
            rumqttc::QoS::ExactlyOnce,
            false,
            "over websocket",
        )
        .await?;
    let p = console.next_publish().await?;
    assert_eq!(
        (p.topic.as_str(), p.payload.as_ref()),
        (telemetry.as_str(), &b"over websocket"[..])
    );

    // And the other way: a command sent over TCP arrives over WebSocket.
    let command = format!("{T}/lamp-ws/cmd/power");
    v4.client
        .subscribe(&command, rumqttc::QoS::AtLeastOnce)
        .await?;
    v4.suback().await?;
    console
        .client
        .publish(&command, rumqttc::QoS::AtLeastOnce, false, "off")
        .await?;
    assert_eq!(v4.next_publish().await?.payload.as_ref(), b"off");
    drop(v4);

    // MQTT 5 over the same listener.
    let mut options = rumqttc::v5::MqttOptions::new("lamp-ws", "127.0.0.1", relay.port());
    options.set_keep_alive(Duration::from_secs(30));
    let mut v5 = V5Client::connect(options).await?;
    v5.client
        .subscribe(&command, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await?;
    v5.suback().await?;
    console
        .client
        .publish(&command, rumqttc::QoS::AtLeastOnce, false, "on")
        .await?;
    assert_eq!(v5.next_publish().await?.payload.as_ref(), b"on");
    Ok(())
}

/// Send `packets` encoded back to back, cut into WebSocket messages at
/// `cuts` (byte offsets).
async fn send_cut(
    ws: &mut ClientWebSocket,
    packets: &[Packet],
    protocol: Protocol,
    cuts: &[usize],
) -> anyhow::Result<()> {
    let mut bytes = BytesMut::new();
    for p in packets {
        encode(p, protocol, &mut bytes)?;
    }
    let bytes = bytes.freeze();
    let mut start = 0;
    for &end in cuts.iter().chain([bytes.len()].iter()) {
        let end = end.min(bytes.len());
        if end > start {
            ws.send(Message::Binary(bytes.slice(start..end))).await?;
            start = end;
        }
    }
    Ok(())
}

/// The next MQTT packet from the broker, decoded across messages.
async fn recv(
    ws: &mut ClientWebSocket,
    buf: &mut BytesMut,
    protocol: Protocol,
) -> anyhow::Result<Packet> {
    loop {
        if let Some(p) = decode(buf, Some(protocol), u32::MAX)? {
            return Ok(p);
        }
        let message = tokio::time::timeout(common::TIMEOUT, ws.next())
            .await
            .context("no message from the broker")?
            .context("WebSocket closed")??;
        match message {
            Message::Binary(b) => buf.extend_from_slice(&b),
            Message::Ping(_) | Message::Pong(_) => {}
            other => bail!("unexpected WebSocket message {other:?}"),
        }
    }
}

#[tokio::test]
async fn packets_may_span_messages_and_messages_may_hold_several_packets() -> anyhow::Result<()> {
    let broker = wss_broker().await?;
    let lamp = broker.device("lamp-frames")?;
    let tls = client_config(ClientTls::Device(&lamp))?;
    let (mut ws, response) =
        ws_connect(broker.addr_of("wss"), Some(tls), "/mqtt", Some("mqtt")).await?;
    assert_eq!(response.headers()["sec-websocket-protocol"], "mqtt");
    let v5 = Protocol::V5;
    let mut buf = BytesMut::new();

    // CONNECT cut into single bytes at the start, then the rest.
    let connect = Packet::Connect(Box::new(connect_packet(v5, "lamp-frames")));
    send_cut(&mut ws, &[connect], v5, &[1, 2, 3, 7]).await?;
    match recv(&mut ws, &mut buf, v5).await? {
        Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::SUCCESS),
        other => bail!("expected CONNACK, got {other:?}"),
    }

    // SUBSCRIBE, PUBLISH and PINGREQ in one message, the PUBLISH cut
    // across the next one.
    let topic = format!("{T}/lamp-frames/cmd/x");
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: 1,
        subscriptions: vec![Subscription {
            filter: topic.clone(),
            options: options(QoS::AtLeastOnce),
        }],
        properties: Default::default(),
    });
    let publish = Packet::Publish(publish_packet(&topic, QoS::AtLeastOnce, Some(2), "batched"));
    let mut first = BytesMut::new();
    encode(&subscribe, v5, &mut first)?;
    let cut = first.len() + 5;
    send_cut(&mut ws, &[subscribe, publish, Packet::PingReq], v5, &[cut]).await?;

    let mut got = Vec::new();
    while got.len() < 4 {
        got.push(recv(&mut ws, &mut buf, v5).await?);
    }
    ensure!(
        got.iter().any(|p| matches!(p, Packet::SubAck(_))),
        "{got:?}"
    );
    ensure!(
        got.iter()
            .any(|p| matches!(p, Packet::PubAck(a) if a.packet_id == 2)),
        "{got:?}"
    );
    ensure!(got.iter().any(|p| matches!(p, Packet::PingResp)), "{got:?}");
    let delivered = got.iter().find_map(|p| match p {
        Packet::Publish(p) => Some(p),
        _ => None,
    });
    assert_eq!(delivered.map(|p| p.payload.as_ref()), Some(&b"batched"[..]));

    // A text message is not MQTT: the connection is closed.
    ws.send(Message::text("hello")).await?;
    let closed = tokio::time::timeout(common::TIMEOUT, async {
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    ensure!(
        closed.is_ok(),
        "the broker kept a connection that sent text"
    );
    Ok(())
}

#[tokio::test]
async fn upgrade_without_the_mqtt_subprotocol_is_refused_with_400() -> anyhow::Result<()> {
    let broker = wss_broker().await?;
    let lamp = broker.device("lamp-proto")?;
    let tls = client_config(ClientTls::Device(&lamp))?;
    for offered in [None, Some("mqttv3.1"), Some("chat, superchat")] {
        match ws_connect(broker.addr_of("wss"), Some(tls.clone()), "/mqtt", offered).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), StatusCode::BAD_REQUEST),
            Err(e) => bail!("{offered:?}: expected HTTP 400, got {e}"),
            Ok(_) => bail!("{offered:?}: the upgrade was accepted"),
        }
    }
    // Among several offers, mqtt is chosen; any path is served.
    let (_, response) =
        ws_connect(broker.addr_of("wss"), Some(tls), "/", Some("chat, mqtt")).await?;
    assert_eq!(response.headers()["sec-websocket-protocol"], "mqtt");
    Ok(())
}

#[tokio::test]
async fn no_client_certificate_or_a_foreign_one_is_refused() -> anyhow::Result<()> {
    let broker = wss_broker().await?;
    let stats = broker.stats();
    let ca = broker.pki.ca_bundle();
    let foreign = broker.pki.foreign_device("intruder")?;
    for tls in [
        client_config(ClientTls::ServerOnly(&ca))?,
        client_config(ClientTls::Device(&foreign))?,
    ] {
        let result = ws_connect(broker.addr_of("wss"), Some(tls), "/mqtt", Some("mqtt")).await;
        ensure!(
            result.is_err(),
            "a WebSocket was opened without a valid client certificate"
        );
    }
    wait_for("TLS failures to be counted", common::TIMEOUT, || {
        stats.tls_failures.load(Ordering::Relaxed) >= 2
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn the_certificate_is_the_identity_over_websocket_too() -> anyhow::Result<()> {
    let broker = wss_broker().await?;
    let lamp = broker.device("lamp-id")?;
    let relay = ws_tunnel(
        broker.addr_of("wss"),
        Some(client_config(ClientTls::Device(&lamp))?),
    )
    .await?;
    let (_, ack) =
        RawClient::connect_with(relay, connect_packet(Protocol::V5, "lamp-other")).await?;
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    let mut c = RawClient::v5(relay, "lamp-id").await?;
    // Outside its own subtree a device is refused as over TCP.
    let code = c
        .publish(publish_packet(
            &format!("{T}/lamp-x/telemetry"),
            QoS::AtLeastOnce,
            Some(1),
            "x",
        ))
        .await?;
    assert_eq!(code, ReasonCode::NOT_AUTHORIZED);
    Ok(())
}

#[test]
fn websocket_listeners_are_validated() {
    let check = |transport, tls: bool, acknowledged: bool| {
        let mut l = listener("web", AuthMode::Mtls, transport, tls);
        if !tls {
            l.auth = AuthMode::Anonymous;
        }
        l.plaintext_acknowledged = acknowledged;
        let config = BrokerConfig {
            listeners: vec![l],
            ..BrokerConfig::default()
        };
        Broker::validate_listeners(&config, true).map_err(|e| e.to_string())
    };
    assert!(check(Transport::Wss, true, false).is_ok());
    assert!(check(Transport::Ws, false, true).is_ok());
    let err = check(Transport::Wss, false, true).unwrap_err();
    assert!(err.contains("wss") && err.contains("tls = true"), "{err}");
    let err = check(Transport::Ws, true, false).unwrap_err();
    assert!(err.contains("ws"), "{err}");
    let err = check(Transport::Ws, false, false).unwrap_err();
    assert!(err.contains("plaintext_acknowledged"), "{err}");
}

#[tokio::test]
async fn plaintext_ws_on_loopback_when_acknowledged() -> anyhow::Result<()> {
    let mut config = BrokerConfig::default();
    let mut l = listener("ws", AuthMode::Anonymous, Transport::Ws, false);
    l.permissions = civitas_broker::Permissions::allow_all();
    config.listeners.push(l);
    let broker = TestBroker::start_with(TestBrokerOptions { config }).await?;
    let relay = ws_tunnel(broker.addr_of("ws"), None).await?;
    let mut c = RawClient::v5(relay, "dev-tool").await?;
    c.subscribe("dev/#", QoS::AtMostOnce).await?;
    c.publish(publish_packet("dev/x", QoS::AtMostOnce, None, "hi"))
        .await?;
    assert_eq!(c.recv_publish().await?.payload.as_ref(), b"hi");
    Ok(())
}

/// Run the paho-mqtt WebSocket script with `config`; its JSON result.
async fn paho(python: &std::path::Path, config: Value) -> anyhow::Result<Value> {
    let script: std::path::PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "websocket",
        "paho_wss.py",
    ]
    .iter()
    .collect();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(python)
            .arg(&script)
            .arg(config.to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("paho_wss.py did not finish within 60 s")??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "paho_wss.py failed with {}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .with_context(|| format!("no JSON result: {stdout}\nstderr: {stderr}"))
}

#[tokio::test]
async fn paho_mqtt_over_wss_with_certificate_and_with_password() -> anyhow::Result<()> {
    let Some(python) = external::require(external::PAHO) else {
        return Ok(());
    };
    let broker = wss_broker().await?;
    let cc = broker.device("control-center")?;
    let mut console = V4Client::connect(broker.mqtt_options(&cc).await?).await?;
    console
        .client
        .subscribe("city/#", rumqttc::QoS::AtLeastOnce)
        .await?;
    console.suback().await?;

    let password = broker.set_password("gw-paho")?;
    let lamp = broker.device("lamp-paho")?;
    for version in ["3.1.1", "5"] {
        // Mutual TLS: the paho client presents the device certificate.
        let topic = format!("{T}/lamp-paho/cmd/{version}");
        let result = paho(
            &python,
            json!({
                "host": "localhost", "port": broker.addr_of("wss").port(), "path": "/mqtt",
                "ca": broker.pki.ca_bundle(), "cert": lamp.cert, "key": lamp.key,
                "version": version, "client_id": "lamp-paho",
                "topic": topic, "payload": format!("paho {version}"),
            }),
        )
        .await?;
        assert_eq!(result["topic"], json!(topic));
        assert_eq!(result["payload"], json!(format!("paho {version}")));
        assert_eq!(result["qos"], json!(1));
        let seen = console.next_publish().await?;
        assert_eq!(
            seen.topic, topic,
            "the TCP subscriber sees the WebSocket publish"
        );

        // Password: server-authenticated TLS, credentials in CONNECT.
        let topic = format!("{T}/gw-paho/cmd/{version}");
        let result = paho(
            &python,
            json!({
                "host": "localhost", "port": broker.addr_of("wss-pw").port(), "path": "/mqtt",
                "ca": broker.pki.ca_bundle(), "username": "gw-paho", "password": password,
                "version": version, "client_id": "gw-paho",
                "topic": topic, "payload": "gateway",
            }),
        )
        .await?;
        assert_eq!(result["payload"], json!("gateway"));
        assert_eq!(console.next_publish().await?.topic, topic);
    }
    Ok(())
}
