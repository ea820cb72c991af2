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
