//! The systems under test: civitas and Mosquitto, each started fresh for
//! every run from a generated configuration with the bench CA, pinned to
//! the broker CPU, and stopped afterwards.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::process::{Child, Command};

use crate::client::{Client, Resume};
use crate::error::{BenchError, Result};
use crate::names::{self, BROADCAST_TOPIC, CONTROL_CENTER};
use crate::pki::{BenchPki, Identity};
use crate::procfs::{self, Usage};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    Civitas,
    Mosquitto,
}

impl BrokerKind {
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Civitas => "civitas",
            BrokerKind::Mosquitto => "mosquitto",
        }
    }
}

/// How to start either broker.
pub struct Systems {
    pub civitas_bin: PathBuf,
    pub mosquitto_bin: PathBuf,
    pub pki: Arc<BenchPki>,
    /// Where each run's broker output goes.
    pub logs: PathBuf,
    pub probe: Identity,
    /// The CPU brokers are pinned to, if pinning is possible.
    pub broker_cpu: Option<usize>,
}

pub struct RunningBroker {
    pub kind: BrokerKind,
    pub addr: SocketAddr,
    child: Child,
    pid: u32,
    log: PathBuf,
    /// civitas' binary and generated configuration, for its CLI.
    cli: Option<(PathBuf, PathBuf)>,
    dir: tempfile::TempDir,
}

/// Longest a `civitas` command against the running broker may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

impl Systems {
    /// Start `kind` with a fresh data directory and wait until the probe
    /// client completes a mutual-TLS MQTT connection.
    pub async fn start(&self, kind: BrokerKind, label: &str) -> Result<RunningBroker> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("civitas-bench-{}-", kind.name()))
            .tempdir()
            .map_err(|e| BenchError::io("temporary directory", e))?;
        let port = free_port()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut cli = None;
        let (program, args) = match kind {
            BrokerKind::Civitas => {
                let data = dir.path().join("data");
                self.pki.install_into_civitas(&data)?;
                let config = dir.path().join("civitas.toml");
                write(&config, &civitas_config(&data, addr))?;
                cli = Some((self.civitas_bin.clone(), config.clone()));
                (
                    self.civitas_bin.clone(),
                    vec!["--config".into(), config.display().to_string(), "up".into()],
                )
            }
            BrokerKind::Mosquitto => {
                let acl = dir.path().join("acl");
                write(&acl, &mosquitto_acl())?;
                let config = dir.path().join("mosquitto.conf");
                write(
                    &config,
                    &mosquitto_config(&self.pki, dir.path(), &acl, port),
                )?;
                (
                    self.mosquitto_bin.clone(),
                    vec!["-c".into(), config.display().to_string()],
                )
            }
        };
        std::fs::create_dir_all(&self.logs)
            .map_err(|e| BenchError::io(self.logs.display().to_string(), e))?;
        let log = self.logs.join(format!("{label}.log"));
        let out = std::fs::File::create(&log)
            .map_err(|e| BenchError::io(log.display().to_string(), e))?;
        let err = out
            .try_clone()
            .map_err(|e| BenchError::io(log.display().to_string(), e))?;
        let mut cmd = match self.broker_cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        // Only the generated file configures the broker under test.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CIVITAS_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| BenchError::io(format!("starting {}", program.display()), e))?;
        let pid = child.id().ok_or_else(|| BenchError::Broker {
            broker: kind.name().into(),
            reason: "exited at once".into(),
        })?;
        let mut running = RunningBroker {
            kind,
            addr,
            child,
            pid,
            log,
            cli,
            dir,
        };
        running.wait_ready(&self.probe).await?;
        Ok(running)
    }
}

