//! The first-run output is something a newcomer can paste: the printed
//! mosquitto_sub and mosquitto_pub commands work as printed.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use support::{Civitas, external};

#[test]
fn first_run_creates_the_pki_and_prints_working_commands() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let civitas = Civitas::start(&data)?;
    let out = civitas.stdout.join("\n");
    assert!(out.contains("First run"), "{out}");
    for f in [
        "pki/ca/ca-bundle.pem",
        "pki/server/server.pem",
        "devices/streetlight-001/streetlight-001.key",
    ] {
        assert!(data.join(f).exists(), "{f} missing");
    }
    let sub = civitas
        .stdout
        .iter()
        .find(|l| l.trim_start().starts_with("mosquitto_sub"))
        .context("no mosquitto_sub line")?
        .trim()
        .to_string();
    let publ = civitas
        .stdout
        .iter()
        .find(|l| l.trim_start().starts_with("mosquitto_pub"))
        .context("no mosquitto_pub line")?
        .trim()
        .to_string();

    if !external(&["mosquitto_sub", "mosquitto_pub"])? {
        return Ok(());
    }
    // The subscriber exits after one message or 20 s; the publisher repeats
    // until the subscriber has it (it may not be subscribed yet).
    let mut watcher = Command::new("sh")
        .args(["-c", &format!("{sub} -C 1 -W 20")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = Command::new("sh").args(["-c", &publ]).status()?;
        assert!(status.success(), "the printed mosquitto_pub command failed");
        if watcher.try_wait()?.is_some() || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = watcher.wait_with_output()?;
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "mosquitto_sub failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        printed.trim(),
        r#"city/centre/things/streetlight-001/telemetry {"power_w":42}"#
    );

    // The control center switches the light on: a command, which goes on
    // the audit record.
    let command = sub.replacen("mosquitto_sub", "mosquitto_pub", 1).replace(
        "-t 'city/#' -v",
        "-q 1 -t city/centre/things/streetlight-001/cmd/power -m on",
    );
    let status = Command::new("sh").args(["-c", &command]).status()?;
    assert!(status.success(), "{command}");

    // A second start reuses what the first created.
    let status = civitas.terminate()?;
    assert!(status.success(), "civitas exited with {status}");

    // What happened is on the tamper-evident record, and the record verifies.
    let audit = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_civitas"))
            .arg("--data-dir")
            .arg(&data)
            .arg("audit")
            .args(args)
            .env_remove("CIVITAS_CONFIG")
            .output()
    };
    let verify = audit(&["verify"])?;
    assert!(
        verify.status.success(),
        "audit verify failed: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let connects = audit(&["query", "--action", "device.connect", "--json"])?;
    let connects = String::from_utf8_lossy(&connects.stdout);
    assert!(connects.contains("device:streetlight-001"), "{connects}");
    assert!(connects.contains("device:control-center"), "{connects}");
    let registered = audit(&["query", "--action", "registry.*", "--json"])?;
    assert!(String::from_utf8_lossy(&registered.stdout).contains("streetlight-001"));
    let commands = audit(&["query", "--action", "command.send", "--json"])?;
    let commands = String::from_utf8_lossy(&commands.stdout);
    assert!(commands.contains("device:control-center"), "{commands}");
    assert!(commands.contains("thing:streetlight-001"), "{commands}");
    let again = Civitas::start(&data)?;
    assert!(!again.stdout.join("\n").contains("First run"));
    Ok(())
}
