//! `civitas rule` as a real binary: rules created with no server running
//! (the store opened directly) are refused with the field named when
//! wrong, tested without side effects, and loaded by `civitas up`, where
//! they run on the example streetlight's readings and are administered
//! live over the admin socket.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use civitas_testkit::{ClientTls, DeviceFiles, client_config, mtls_tunnel};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use support::{Civitas, bundle};

const DEVICE: &str = "streetlight-001";
const TELEMETRY: &str = "city/centre/things/streetlight-001/telemetry";
const ALERTS: &str = "city/centre/alerts/streetlight-001";

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

async fn ok(data_dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = civitas(data_dir, args).await?;
    ensure!(
        out.status.success(),
        "civitas {args:?} failed: {}",
        text(&out.stderr)
    );
    Ok(text(&out.stdout))
}

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

async fn connect(
    server: std::net::SocketAddr,
    device: &DeviceFiles,
) -> anyhow::Result<(AsyncClient, EventLoop)> {
    let local = mtls_tunnel(server, client_config(ClientTls::Device(device))?).await?;
    let mut options = MqttOptions::new(&device.name, "127.0.0.1", local.port());
    options.set_keep_alive(Duration::from_secs(30));
    Ok(AsyncClient::new(options, 10))
}

/// Polls until a PUBLISH on `topic` arrives; fails on a refused
/// subscription.
async fn next_on(events: &mut EventLoop, topic: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let event = tokio::time::timeout_at(deadline, events.poll())
            .await
            .with_context(|| format!("nothing on {topic} within 15 s"))??;
        match event {
            Event::Incoming(Packet::Publish(p)) if p.topic == topic => {
                return Ok(serde_json::from_slice(&p.payload)?);
            }
            Event::Incoming(Packet::SubAck(s))
                if s.return_codes
                    .iter()
                    .any(|c| !matches!(c, rumqttc::SubscribeReasonCode::Success(_))) =>
            {
                bail!("subscription refused: {s:?}");
            }
            _ => {}
        }
    }
}

/// Polls until the SUBACK.
async fn subscribed(events: &mut EventLoop) -> anyhow::Result<()> {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(15), events.poll())
            .await
            .context("no SUBACK within 15 s")??;
        if let Event::Incoming(Packet::SubAck(_)) = event {
            return Ok(());
        }
    }
}

const RULE: &str = r#"{
  "sql": "SELECT power_w, topic(4) AS lamp FROM 'city/+/things/+/telemetry' WHERE power_w > 150",
  "description": "lamps drawing too much power",
  "actions": [{"republish": {"topic": "city/${topic(2)}/alerts/${topic(4)}", "qos": 1}}],
  "errorAction": {"republish": {"topic": "city/centre/rule-errors"}}
}"#;