impl RunningBroker {
    async fn wait_ready(&mut self, probe: &Identity) -> Result<()> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < READY_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failure(format!("exited during start ({status})")));
            }
            let attempt = tokio::time::timeout(
                Duration::from_secs(5),
                Client::connect(
                    probe,
                    self.addr,
                    crate::client::source_addr(0),
                    Resume::Never,
                ),
            )
            .await;
            match attempt {
                Ok(Ok(client)) => {
                    client.disconnect().await?;
                    return Ok(());
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "probe timed out".into(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(self.failure(format!("not ready after {READY_TIMEOUT:?}: {last}")))
    }

    fn failure(&self, reason: String) -> BenchError {
        let tail = std::fs::read_to_string(&self.log)
            .map(|s| {
                let lines: Vec<&str> = s.lines().collect();
                lines[lines.len().saturating_sub(10)..].join("\n")
            })
            .unwrap_or_default();
        BenchError::Broker {
            broker: self.kind.name().into(),
            reason: format!("{reason}; log {}:\n{tail}", self.log.display()),
        }
    }

    /// CPU and memory of the broker process now. Pinning through taskset
    /// execs, so the pid is the broker's own.
    pub fn usage(&mut self) -> Result<Usage> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(self.failure(format!("exited during the run ({status})")));
        }
        procfs::usage(self.pid)
    }

    /// Writes `text` to `name` in the broker's temporary directory.
    pub fn write_file(&self, name: &str, text: &str) -> Result<PathBuf> {
        let path = self.dir.path().join(name);
        write(&path, text)?;
        Ok(path)
    }

    /// Runs `civitas --config <the broker's> ARGS` as an operator would
    /// against the running server (over its admin socket); its stdout.
    pub async fn civitas(&self, args: &[&str]) -> Result<String> {
        let Some((bin, config)) = &self.cli else {
            return Err(BenchError::Usage(format!(
                "{} has no civitas command line",
                self.kind.name()
            )));
        };
        let mut cmd = Command::new(bin);
        cmd.arg("--config")
            .arg(config)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // The generated configuration alone, as for the server.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CIVITAS_") {
                cmd.env_remove(key);
            }
        }
        let run = cmd.output();
        let out = tokio::time::timeout(CLI_TIMEOUT, run)
            .await
            .map_err(|_| BenchError::Timeout(format!("civitas {}", args.join(" "))))?
            .map_err(|e| BenchError::io(format!("running civitas {}", args.join(" ")), e))?;
        if !out.status.success() {
            return Err(self.failure(format!(
                "civitas {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// SIGTERM, then wait (killing after a grace period).
    pub async fn stop(mut self) -> Result<()> {
        crate::os::terminate(self.pid);
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
            return Err(self.failure(format!("did not stop within {STOP_TIMEOUT:?} of SIGTERM")));
        }
        Ok(())
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| BenchError::io(path.display().to_string(), e))
}

/// A port the kernel just handed out and released: the broker binds it a
/// moment later.
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| BenchError::io("finding a free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| BenchError::io("finding a free port", e))
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The bench configuration of civitas: default limits, one mutual-TLS
/// listener on loopback, the default device permissions plus what the
/// bench's scenarios need.
pub fn civitas_config(data_dir: &Path, addr: SocketAddr) -> String {
    format!(
        r#"# Generated by `civitas bench`.
# Limits are the defaults (receive_maximum = max_inflight = 100,
# max_queued_messages = 1000), as in Mosquitto's generated configuration.
data_dir = {data:?}

[log]
level = "warn"

[tls]
reload_interval_secs = 3600

# The bench measures MQTT only.
[device_api]
enabled = false

[[broker.listeners]]
name = "bench"
bind = "{addr}"
auth = "mtls"
client_id_must_match_identity = true
# The static permission table below, the same rules as Mosquitto's ACL
# file, rather than AWS IoT policies from the device registry (the
# bench's certificates are not registered things).
authorization = "permissions"

# The default device permissions (own subtree), plus one grant the bench
# needs: every device may subscribe to the broadcast topic {broadcast},
# which by default a device could not (only its own tree).
[broker.listeners.permissions]
publish = ["city/+/things/${{client_id}}/#"]
subscribe = ["city/+/things/${{client_id}}/#", "{broadcast}"]

# The operator console commands devices and broadcasts.
[[broker.listeners.permissions.identities]]
identities = ["{cc}"]
publish = ["city/+/things/+/cmd/#", "{broadcast}"]
subscribe = ["city/#"]

# The bench's consumers (the fan-in group, the ceiling sinks, the probe)
# watch the whole city.
[[broker.listeners.permissions.identities]]
identities = {watchers}
publish = []
subscribe = ["city/#"]
"#,
        data = data_dir.display().to_string(),
        broadcast = BROADCAST_TOPIC,
        cc = CONTROL_CENTER,
        watchers = toml_list(&names::watchers()),
    )
}

/// Mosquitto's configuration, as close to civitas' as its options allow.
pub fn mosquitto_config(pki: &BenchPki, dir: &Path, acl: &Path, port: u16) -> String {
    format!(
        r#"# Generated by `civitas bench`.
per_listener_settings true
set_tcp_nodelay true
# civitas: receive_maximum = max_inflight = 100, max_queued_messages = 1000.
max_inflight_messages 100
max_queued_messages 1000
# On-disk state: Mosquitto snapshots periodically (not per message);
# civitas commits persistent-session state per message. The bench uses
# clean sessions, so neither writes per message.
persistence true
persistence_location {dir}/
autosave_interval 1800
{user}log_dest stderr
log_type error
log_type warning
connection_messages false

listener {port} 127.0.0.1
allow_anonymous false
require_certificate true
use_identity_as_username true
tls_version tlsv1.3
# civitas picks TLS_AES_128_GCM_SHA256 in its own order (clients offer
# AES-256-GCM first); Mosquitto follows the client's order, so it is given
# only that suite: the same cipher suite on both brokers.
ciphers_tls1.3 TLS_AES_128_GCM_SHA256
cafile {ca}
certfile {cert}
keyfile {key}
crlfile {crl}
acl_file {acl}
"#,
        dir = dir.display(),
        ca = pki.ca_bundle.display(),
        cert = pki.server_cert.display(),
        key = pki.server_key.display(),
        crl = pki.crl.display(),
        acl = acl.display(),
        // Started as root, Mosquitto would switch to the `mosquitto` user,
        // which cannot read the bench's private keys: stay the current user.
        user = if crate::os::is_root() {
            "user root\n"
        } else {
            ""
        },
    )
}

/// Mosquitto's ACL with the same grants as civitas' bench listener (`%u`
/// is the certificate CN, as the username).
pub fn mosquitto_acl() -> String {
    let mut s = String::from(
        "# Generated by `civitas bench`: the same grants as civitas' bench listener.\n\
         pattern readwrite city/+/things/%u/#\n",
    );
    s.push_str(&format!("pattern read {BROADCAST_TOPIC}\n\n"));
    s.push_str(&format!(
        "user {CONTROL_CENTER}\ntopic write city/+/things/+/cmd/#\ntopic write {BROADCAST_TOPIC}\ntopic read city/#\n\n"
    ));
    for w in names::watchers() {
        s.push_str(&format!("user {w}\ntopic read city/#\n\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civitas_config_parses_as_toml_with_the_grants() {
        let text = civitas_config(Path::new("/tmp/x"), "127.0.0.1:1234".parse().unwrap());
        let v: toml::Table = toml::from_str(&text).unwrap();
        let listener = &v["broker"]["listeners"][0];
        assert_eq!(listener["bind"].as_str(), Some("127.0.0.1:1234"));
        let subscribe = listener["permissions"]["subscribe"].as_array().unwrap();
        assert_eq!(subscribe[0].as_str(), Some("city/+/things/${client_id}/#"));
        assert_eq!(subscribe[1].as_str(), Some(BROADCAST_TOPIC));
        let watchers = &listener["permissions"]["identities"][1]["identities"];
        assert!(
            watchers
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w.as_str() == Some("ingest-0"))
        );
    }

    #[test]
    fn mosquitto_acl_grants_watchers() {
        let acl = mosquitto_acl();
        assert!(acl.contains("user ingest-3\ntopic read city/#"));
        assert!(acl.contains("pattern readwrite city/+/things/%u/#"));
    }
}
