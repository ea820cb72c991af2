//! The registry CLI run as a real binary: with no server (it opens the
//! store itself) and against a running `civitas up` (over the admin
//! socket). `device add` bundles connect over mutual TLS, `device revoke`
//! lands in the CRL, `policy test` answers, `--json` parses.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context, ensure};
use civitas_testkit::{ClientTls, DeviceFiles, client_config, mtls_tunnel, wait_for_async};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use support::Civitas;

async fn civitas(data_dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_civitas"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CIVITAS_CONFIG")
        .current_dir(data_dir.parent().unwrap_or(data_dir))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    Ok(tokio::time::timeout(Duration::from_secs(60), out).await??)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
async fn ok(data_dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = civitas(data_dir, args).await?;
    ensure!(
        out.status.success(),
        "civitas {args:?} failed: {}",
        text(&out.stderr)
    );
    Ok(text(&out.stdout))
}

/// Runs a command that must fail; returns its stderr.
async fn fails(data_dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = civitas(data_dir, args).await?;
    ensure!(!out.status.success(), "civitas {args:?} succeeded");
    Ok(text(&out.stderr))
}

async fn json(data_dir: &Path, args: &[&str]) -> anyhow::Result<Value> {
    let mut args = args.to_vec();
    args.push("--json");
    let stdout = ok(data_dir, &args).await?;
    serde_json::from_str(&stdout).with_context(|| format!("{args:?} printed {stdout}"))
}

/// `device add NAME --json`: the serial and the bundle it wrote.
async fn add_device(
    data_dir: &Path,
    name: &str,
    extra: &[&str],
) -> anyhow::Result<(String, DeviceFiles)> {
    let mut args = vec!["device", "add", name];
    args.extend_from_slice(extra);
    let added = json(data_dir, &args).await?;
    let serial = added["serial"].as_str().context("serial")?.to_string();
    let path = |k: &str| -> anyhow::Result<std::path::PathBuf> {
        Ok(added["bundle"][k].as_str().context("bundle path")?.into())
    };
    let files = DeviceFiles {
        name: name.to_string(),
        cert: path("certificate")?,
        key: path("key")?,
        ca: path("ca")?,
        serial_hex: serial.clone(),
    };
    Ok((serial, files))
}

/// The serials listed in the CA's CRL file.
fn crl_serials(data_dir: &Path) -> anyhow::Result<Vec<String>> {
    let pem = std::fs::read(data_dir.join("pki/ca/crl.pem"))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem)?;
    let (_, crl) = x509_parser::parse_x509_crl(&pem.contents)?;
    Ok(crl
        .iter_revoked_certificates()
        .map(|r| {
            let raw = r.raw_serial();
            let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
            raw[start..].iter().map(|b| format!("{b:02x}")).collect()
        })
        .collect())
}

/// Connects as `device` over mutual TLS; `Ok(Some(client))` once CONNACK
/// accepts, `Ok(None)` when the server refuses (TLS or CONNACK).
async fn connect(
    server: std::net::SocketAddr,
    device: &DeviceFiles,
) -> anyhow::Result<Option<(AsyncClient, rumqttc::EventLoop)>> {
    let local = mtls_tunnel(server, client_config(ClientTls::Device(device))?).await?;
    let mut options = MqttOptions::new(&device.name, "127.0.0.1", local.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 10);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.poll()).await? {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                return Ok((ack.code == ConnectReturnCode::Success).then_some((client, events)));
            }
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
    }
}

const BAD_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Publish","Resource":"*"},
  {"Effect":"Allow","Action":["iot Publish"],"Resource":"*"}]}"#;

