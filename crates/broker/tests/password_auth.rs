//! `auth = "password"` listeners: gateways log in with a username and a
//! password issued by civitas, over TLS (server authentication only) or
//! plain TCP on loopback. Wrong or missing credentials get 0x86 (MQTT 5)
//! or return code 4 (3.1.1), a client id other than the username gets
//! 0x85, and credentials follow the file while the broker runs.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use civitas_broker::{AuthMode, Broker, BrokerConfig, Transport};
use civitas_mqtt::{Connect, Packet, Protocol, ReasonCode, encode};
use civitas_testkit::{
    ClientTls, TestBroker, TestBrokerOptions, client_config, listener, mtls_tunnel, wait_for,
    wait_for_async,
};
use common::V4Client;
use common::raw::{RawClient, connect_packet};
use common::v5::V5Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: &str = "city/centre/things";

/// The default mutual-TLS listener plus password listeners over TLS
/// ("gw-tls") and over plain TCP on loopback ("gw-plain").
async fn password_broker() -> anyhow::Result<TestBroker> {
    let mut config = BrokerConfig::default();
    config.listeners.push(listener(
        "gw-tls",
        AuthMode::Password,
        Transport::Mqtt,
        true,
    ));
    config.listeners.push(listener(
        "gw-plain",
        AuthMode::Password,
        Transport::Mqtt,
        false,
    ));
    TestBroker::start_with(TestBrokerOptions { config }).await
}

/// A local endpoint carried over TLS (server authentication only, no
/// client certificate) to the "gw-tls" listener.
async fn tls_endpoint(broker: &TestBroker) -> anyhow::Result<SocketAddr> {
    let ca = broker.pki.ca_bundle();
    mtls_tunnel(
        broker.addr_of("gw-tls"),
        client_config(ClientTls::ServerOnly(&ca))?,
    )
    .await
}

fn login(protocol: Protocol, client_id: &str, username: &str, password: &str) -> Connect {
    let mut c = connect_packet(protocol, client_id);
    c.username = Some(username.to_string());
    c.password = Some(Bytes::copy_from_slice(password.as_bytes()));
    c
}

async fn connack_code(addr: SocketAddr, connect: Connect) -> anyhow::Result<ReasonCode> {
    let (_, ack) = RawClient::connect_with(addr, connect).await?;
    Ok(ack.reason_code)
}

#[tokio::test]
async fn gateway_publishes_and_subscribes_over_plain_loopback() -> anyhow::Result<()> {
    let broker = password_broker().await?;
    let password = broker.set_password("gw-1")?;
    let cc = broker.device("control-center")?;
    let mut console = V4Client::connect(broker.mqtt_options(&cc).await?).await?;
    console
        .client
        .subscribe("city/#", rumqttc::QoS::AtLeastOnce)
        .await?;
    console.suback().await?;

    let addr = broker.addr_of("gw-plain");
    let mut options = rumqttc::MqttOptions::new("gw-1", "127.0.0.1", addr.port());
    options.set_credentials("gw-1", password.as_str());
    let mut gateway = V4Client::connect(options).await?;
    gateway
        .client
        .subscribe(format!("{T}/gw-1/cmd/#"), rumqttc::QoS::AtLeastOnce)
        .await?;
    gateway.suback().await?;

    let telemetry = format!("{T}/gw-1/telemetry");
    gateway
        .client
        .publish(&telemetry, rumqttc::QoS::AtLeastOnce, false, "42")
        .await?;
    let p = console.next_publish().await?;
    assert_eq!(
        (p.topic.as_str(), p.payload.as_ref()),
        (telemetry.as_str(), &b"42"[..])
    );

    // Permissions use the username as ${client_id}, as for certificates.
    let command = format!("{T}/gw-1/cmd/reboot");
    console
        .client
        .publish(&command, rumqttc::QoS::AtLeastOnce, false, "now")
        .await?;
    let p = gateway.next_publish().await?;
    assert_eq!(p.topic, command);
    Ok(())
}

