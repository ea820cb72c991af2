//! Interoperability with paho-mqtt (Python) over mutual TLS, in MQTT 3.1.1
//! and 5: QoS 0/1/2, retained messages, wills, persistent sessions and
//! shared subscriptions. Each scenario is a script in `tests/paho/` that
//! reports what its clients observed as JSON; the assertions live here.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, ensure};
use civitas_broker::IdentityGrant;
use civitas_testkit::external;
use civitas_testkit::{TestBroker, TestBrokerOptions};
use serde_json::{Value, json};
use tokio::process::Command;

/// Bound on one whole scenario script (each wait inside is 10 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Version {
    V311,
    V5,
}

impl Version {
    fn name(self) -> &'static str {
        match self {
            Version::V311 => "3.1.1",
            Version::V5 => "5",
        }
    }
}

/// Start `broker`-facing paho clients through `script` with certificates
/// for `identities`; the JSON the script printed, after checking it
/// succeeded.
async fn run_scenario(
    python: &Path,
    broker: &TestBroker,
    version: Version,
    script: &str,
    identities: &[&str],
    extra: Value,
) -> anyhow::Result<Value> {
    let mut ids = serde_json::Map::new();
    for name in identities {
        let d = broker.device(name)?;
        ids.insert(d.name.clone(), json!({ "cert": d.cert, "key": d.key }));
    }
    let mut config = json!({
        "host": "localhost",
        "port": broker.addr().port(),
        "version": version.name(),
        "ca": broker.pki.ca_bundle(),
        "identities": ids,
    });
    if let (Some(c), Value::Object(more)) = (config.as_object_mut(), extra) {
        c.extend(more);
    }
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "paho", script]
        .iter()
        .collect();
    let mut cmd = Command::new(python);
    cmd.arg(&path)
        .arg(config.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, cmd.output())
        .await
        .with_context(|| format!("{script} did not finish within {SCRIPT_TIMEOUT:?}"))??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "{script} (MQTT {}) failed with {}\nstdout: {stdout}\nstderr: {stderr}",
        version.name(),
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .with_context(|| format!("{script} printed no JSON result: {stdout}\nstderr: {stderr}"))
}

fn msg(topic: &str, payload: &str, qos: u8, retain: bool) -> Value {
    json!({ "topic": topic, "payload": payload, "qos": qos, "retain": retain })
}

fn things(device: &str, rest: &str) -> String {
    format!("city/centre/things/{device}/{rest}")
}

/// Run a scenario once per protocol version, as `<scenario>::v311` and
/// `<scenario>::v5`.
macro_rules! for_both_versions {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn v311() -> anyhow::Result<()> {
                super::$scenario(super::Version::V311).await
            }
            #[tokio::test]
            async fn v5() -> anyhow::Result<()> {
                super::$scenario(super::Version::V5).await
            }
        }
    )*};
}

for_both_versions!(
    each_qos_is_delivered,
    retained_message_reaches_later_subscriber_until_cleared,
    will_is_published_when_the_client_is_killed,
    persistent_session_receives_what_was_sent_while_away,
    shared_subscription_delivers_each_message_once_across_the_group,
);

async fn each_qos_is_delivered(version: Version) -> anyhow::Result<()> {
    let Some(python) = external::require(external::PAHO) else {
        return Ok(());
    };
    let broker = TestBroker::start().await?;
    let out = run_scenario(
        &python,
        &broker,
        version,
        "qos.py",
        &["control-center", "lamp-1"],
        json!({}),
    )
    .await?;
    assert_eq!(out["granted"], json!([2]));
    let mut received = out["received"]
        .as_array()
        .context("received is a list")?
        .clone();
    received.sort_by_key(|m| m["topic"].as_str().map(str::to_string));
    let want: Vec<Value> = (0..=2)
        .map(|q| {
            msg(
                &things("lamp-1", &format!("telemetry/{q}")),
                &format!("reading at qos {q}"),
                q,
                false,
            )
        })
        .collect();
    assert_eq!(received, want);
    Ok(())
}

async fn retained_message_reaches_later_subscriber_until_cleared(
    version: Version,
) -> anyhow::Result<()> {
    let Some(python) = external::require(external::PAHO) else {
        return Ok(());
    };
    let broker = TestBroker::start().await?;
    let out = run_scenario(
        &python,
        &broker,
        version,
        "retained.py",
        &["control-center", "lamp-2"],
        json!({}),
    )
    .await?;
    let state = things("lamp-2", "state");
    assert_eq!(out["retained"], msg(&state, "on", 1, true));
    assert_eq!(
        out["after_clear"],
        msg(&state, "live", 1, false),
        "a cleared retained message must not be sent"
    );
    Ok(())
}

async fn will_is_published_when_the_client_is_killed(version: Version) -> anyhow::Result<()> {
    let Some(python) = external::require(external::PAHO) else {
        return Ok(());
    };
    let broker = TestBroker::start().await?;
    let out = run_scenario(
        &python,
        &broker,
        version,
        "will.py",
        &["control-center", "lamp-3"],
        json!({}),
    )
    .await?;
    assert_eq!(
        out["will"],
        msg(&things("lamp-3", "status"), "offline", 1, false)
    );
    // Killed by SIGKILL, not exited: the will is the broker's doing.
    assert_eq!(out["device_exit"], json!(-9));
    Ok(())
}

async fn persistent_session_receives_what_was_sent_while_away(
    version: Version,
) -> anyhow::Result<()> {
    let Some(python) = external::require(external::PAHO) else {
        return Ok(());
    };
    let broker = TestBroker::start().await?;
    let out = run_scenario(
        &python,
        &broker,
        version,
        "session.py",
        &["control-center", "lamp-4"],
        json!({}),
    )
    .await?;
    assert_eq!(out["first_session_present"], json!(false));
    assert_eq!(out["resumed_session_present"], json!(true));
    let telemetry = things("lamp-4", "telemetry");
    let want: Vec<Value> = (0..3)
        .map(|i| msg(&telemetry, &format!("while away {i}"), 1, false))
        .collect();
    assert_eq!(out["received"], json!(want));
    Ok(())
}

async fn shared_subscription_delivers_each_message_once_across_the_group(
    version: Version,
) -> anyhow::Result<()> {
    let Some(python) = external::require(external::PAHO) else {
        return Ok(());
    };
    let mut options = TestBrokerOptions::default();
    options.config.listeners[0]
        .permissions
        .identities
        .push(IdentityGrant {
            identities: vec!["dispatch".into()],
            publish: vec![],
            subscribe: vec!["city/#".into()],
        });
    let broker = TestBroker::start_with(options).await?;
    let readings = 20;
    let out = run_scenario(
        &python,
        &broker,
        version,
        "shared.py",
        &["control-center", "dispatch", "lamp-5"],
        json!({ "readings": readings }),
    )
    .await?;
    let telemetry = things("lamp-5", "telemetry");
    let mut all = Vec::new();
    for member in ["control-center", "dispatch"] {
        let got = out["members"][member]
            .as_array()
            .with_context(|| format!("{member}'s messages"))?;
        assert!(!got.is_empty(), "{member} received none of the readings");
        for m in got {
            assert_eq!(m["topic"], json!(telemetry), "{member}: {m}");
            assert_eq!(m["qos"], json!(1), "{member}: {m}");
            all.push(m["payload"].as_str().context("payload")?.to_string());
        }
    }
    all.sort();
    let mut want: Vec<String> = (0..readings).map(|i| format!("reading {i}")).collect();
    want.sort();
    assert_eq!(all, want, "each reading exactly once across the group");
    Ok(())
}
