//! `civitas up` answers device shadow requests: the example streetlight
//! reports its state on its classic shadow and reads it back after the
//! process has been restarted.

mod support;

use std::time::Duration;

use anyhow::{Context, bail};
use civitas_testkit::{ClientTls, client_config, mtls_tunnel};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::Value;
use support::{Civitas, bundle};

const DEVICE: &str = "streetlight-001";
const SHADOW: &str = "$aws/things/streetlight-001/shadow";

async fn connect(
    civitas: &Civitas,
    data: &std::path::Path,
) -> anyhow::Result<(AsyncClient, EventLoop)> {
    let files = bundle(data, DEVICE);
    let local = mtls_tunnel(civitas.addr, client_config(ClientTls::Device(&files))?).await?;
    let mut o = MqttOptions::new(DEVICE, "127.0.0.1", local.port());
    o.set_keep_alive(Duration::from_secs(30));
    let (client, events) = AsyncClient::new(o, 10);
    client
        .subscribe(format!("{SHADOW}/+/accepted"), QoS::AtLeastOnce)
        .await?;
    client
        .subscribe(format!("{SHADOW}/+/rejected"), QoS::AtLeastOnce)
        .await?;
    Ok((client, events))
}

/// The next PUBLISH: its topic and JSON payload.
async fn next_reply(events: &mut EventLoop) -> anyhow::Result<(String, Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, events.poll())
            .await
            .context("no shadow reply within 10 s")??;
        if let Event::Incoming(Packet::Publish(p)) = event {
            let doc = serde_json::from_slice(&p.payload).context("reply is not JSON")?;
            return Ok((p.topic, doc));
        }
    }
}

/// Wait for both SUBACKs; a refused subscription fails the test.
async fn subscribed(events: &mut EventLoop) -> anyhow::Result<()> {
    let mut acks = 0;
    while acks < 2 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.poll())
            .await
            .context("no SUBACK within 10 s")??;
        if let Event::Incoming(Packet::SubAck(s)) = event {
            if s.return_codes
                .iter()
                .any(|c| !matches!(c, rumqttc::SubscribeReasonCode::Success(_)))
            {
                bail!("shadow subscription refused: {s:?}");
            }
            acks += 1;
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_example_device_keeps_its_shadow_across_a_restart() -> anyhow::Result<()> {
    civitas_testkit::init();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");

    let civitas = Civitas::start(&data)?;
    let (client, mut events) = connect(&civitas, &data).await?;
    subscribed(&mut events).await?;
    client
        .publish(
            format!("{SHADOW}/update"),
            QoS::AtLeastOnce,
            false,
            r#"{"state":{"reported":{"power":"on"}},"clientToken":"boot"}"#,
        )
        .await?;
    let (topic, accepted) = next_reply(&mut events).await?;
    assert_eq!(topic, format!("{SHADOW}/update/accepted"));
    assert_eq!(accepted["version"], 1);
    assert_eq!(accepted["clientToken"], "boot");
    drop((client, events));
    assert!(civitas.terminate()?.success());

    let civitas = Civitas::start(&data)?;
    let (client, mut events) = connect(&civitas, &data).await?;
    subscribed(&mut events).await?;
    client
        .publish(format!("{SHADOW}/get"), QoS::AtLeastOnce, false, "{}")
        .await?;
    let (topic, doc) = next_reply(&mut events).await?;
    assert_eq!(topic, format!("{SHADOW}/get/accepted"));
    assert_eq!(doc["state"]["reported"]["power"], "on");
    assert_eq!(doc["version"], 1);
    Ok(())
}