#[tokio::test]
async fn gateway_connects_over_tls_without_a_client_certificate() -> anyhow::Result<()> {
    let broker = password_broker().await?;
    let password = broker.set_password("gw-5")?;
    let addr = tls_endpoint(&broker).await?;

    let mut options = rumqttc::v5::MqttOptions::new("gw-5", "127.0.0.1", addr.port());
    options.set_credentials("gw-5", password.as_str());
    let mut gateway = V5Client::connect(options).await?;
    let topic = format!("{T}/gw-5/cmd/dim");
    gateway
        .client
        .subscribe(&topic, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await?;
    gateway.suback().await?;
    gateway
        .client
        .publish(
            &topic,
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            "50",
        )
        .await?;
    let p = gateway.next_publish().await?;
    assert_eq!(common::v5::topic(&p), topic);
    assert_eq!(p.payload.as_ref(), b"50");

    // MQTT 3.1.1 over the same TLS listener.
    let mut options = rumqttc::MqttOptions::new("gw-5", "127.0.0.1", addr.port());
    options.set_credentials("gw-5", password.as_str());
    V4Client::connect(options).await?;
    Ok(())
}

#[tokio::test]
async fn wrong_missing_or_unknown_credentials_are_refused() -> anyhow::Result<()> {
    let broker = password_broker().await?;
    let password = broker.set_password("gw-2")?;
    let stats = broker.stats();
    let before = stats.auth_failures.load(Ordering::Relaxed);

    for addr in [broker.addr_of("gw-plain"), tls_endpoint(&broker).await?] {
        let wrong = login(Protocol::V5, "gw-2", "gw-2", "not-the-password");
        assert_eq!(
            connack_code(addr, wrong).await?,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        );
        let unknown = login(Protocol::V5, "gw-x", "gw-x", &password);
        assert_eq!(
            connack_code(addr, unknown).await?,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        );
        let mut no_password = connect_packet(Protocol::V5, "gw-2");
        no_password.username = Some("gw-2".into());
        assert_eq!(
            connack_code(addr, no_password).await?,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        );
        let anonymous = connect_packet(Protocol::V5, "gw-2");
        assert_eq!(
            connack_code(addr, anonymous).await?,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        );
    }

    // MQTT 3.1.1 on the wire: CONNACK with return code 4, then the close.
    let mut out = BytesMut::new();
    let wrong = login(Protocol::V311, "gw-2", "gw-2", "not-the-password");
    encode(&Packet::Connect(Box::new(wrong)), Protocol::V311, &mut out)?;
    let mut tcp = tokio::net::TcpStream::connect(broker.addr_of("gw-plain")).await?;
    tcp.write_all(&out).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(common::TIMEOUT, tcp.read_to_end(&mut answer)).await??;
    assert_eq!(answer, [0x20, 0x02, 0x00, 0x04]);

    // Every refusal is counted; the right password still works.
    wait_for("auth failures to be counted", common::TIMEOUT, || {
        stats.auth_failures.load(Ordering::Relaxed) - before >= 9
    })
    .await?;
    let good = login(Protocol::V5, "gw-2", "gw-2", &password);
    assert_eq!(
        connack_code(broker.addr_of("gw-plain"), good).await?,
        ReasonCode::SUCCESS
    );
    Ok(())
}

#[tokio::test]
async fn client_id_must_equal_the_username() -> anyhow::Result<()> {
    let broker = password_broker().await?;
    let password = broker.set_password("gw-3")?;
    let addr = broker.addr_of("gw-plain");
    let spoof = login(Protocol::V5, "gw-4", "gw-3", &password);
    assert_eq!(
        connack_code(addr, spoof).await?,
        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID
    );
    let spoof = login(Protocol::V311, "gw-4", "gw-3", &password);
    assert_eq!(
        connack_code(addr, spoof).await?,
        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID
    );

    // An MQTT 5 client without a client id is given the username.
    let (_, ack) =
        RawClient::connect_with(addr, login(Protocol::V5, "", "gw-3", &password)).await?;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(
        ack.properties.assigned_client_identifier.as_deref(),
        Some("gw-3")
    );
    Ok(())
}

#[tokio::test]
async fn credentials_follow_the_file_without_a_restart() -> anyhow::Result<()> {
    let broker = password_broker().await?;
    let addr = broker.addr_of("gw-plain");
    let refused = login(Protocol::V5, "gw-new", "gw-new", "guess");
    assert_eq!(
        connack_code(addr, refused).await?,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );

    // Written to the file only: the broker finds it by polling.
    let password = broker.password_file().set("gw-new")?;
    let good = login(Protocol::V5, "gw-new", "gw-new", &password);
    wait_for_async("the new credential to be accepted", common::TIMEOUT, || {
        let good = good.clone();
        async move {
            connack_code(addr, good)
                .await
                .is_ok_and(|c| c == ReasonCode::SUCCESS)
        }
    })
    .await?;
    let mut connected = RawClient::connect_ok(addr, good.clone()).await?;

    assert!(broker.password_file().remove("gw-new")?);
    // Probes use another client id: while the password is still valid
    // they get 0x85 rather than taking the session over.
    let probe = login(Protocol::V5, "gw-probe", "gw-new", &password);
    wait_for_async(
        "the removed credential to be refused",
        common::TIMEOUT,
        || {
            let probe = probe.clone();
            async move {
                connack_code(addr, probe)
                    .await
                    .is_ok_and(|c| c == ReasonCode::BAD_USER_NAME_OR_PASSWORD)
            }
        },
    )
    .await?;
    // Revocation applies to new connections; this one stays up.
    assert!(connected.ping().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_broken_file_keeps_the_previous_credentials() -> anyhow::Result<()> {
    let broker = password_broker().await?;
    let password = broker.set_password("gw-6")?;
    let addr = broker.addr_of("gw-plain");
    let good = login(Protocol::V5, "gw-6", "gw-6", &password);
    wait_for_async("the credential to be accepted", common::TIMEOUT, || {
        let good = good.clone();
        async move {
            connack_code(addr, good)
                .await
                .is_ok_and(|c| c == ReasonCode::SUCCESS)
        }
    })
    .await?;
    let path = broker.password_file().path().to_path_buf();
    let text = std::fs::read_to_string(&path)?;
    std::fs::write(&path, format!("{text}gw-7 without a hash\n"))?;
    // Several reload periods pass; the broken file is never taken.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while tokio::time::Instant::now() < deadline {
        assert_eq!(connack_code(addr, good.clone()).await?, ReasonCode::SUCCESS);
    }
    Ok(())
}

#[tokio::test]
async fn a_flood_of_bad_logins_does_not_stop_the_broker() -> anyhow::Result<()> {
    let broker = password_broker().await?;
    let password = broker.set_password("gw-8")?;
    let addr = broker.addr_of("gw-plain");
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..24 {
        flood.spawn(connack_code(
            addr,
            login(Protocol::V5, "gw-8", "gw-8", &format!("guess-{i}")),
        ));
    }
    // A device with a certificate is served meanwhile.
    let lamp = broker.device("lamp-1")?;
    V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    while let Some(code) = flood.join_next().await {
        let code = code??;
        // Busy (0x89) only if a slot never came free within the connect
        // timeout; never success.
        assert!(
            code == ReasonCode::BAD_USER_NAME_OR_PASSWORD || code == ReasonCode::SERVER_BUSY,
            "{code:?}"
        );
    }
    let good = login(Protocol::V5, "gw-8", "gw-8", &password);
    assert_eq!(connack_code(addr, good).await?, ReasonCode::SUCCESS);
    Ok(())
}

#[test]
fn plaintext_password_listener_is_refused_off_loopback() {
    let mut config = BrokerConfig::default();
    let mut l = listener("gw", AuthMode::Password, Transport::Mqtt, false);
    l.bind = "0.0.0.0:1883".parse().unwrap();
    config.listeners = vec![l.clone()];
    let err = Broker::validate_listeners(&config, true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gw") && err.contains("loopback") && err.contains("tls"),
        "{err}"
    );

    for bind in ["127.0.0.1:1883", "[::1]:1883"] {
        config.listeners[0].bind = bind.parse().unwrap();
        Broker::validate_listeners(&config, true).unwrap();
    }
    // With TLS any address is fine.
    l.tls = true;
    config.listeners = vec![l];
    Broker::validate_listeners(&config, true).unwrap();
}

#[tokio::test]
async fn a_password_listener_needs_credentials() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = civitas_store::Store::open(&dir.path().join("db"), Default::default())?;
    let config = BrokerConfig {
        listeners: vec![listener("gw", AuthMode::Password, Transport::Mqtt, false)],
        ..BrokerConfig::default()
    };
    let broker = Broker::new(
        config,
        store,
        None,
        std::sync::Arc::new(civitas_broker::SystemClock),
        tokio_util::sync::CancellationToken::new(),
    )?;
    let err = broker.run(Vec::new()).await.unwrap_err().to_string();
    assert!(err.contains("credentials"), "{err}");
    Ok(())
}
