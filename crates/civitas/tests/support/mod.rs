//! Run the civitas binary as a separate process in a temp data dir, on a
//! port chosen by the OS, and read what it prints.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};
use civitas_testkit::DeviceFiles;

pub struct Civitas {
    pub child: Child,
    pub addr: SocketAddr,
    /// Everything printed on stdout up to and including the quick start.
    pub stdout: Vec<String>,
}

impl Civitas {
    /// Start `civitas up` over `data_dir` with one mutual-TLS listener on
    /// 127.0.0.1:0, and wait until it has printed where it listens.
    pub fn start(data_dir: &Path) -> anyhow::Result<Civitas> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_civitas"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--set")
            .arg(r#"broker.listeners=[{name="mqtts",bind="127.0.0.1:0"}]"#)
            .arg("--set")
            .arg(r#"device_api.bind="127.0.0.1:0""#)
            .arg("up")
            .env_remove("CIVITAS_CONFIG")
            .current_dir(data_dir.parent().unwrap_or(data_dir))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning civitas")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut lines = Vec::new();
        let mut addr = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line
                        .trim()
                        .strip_prefix("mqtts (mutual TLS, TLS) on ")
                        .and_then(|a| a.parse().ok())
                    {
                        addr = Some(a);
                    }
                    let done = line.trim_start().starts_with("mosquitto_pub");
                    lines.push(line);
                    if done {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    bail!("civitas did not print its quick start; got: {lines:#?}");
                }
            }
        }
        Ok(Civitas {
            child,
            addr: addr.context("no listening line")?,
            stdout: lines,
        })
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Civitas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bundle `civitas up` wrote for `name`.
pub fn bundle(data_dir: &Path, name: &str) -> DeviceFiles {
    let dir: PathBuf = data_dir.join("devices").join(name);
    DeviceFiles {
        name: name.to_string(),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
        ca: dir.join("ca.pem"),
        serial_hex: String::new(),
    }
}

/// `civitas --data-dir DATA_DIR ARGS…`, run to its end.
pub fn cli(data_dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_civitas"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CIVITAS_CONFIG")
        .current_dir(data_dir.parent().unwrap_or(data_dir))
        .stdin(Stdio::null())
        .output()
        .context("running civitas")
}

/// Like [`cli`], failing (with both outputs) unless civitas succeeds;
/// returns what it printed.
pub fn cli_ok(data_dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = cli(data_dir, args)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "civitas {args:?} failed\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// Whether the external `tools` (mosquitto-clients, say) are installed.
/// When they are not, a test that needs them fails if the test command
/// requires them (`CIVITAS_REQUIRE_EXTERNAL=1`, as `scripts/test` sets),
/// and otherwise says loudly that it did not run.
pub fn external(tools: &[&str]) -> anyhow::Result<bool> {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return Ok(true);
    }
    if std::env::var("CIVITAS_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        bail!("{missing:?} are required by the test command but not installed");
    }
    eprintln!("SKIPPED (not run): {missing:?} not installed; run scripts/test to install them");
    Ok(false)
}
