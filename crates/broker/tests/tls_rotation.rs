//! A server certificate rotation is picked up live: new connections see
//! the new certificate while sessions established before keep working.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use civitas_testkit::{ClientTls, TestBroker, client_config};
use common::V4Client;
use rumqttc::QoS;
use rustls::pki_types::ServerName;

/// The serial of the certificate the server presents to a new connection.
async fn presented_serial(broker: &TestBroker) -> anyhow::Result<String> {
    let lamp = broker.device("probe")?;
    let config = client_config(ClientTls::Device(&lamp))?;
    let tcp = tokio::net::TcpStream::connect(broker.addr()).await?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (_, conn) = tls.get_ref();
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| anyhow::anyhow!("no server certificate"))?;
    Ok(civitas_pki::peer_identity(cert.as_ref())?.serial_hex)
}

#[tokio::test]
async fn rotating_the_server_certificate_keeps_existing_sessions() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let before = presented_serial(&broker).await?;

    let cc = broker.device("control-center")?;
    let mut watcher = V4Client::connect(broker.mqtt_options(&cc).await?).await?;
    watcher.client.subscribe("city/#", QoS::AtLeastOnce).await?;
    watcher.suback().await?;
    let lamp = broker.device("lamp-1")?;
    let device = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;

    // The operator renews the server certificate in place.
    let renewed = broker.pki.ca.issue_server(
        &["localhost".to_string()],
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        Duration::from_secs(86400),
        time::OffsetDateTime::now_utc(),
    )?;
    let dir = tempfile::tempdir()?;
    let written = renewed.write_bundle(dir.path(), "server")?;
    std::fs::copy(&written.cert, &broker.pki.server_cert)?;
    std::fs::copy(
        written
            .key
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no key"))?,
        &broker.pki.server_key,
    )?;
    assert!(broker.reload_tls()?, "the reload saw no change");

    // New connections get the new certificate...
    let after = presented_serial(&broker).await?;
    assert_ne!(before, after);
    assert_eq!(after, renewed.serial_hex);
    // ...and the sessions from before carry on.
    device
        .client
        .publish(
            "city/a/things/lamp-1/telemetry",
            QoS::AtLeastOnce,
            false,
            "still here",
        )
        .await?;
    let p = watcher.next_publish().await?;
    assert_eq!(&p.payload[..], b"still here");
    Ok(())
}

/// One MQTT 5 CONNECT over a fresh TLS connection made with `config`
/// (whose session store keeps tickets between calls): how the handshake
/// went, and the broker's answer — None when it closed without one.
async fn connect_over_tls(
    broker: &TestBroker,
    config: std::sync::Arc<rustls::ClientConfig>,
    client_id: &str,
) -> anyhow::Result<(Option<rustls::HandshakeKind>, Option<civitas_mqtt::Packet>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(broker.addr()).await?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let kind = tls.get_ref().1.handshake_kind();
    let mut out = bytes::BytesMut::new();
    let connect = common::raw::connect_packet(civitas_mqtt::Protocol::V5, client_id);
    civitas_mqtt::encode(
        &civitas_mqtt::Packet::Connect(Box::new(connect)),
        civitas_mqtt::Protocol::V5,
        &mut out,
    )?;
    tls.write_all(&out).await?;
    let mut buf = bytes::BytesMut::new();
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(p) =
                civitas_mqtt::decode(&mut buf, Some(civitas_mqtt::Protocol::V5), u32::MAX)?
            {
                return anyhow::Ok(Some(p));
            }
            match tls.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            }
        }
    })
    .await??;
    Ok((kind, answer))
}

#[tokio::test]
async fn a_revoked_certificate_cannot_come_back_on_a_session_ticket() -> anyhow::Result<()> {
    let mut broker = TestBroker::start().await?;
    let lamp = broker.device("lamp-7")?;
    // One client configuration throughout: its session store keeps the
    // tickets the broker hands out.
    let config = client_config(ClientTls::Device(&lamp))?;
    let accepted = |answer: &Option<civitas_mqtt::Packet>| matches!(answer, Some(civitas_mqtt::Packet::ConnAck(a)) if a.reason_code == civitas_mqtt::ReasonCode::SUCCESS);

    let (kind, answer) = connect_over_tls(&broker, config.clone(), "lamp-7").await?;
    assert_eq!(kind, Some(rustls::HandshakeKind::Full));
    assert!(accepted(&answer), "{answer:?}");
    // The next connection resumes the TLS session: no certificate
    // verification, a cheaper handshake.
    let (kind, answer) = connect_over_tls(&broker, config.clone(), "lamp-7").await?;
    assert_eq!(kind, Some(rustls::HandshakeKind::Resumed));
    assert!(accepted(&answer), "{answer:?}");

    broker
        .pki
        .ca
        .revoke(&lamp.serial_hex, time::OffsetDateTime::now_utc())?;
    assert!(broker.reload_tls()?, "the new CRL was not picked up");

    // The client still holds a ticket and resumes — and the broker,
    // verifying the resumed chain against the new CRL, closes it.
    let (kind, answer) = connect_over_tls(&broker, config, "lamp-7").await?;
    assert_eq!(kind, Some(rustls::HandshakeKind::Resumed));
    assert_eq!(answer, None, "a revoked certificate got an answer");
    Ok(())
}
