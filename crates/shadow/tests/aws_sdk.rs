//! A device written with the AWS IoT Device SDK v2 for Python works
//! against civitas unchanged: mutual TLS to `localhost`, its shadow client
//! receives the delta an operator opens, reports, and the delta clears.
//! Both the MQTT 3.1.1 `IotShadowClient` and the MQTT 5
//! `IotShadowClientV2`. The device is `tests/aws_sdk/shadow_flow.py`; it
//! prints what it saw as JSON lines and the assertions live here.
//!
//! Skipped (loudly) when no Python with `awsiotsdk` is found, unless
//! `CIVITAS_REQUIRE_EXTERNAL=1`.

mod mqtt;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use civitas_testkit::external;
use civitas_testkit::{TestBroker, TestBrokerOptions};
use mqtt::{Client, Protocol, shadow_factory};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

const THING: &str = "streetlight-7";
const UPDATE: &str = "$aws/things/streetlight-7/shadow/update";
/// Bound on each step of the script; the script bounds its own waits by
/// the same and its whole run by six times it.
const STEP: Duration = Duration::from_secs(15);

/// The SDK device running as a separate process.
struct SdkDevice {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Option<JoinHandle<String>>,
}

impl SdkDevice {
    fn start(python: &Path, broker: &TestBroker, protocol: &str) -> anyhow::Result<SdkDevice> {
        let device = broker.device(THING)?;
        let script: PathBuf = [
            env!("CARGO_MANIFEST_DIR"),
            "tests",
            "aws_sdk",
            "shadow_flow.py",
        ]
        .iter()
        .collect();
        let mut child = Command::new(python)
            .arg(&script)
            // The test server certificate names localhost; the SDK checks
            // the host name it connects to, and sends it as SNI.
            .args(["--endpoint", "localhost"])
            .args(["--port", &broker.addr().port().to_string()])
            .arg("--cert")
            .arg(&device.cert)
            .arg("--key")
            .arg(&device.key)
            .arg("--ca")
            .arg(&device.ca)
            .args(["--client-id", THING, "--thing", THING])
            .args(["--protocol", protocol])
            .args(["--timeout", &STEP.as_secs().to_string()])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", python.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut stderr = child.stderr.take().context("no stderr")?;
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Ok(SdkDevice {
            child,
            lines: BufReader::new(stdout).lines(),
            stderr: Some(stderr),
        })
    }

    /// The next event the script printed, which must be `name`.
    async fn event(&mut self, name: &str) -> anyhow::Result<Value> {
        let line = match tokio::time::timeout(STEP, self.lines.next_line()).await {
            Err(_) => bail!("no {name:?} from the SDK device within {STEP:?}"),
            Ok(line) => line?,
        };
        let Some(line) = line else {
            bail!(
                "the SDK device exited before {name:?}; stderr:\n{}",
                self.stderr().await
            );
        };
        let event: Value =
            serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
        if event["event"] != name {
            bail!(
                "expected {name:?} from the SDK device, got {event}; stderr:\n{}",
                self.stderr().await
            );
        }
        Ok(event)
    }

    async fn stderr(&mut self) -> String {
        let _ = self.child.start_kill();
        match self.stderr.take() {
            Some(task) => tokio::time::timeout(STEP, task)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => String::new(),
        }
    }

    async fn exits_cleanly(mut self) -> anyhow::Result<()> {
        let status = tokio::time::timeout(STEP, self.child.wait())
            .await
            .context("the SDK device did not exit")??;
        ensure!(
            status.success(),
            "the SDK device failed with {status}; stderr:\n{}",
            self.stderr().await
        );
        Ok(())
    }
}

async fn delta_clears(protocol: &str) -> anyhow::Result<()> {
    let Some(python) = external::require(external::AWS_IOT_SDK) else {
        return Ok(());
    };
    let broker = TestBroker::start_with_services(
        TestBrokerOptions::with_anonymous(),
        vec![shadow_factory()],
    )
    .await?;
    let mut operator = Client::operator(&broker, Protocol::V5).await?;
    operator.subscribed(&format!("{UPDATE}/+")).await?;
    let mut device = SdkDevice::start(&python, &broker, protocol)?;
    device.event("ready").await?;

    operator
        .publish(
            UPDATE,
            r#"{"state":{"desired":{"power":"on"}},"clientToken":"operator-1"}"#,
        )
        .await?;
    let delta = device.event("delta").await?;
    assert_eq!(
        delta,
        json!({"event": "delta", "state": {"power": "on"}, "version": 1, "client_token": "operator-1"})
    );

    let accepted = device.event("update_accepted").await?;
    assert_eq!(accepted["reported"], json!({"power": "on"}));
    assert_eq!(accepted["version"], 2);
    // The MQTT 5 client picks its own token to match replies to requests.
    assert!(
        accepted["client_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    let got = device.event("get").await?;
    assert_eq!(got["desired"], json!({"power": "on"}));
    assert_eq!(got["reported"], json!({"power": "on"}));
    assert_eq!(got["delta"], Value::Null, "the delta cleared");
    assert_eq!(got["version"], 2);
    device.event("done").await?;
    device.exits_cleanly().await?;

    // What the operator saw: the delta once, for its own update; the
    // device's report produced none.
    let topics: Vec<String> = operator
        .replies(5)
        .await?
        .into_iter()
        .map(|(topic, _)| topic)
        .collect();
    assert_eq!(
        topics,
        ["accepted", "delta", "documents", "accepted", "documents"]
            .map(|suffix| format!("{UPDATE}/{suffix}"))
    );
    Ok(())
}

#[tokio::test]
async fn iot_shadow_client_over_mqtt_3_1_1() -> anyhow::Result<()> {
    delta_clears("3.1.1").await
}

#[tokio::test]
async fn iot_shadow_client_v2_over_mqtt_5() -> anyhow::Result<()> {
    delta_clears("5").await
}
