//! A device's signature on its telemetry, end to end through `civitas up`:
//! mosquitto_pub (MQTT 5) sends a reading with a `civitas-signature` user
//! property over mutual TLS, a rule's `store` action verifies it against
//! the device's certificate key, and a forged one is refused, counted and
//! put on the audit record.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use civitas_telemetry::signature::DeviceSigner;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use support::{Civitas, bundle, cli_ok, external};

const DEVICE: &str = "streetlight-001";
const RULE: &str = r#"{"sql": "SELECT power_w FROM 'city/+/things/+/telemetry'",
    "actions": [{"store": {"thingName": "${topic(4)}"}}]}"#;

/// Polls `f` every 100 ms until it returns `Some`; fails after 20 s.
fn eventually<T>(
    what: &str,
    mut f: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_forged_signature_is_refused_counted_and_audited_and_a_genuine_one_stored() -> anyhow::Result<()>
{
    if !external(&["mosquitto_pub"])? {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let server = Civitas::start(&data)?;
    let rule = dir.path().join("keep.json");
    std::fs::write(&rule, RULE)?;
    cli_ok(
        &data,
        &["rule", "create", "keep", "--file", &rule.to_string_lossy()],
    )?;

    // The device signs with the key of its TLS certificate.
    let files = bundle(&data, DEVICE);
    let key = PrivateKeyDer::from_pem_file(&files.key).context("the device key")?;
    let signer = DeviceSigner::from_pkcs8(key.secret_der())?;
    // The connection part of the quick start's mosquitto_pub line, which
    // carries MQTT 5 (`-V mqttv5`), the device's certificate and its id.
    let printed = server
        .stdout
        .iter()
        .find(|l| l.trim_start().starts_with("mosquitto_pub"))
        .context("no mosquitto_pub line")?;
    let connect = printed
        .trim()
        .split(" -q 1 ")
        .next()
        .context("no connection options")?
        .to_string();
    let topic = format!("city/centre/things/{DEVICE}/telemetry");
    let publish = |payload: &str, jws: &str| -> anyhow::Result<()> {
        let command = format!(
            "{connect} -q 1 -t {topic} -m '{payload}' -D publish user-property civitas-signature '{jws}'"
        );
        let out = Command::new("sh").args(["-c", &command]).output()?;
        if !out.status.success() {
            bail!(
                "mosquitto_pub failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };

    // Signed over other bytes: refused.
    let forged = signer.sign_detached(br#"{"power_w": 999}"#)?;
    publish(r#"{"power_w": 180}"#, &forged)?;
    // The refusals on the audit record, one JSON record a line.
    let refusals = || {
        cli_ok(
            &data,
            &[
                "audit",
                "query",
                "--action",
                "registry.verify_telemetry_signature",
                "--json",
            ],
        )
    };
    let record = eventually("the refusal on the audit record", || {
        Ok(refusals()?.lines().next().map(str::to_owned))
    })?;
    let record: serde_json::Value = serde_json::from_str(&record)?;
    assert_eq!(record["actor"], format!("device:{DEVICE}"), "{record}");
    assert_eq!(record["target"], format!("thing:{DEVICE}"), "{record}");
    assert_eq!(record["outcome"], "failure", "{record}");
    let details = &record["details"];
    assert_eq!(details["rule"], "keep", "{record}");
    assert_eq!(details["topic"], topic, "{record}");
    assert_eq!(details["code"], "invalid", "{record}");
    assert!(
        details["reason"]
            .as_str()
            .is_some_and(|r| r.contains("signature does not verify")),
        "{record}"
    );
    let counted = |metrics: &serde_json::Value, reason: &str| {
        metrics["metrics"]["counters"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["name"] == "telemetry_signature_failures_total"
                    && c["labels"]["rule"] == "keep"
                    && c["labels"]["reason"] == reason
                    && c["value"] == 1
            })
        })
    };
    let metrics: serde_json::Value = serde_json::from_str(&cli_ok(
        &data,
        &["metrics", "--json", "telemetry_signature"],
    )?)?;
    assert!(counted(&metrics, "invalid"), "{metrics}");

    // Signed as sent: stored (the store action succeeds), nothing refused.
    let payload = r#"{"power_w": 180}"#;
    let genuine = signer.sign_detached(payload.as_bytes())?;
    publish(payload, &genuine)?;
    eventually("the genuine reading stored", || {
        let metrics: serde_json::Value =
            serde_json::from_str(&cli_ok(&data, &["metrics", "--json", "rules_"])?)?;
        let stored = metrics["metrics"]["counters"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["name"] == "rules_action_success_total"
                    && c["labels"]["rule"] == "keep"
                    && c["value"] == 1
            })
        });
        Ok(stored.then_some(()))
    })?;
    let after = refusals()?;
    assert_eq!(after.lines().count(), 1, "{after}");
    drop(server);
    Ok(())
}