#[tokio::test]
async fn without_a_server_the_cli_opens_the_store_itself() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");

    ok(&data, &["group", "create", "north"]).await?;
    let stdout = ok(
        &data,
        &[
            "device",
            "add",
            "lamp-1",
            "--attr",
            "district=north",
            "--group",
            "north",
        ],
    )
    .await?;
    assert!(stdout.contains("Added lamp-1."), "{stdout}");
    let bundle = data.join("devices/lamp-1");
    for f in ["lamp-1.pem", "lamp-1.key", "ca.pem", "connect.txt"] {
        assert!(bundle.join(f).exists(), "{f} missing");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(bundle.join("lamp-1.key"))?
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let connect = std::fs::read_to_string(bundle.join("connect.txt"))?;
    assert!(
        connect.contains("mosquitto_pub") && connect.contains("-i lamp-1"),
        "{connect}"
    );

    let things = json(&data, &["device", "list"]).await?;
    assert_eq!(things[0]["name"], "lamp-1");
    assert_eq!(things[0]["attributes"]["district"], "north");
    let shown = json(&data, &["device", "show", "lamp-1"]).await?;
    let serial = shown["certificates"][0]["serial"]
        .as_str()
        .context("serial")?
        .to_string();
    assert_eq!(shown["certificates"][0]["status"], "ACTIVE");
    assert_eq!(shown["policies"][0]["policy"], "civitas-standard-device");

    // Policy documents are refused with the place of the mistake.
    std::fs::write(dir.path().join("bad.json"), BAD_POLICY)?;
    let bad = dir.path().join("bad.json");
    let stderr = fails(
        &data,
        &[
            "policy",
            "create",
            "city-lights",
            "--file",
            bad.to_str().context("path")?,
        ],
    )
    .await?;
    assert!(
        stderr.contains("policy create city-lights: Statement[1].Action[0]: "),
        "{stderr}"
    );
    let policies = json(&data, &["policy", "list"]).await?;
    assert_eq!(policies.as_array().map(Vec::len), Some(1));

    let allowed = ok(
        &data,
        &[
            "policy",
            "test",
            "--client",
            "lamp-1",
            "--action",
            "iot:Publish",
            "--resource",
            "city/centre/things/lamp-1/telemetry",
        ],
    )
    .await?;
    assert!(allowed.starts_with("allowed:"), "{allowed}");
    assert!(allowed.contains("Statement[1]"), "{allowed}");
    let denied = json(
        &data,
        &[
            "policy",
            "test",
            "--client",
            "lamp-1",
            "--action",
            "iot:Publish",
            "--resource",
            "city/centre/things/lamp-2/telemetry",
        ],
    )
    .await?;
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["effect"], "ImplicitDeny");

    let revoked = json(&data, &["device", "revoke", "lamp-1"]).await?;
    assert_eq!(revoked[0], serial.as_str());
    assert!(crl_serials(&data)?.contains(&serial));
    let certs = json(&data, &["cert", "list"]).await?;
    assert_eq!(certs[0]["status"], "REVOKED");

    let token = ok(
        &data,
        &["enroll", "token", "create", "lamp-9", "--ttl", "15m"],
    )
    .await?;
    assert!(
        token.trim().starts_with("cve_") && token.lines().count() == 1,
        "{token}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_running_server_the_cli_uses_the_admin_socket() -> anyhow::Result<()> {
    civitas_testkit::init();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let server = Civitas::start(&data)?;
    assert!(data.join("admin.sock").exists());

    // The server holds the store: this only works through the socket.
    let (serial, files) = add_device(&data, "lamp-2", &[]).await?;
    let (client, mut events) = connect(server.addr, &files)
        .await?
        .context("the new device's bundle was refused")?;
    client
        .publish(
            "city/centre/things/lamp-2/telemetry",
            QoS::AtLeastOnce,
            false,
            "42",
        )
        .await?;
    while !matches!(
        tokio::time::timeout(Duration::from_secs(10), events.poll()).await??,
        Event::Incoming(Packet::PubAck(_))
    ) {}

    let test = json(
        &data,
        &[
            "policy",
            "test",
            "--client",
            "lamp-2",
            "--action",
            "iot:Subscribe",
            "--resource",
            "city/centre/things/lamp-2/cmd",
        ],
    )
    .await?;
    assert_eq!(test["allowed"], true, "{test}");
    assert_eq!(test["certificate"], serial.as_str());
    assert_eq!(test["statement"]["policy"], "civitas-standard-device");

    // Revoked: in the CRL, the live connection ends, new ones are refused.
    let revoked = json(&data, &["device", "revoke", "lamp-2"]).await?;
    assert_eq!(revoked[0], serial.as_str());
    assert!(crl_serials(&data)?.contains(&serial));
    let closed = async {
        loop {
            if events.poll().await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), closed)
        .await
        .context("the revoked device's connection stayed up")?;
    let addr = server.addr;
    wait_for_async(
        "the revoked certificate to be refused",
        Duration::from_secs(15),
        || {
            let files = files.clone();
            async move { matches!(connect(addr, &files).await, Ok(None)) }
        },
    )
    .await?;

    // Other nouns reach the server too.
    ok(&data, &["type", "create", "streetlight"]).await?;
    let types = json(&data, &["type", "list"]).await?;
    assert_eq!(types[0]["name"], "streetlight");

    let status = server.terminate()?;
    assert!(status.success(), "civitas exited with {status}");
    assert!(
        !data.join("admin.sock").exists(),
        "the socket outlived the server"
    );
    // With the server gone, the CLI opens the store itself and sees it all.
    let certs = json(&data, &["cert", "list"]).await?;
    let lamp = certs
        .as_array()
        .context("list")?
        .iter()
        .find(|c| c["serial"] == serial.as_str())
        .context("lamp-2's certificate")?;
    assert_eq!(lamp["status"], "REVOKED");
    Ok(())
}