#[tokio::test]
async fn rules_are_administered_from_the_cli_and_run_in_civitas_up() -> anyhow::Result<()> {
    civitas_testkit::init();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let rule_file = dir.path().join("lamp_alerts.json");
    std::fs::write(&rule_file, RULE)?;
    let bad_file = dir.path().join("bad.json");
    std::fs::write(
        &bad_file,
        r#"{"sql": "SELECT * FROM 'a'", "actions": [{"lambda": {"functionArn": "x"}}]}"#,
    )?;
    let file = rule_file.to_str().context("path")?;

    // No server: the store is opened here.
    let created = ok(&data, &["rule", "create", "lamp_alerts", "--file", file]).await?;
    assert!(created.contains("Rule lamp_alerts created."), "{created}");
    assert!(created.contains("city/+/things/+/telemetry"), "{created}");
    let refused = fails(
        &data,
        &[
            "rule",
            "create",
            "bad",
            "--file",
            bad_file.to_str().context("path")?,
        ],
    )
    .await?;
    assert!(
        refused.contains("actions[0]: unknown action type \"lambda\""),
        "{refused}"
    );
    let name_refused = fails(&data, &["rule", "create", "bad-name", "--file", file]).await?;
    assert!(name_refused.contains("ruleName"), "{name_refused}");

    let report = json(
        &data,
        &[
            "rule",
            "test",
            "lamp_alerts",
            "--topic",
            TELEMETRY,
            "--payload",
            r#"{"power_w": 180}"#,
        ],
    )
    .await?;
    assert_eq!(report["passed"], true);
    assert_eq!(
        report["actions"][0]["invocation"],
        json!({"action": "republish", "topic": ALERTS, "qos": 1,
               "payload": "{\"lamp\":\"streetlight-001\",\"power_w\":180}"})
    );
    let table = ok(
        &data,
        &[
            "rule",
            "test",
            "lamp_alerts",
            "--topic",
            TELEMETRY,
            "--payload",
            r#"{"power_w": 100}"#,
        ],
    )
    .await?;
    assert!(table.contains("not passed"), "{table}");

    let disabled = json(&data, &["rule", "disable", "lamp_alerts"]).await?;
    assert_eq!(disabled["enabled"], false);
    let list = ok(&data, &["rule", "list"]).await?;
    assert!(
        list.lines()
            .any(|l| l.starts_with("lamp_alerts") && l.contains(" no ")),
        "{list}"
    );

    // `civitas up` loads the rule; enabling it goes over the admin socket
    // and takes effect at once.
    let server = Civitas::start(&data)?;
    let got = json(&data, &["rule", "get", "lamp_alerts"]).await?;
    assert_eq!(got["enabled"], false);
    assert_eq!(
        got["document"]["description"],
        "lamps drawing too much power"
    );
    let enabled = ok(&data, &["rule", "enable", "lamp_alerts"]).await?;
    assert!(enabled.contains("Rule lamp_alerts enabled."), "{enabled}");

    let (watcher, mut watcher_events) =
        connect(server.addr, &bundle(&data, "control-center")).await?;
    watcher.subscribe("city/#", QoS::AtLeastOnce).await?;
    subscribed(&mut watcher_events).await?;
    let (lamp, mut lamp_events) = connect(server.addr, &bundle(&data, DEVICE)).await?;
    lamp.publish(TELEMETRY, QoS::AtLeastOnce, false, r#"{"power_w": 180}"#)
        .await?;
    tokio::spawn(async move {
        // Drives the device's connection; it receives nothing itself.
        while lamp_events.poll().await.is_ok() {}
    });
    assert_eq!(
        next_on(&mut watcher_events, ALERTS).await?,
        json!({"power_w": 180, "lamp": "streetlight-001"})
    );

    // The rule's metrics, from the running server.
    let metrics = json(&data, &["metrics", "rules_"]).await?;
    let counters = metrics["metrics"]["counters"]
        .as_array()
        .context("counters")?;
    assert!(
        counters
            .iter()
            .all(|c| c["name"].as_str().is_some_and(|n| n.starts_with("rules_"))),
        "{metrics}"
    );
    assert!(
        counters.iter().any(|c| c["name"] == "rules_matched_total"
            && c["labels"]["rule"] == "lamp_alerts"
            && c["value"] == 1),
        "{metrics}"
    );
    let table = ok(&data, &["metrics"]).await?;
    assert!(
        table.contains(r#"rules_matched_total{rule="lamp_alerts"}"#),
        "{table}"
    );

    let deleted = ok(&data, &["rule", "delete", "lamp_alerts"]).await?;
    assert!(deleted.contains("Rule lamp_alerts deleted."), "{deleted}");
    let listed = json(&data, &["rule", "list"]).await?;
    assert_eq!(listed, json!([]));
    server.terminate()?;
    let not_running = fails(&data, &["metrics"]).await?;
    assert!(
        not_running.contains("civitas is not running"),
        "{not_running}"
    );
    Ok(())
}
