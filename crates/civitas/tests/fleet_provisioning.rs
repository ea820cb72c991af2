//! Fleet provisioning against a running `civitas up`: an operator creates
//! a template and a claim with the CLI; a device holding the claim gets
//! its own key, certificate and thing over MQTT, then connects as that
//! thing. The claim itself may do nothing else.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use civitas_testkit::{ClientTls, DeviceFiles, client_config, mtls_tunnel};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeReasonCode};
use serde_json::{Value, json};
use support::Civitas;

const TIMEOUT: Duration = Duration::from_secs(10);

async fn civitas_ok(data_dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_civitas"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CIVITAS_CONFIG")
        .current_dir(data_dir.parent().unwrap_or(data_dir))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out).await??;
    ensure!(
        out.status.success(),
        "civitas {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

struct Client {
    client: AsyncClient,
    events: EventLoop,
}

impl Client {
    async fn connect(
        server: std::net::SocketAddr,
        client_id: &str,
        files: &DeviceFiles,
    ) -> anyhow::Result<Client> {
        let local = mtls_tunnel(server, client_config(ClientTls::Device(files))?).await?;
        let mut options = MqttOptions::new(client_id, "127.0.0.1", local.port());
        options.set_keep_alive(Duration::from_secs(30));
        let (client, events) = AsyncClient::new(options, 10);
        let mut c = Client { client, events };
        match c.next(|p| matches!(p, Packet::ConnAck(_))).await? {
            Packet::ConnAck(ack) if ack.code == rumqttc::ConnectReturnCode::Success => Ok(c),
            other => bail!("{client_id} refused: {other:?}"),
        }
    }

    async fn next(&mut self, mut pred: impl FnMut(&Packet) -> bool) -> anyhow::Result<Packet> {
        loop {
            match tokio::time::timeout(TIMEOUT, self.events.poll()).await?? {
                Event::Incoming(p) if pred(&p) => return Ok(p),
                _ => {}
            }
        }
    }

    async fn subscribe(&mut self, filter: &str) -> anyhow::Result<bool> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        match self.next(|p| matches!(p, Packet::SubAck(_))).await? {
            Packet::SubAck(ack) => Ok(!ack.return_codes.contains(&SubscribeReasonCode::Failure)),
            _ => unreachable!(),
        }
    }

    /// Publishes `request` and returns the reply's topic suffix and body.
    async fn ask(&mut self, request: &str, body: &Value) -> anyhow::Result<(String, Value)> {
        for outcome in ["accepted", "rejected"] {
            ensure!(self.subscribe(&format!("{request}/{outcome}")).await?);
        }
        self.client
            .publish(request, QoS::AtLeastOnce, false, body.to_string())
            .await?;
        match self.next(|p| matches!(p, Packet::Publish(_))).await? {
            Packet::Publish(p) => {
                let outcome = p
                    .topic
                    .strip_prefix(&format!("{request}/"))
                    .context("a reply on another topic")?
                    .to_string();
                Ok((outcome, serde_json::from_slice(&p.payload)?))
            }
            _ => unreachable!(),
        }
    }
}

fn field<'a>(v: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    v[key]
        .as_str()
        .with_context(|| format!("{key} missing in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_from_the_cli_provisions_a_device_over_mqtt() -> anyhow::Result<()> {
    civitas_testkit::init();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let server = Civitas::start(&data)?;

    let template = dir.path().join("streetlights.json");
    std::fs::write(
        &template,
        r#"{"thingNameParameter":"SerialNumber","thingNamePrefix":"lamp-"}"#,
    )?;
    civitas_ok(
        &data,
        &[
            "provision",
            "template",
            "create",
            "streetlights",
            "--file",
            template.to_str().context("path")?,
        ],
    )
    .await?;
    let claim: Value = serde_json::from_str(
        &civitas_ok(
            &data,
            &[
                "provision",
                "claim",
                "create",
                "factory-1",
                "--template",
                "streetlights",
                "--json",
            ],
        )
        .await?,
    )?;
    assert_eq!(claim["policy"], "civitas-claim-streetlights");
    let bundle =
        |k: &str| -> anyhow::Result<std::path::PathBuf> { Ok(field(&claim["bundle"], k)?.into()) };
    let claim_files = DeviceFiles {
        name: "factory-1".into(),
        cert: bundle("certificate")?,
        key: bundle("key")?,
        ca: bundle("ca")?,
        serial_hex: field(&claim, "serial")?.into(),
    };

    let mut device = Client::connect(server.addr, "factory-1", &claim_files).await?;
    assert!(!device.subscribe("city/#").await?);
    let (outcome, created) = device
        .ask("$aws/certificates/create/json", &json!({}))
        .await?;
    assert_eq!(outcome, "accepted", "{created}");
    let (outcome, registered) = device
        .ask(
            "$aws/provisioning-templates/streetlights/provision/json",
            &json!({
                "certificateOwnershipToken": field(&created, "certificateOwnershipToken")?,
                "parameters": { "SerialNumber": "0007" }
            }),
        )
        .await?;
    assert_eq!(outcome, "accepted", "{registered}");
    assert_eq!(field(&registered, "thingName")?, "lamp-0007");

    // The device stores what it was given and connects as its thing.
    let own = dir.path().join("lamp-0007");
    std::fs::create_dir_all(&own)?;
    std::fs::write(own.join("cert.pem"), field(&created, "certificatePem")?)?;
    std::fs::write(own.join("key.pem"), field(&created, "privateKey")?)?;
    let files = DeviceFiles {
        name: "lamp-0007".into(),
        cert: own.join("cert.pem"),
        key: own.join("key.pem"),
        ca: claim_files.ca.clone(),
        serial_hex: field(&created, "certificateId")?.into(),
    };
    let mut lamp = Client::connect(server.addr, "lamp-0007", &files).await?;
    assert!(lamp.subscribe("city/centre/things/lamp-0007/#").await?);
    lamp.client
        .publish(
            "city/centre/things/lamp-0007/telemetry",
            QoS::AtLeastOnce,
            false,
            "42",
        )
        .await?;
    match lamp.next(|p| matches!(p, Packet::Publish(_))).await? {
        Packet::Publish(p) => assert_eq!(&p.payload[..], b"42"),
        _ => unreachable!(),
    }
    Ok(())
}
