//! Driving mosquitto_pub and mosquitto_sub as child processes: command
//! lines for mutual TLS, bounded runs, and a subscriber whose printed
//! messages are parsed as they arrive.

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use civitas_testkit::external::{self, Mosquitto};
use civitas_testkit::{DeviceFiles, TestBroker};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bound on any single client process and on waiting for one line.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// mosquitto_sub's own `-W` bound, below [`TIMEOUT`] so that it exits by
/// itself first.
const SUB_WAIT_SECS: &str = "10";
/// Every message line starts with this, so that nothing else mosquitto_sub
/// might print is mistaken for a message.
pub const FORMAT: &str = "MSG\t%q\t%r\t%t\t%p";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Version {
    V311,
    V5,
}

impl Version {
    fn flag(self) -> &'static str {
        match self {
            Version::V311 => "mqttv311",
            Version::V5 => "mqttv5",
        }
    }
}

/// One message as mosquitto_sub printed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub qos: u8,
    pub retain: bool,
    pub topic: String,
    pub payload: String,
}

impl Msg {
    pub fn parse(line: &str) -> Option<Msg> {
        let mut f = line.strip_prefix("MSG\t")?.splitn(4, '\t');
        Some(Msg {
            qos: f.next()?.parse().ok()?,
            retain: f.next()? == "1",
            topic: f.next()?.to_string(),
            payload: f.next()?.to_string(),
        })
    }
}

/// The mosquitto clients pointed at one broker with one protocol version.
pub struct Mq<'a> {
    pub tools: Mosquitto,
    broker: &'a TestBroker,
    version: Version,
}

impl<'a> Mq<'a> {
    pub fn new(broker: &'a TestBroker, version: Version) -> Option<Mq<'a>> {
        Some(Mq {
            tools: external::require_mosquitto()?,
            broker,
            version,
        })
    }

    /// Connection options for `who` (client id = certificate CN).
    pub fn connect_args(&self, who: &DeviceFiles) -> Vec<OsString> {
        let mut args = self.tls_args(Some(who));
        args.extend(["-i".into(), who.name.clone().into()]);
        args
    }

    fn tls_args(&self, who: Option<&DeviceFiles>) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "-h".into(),
            "localhost".into(),
            "-p".into(),
            self.broker.addr().port().to_string().into(),
            "-V".into(),
            self.version.flag().into(),
            "--cafile".into(),
            self.broker.pki.ca_bundle().into(),
        ];
        if let Some(d) = who {
            args.extend([
                "--cert".into(),
                d.cert.clone().into(),
                "--key".into(),
                d.key.clone().into(),
            ]);
        }
        args
    }

    /// mosquitto_pub one message and expect success (for QoS 1 and 2 that
    /// means the broker acknowledged it).
    pub async fn publish(
        &self,
        who: &DeviceFiles,
        topic: &str,
        payload: &str,
        qos: u8,
        retain: bool,
    ) -> anyhow::Result<()> {
        let qos = qos.to_string();
        let mut args = vec!["-t", topic, "-q", &qos, "-m", payload];
        if retain {
            args.push("-r");
        }
        self.publish_with(who, &args).await
    }

    /// mosquitto_pub as `who` with any other options; expect success.
    pub async fn publish_with(&self, who: &DeviceFiles, args: &[&str]) -> anyhow::Result<()> {
        let mut cmd = Command::new(&self.tools.publisher);
        cmd.args(self.connect_args(who)).args(args);
        run(cmd, None).await
    }

    /// Publish each line as one message over a single connection.
    pub async fn publish_lines(
        &self,
        who: &DeviceFiles,
        topic: &str,
        qos: u8,
        lines: &[String],
    ) -> anyhow::Result<()> {
        let mut cmd = Command::new(&self.tools.publisher);
        cmd.args(self.connect_args(who))
            .args(["-t", topic, "-q", &qos.to_string(), "-l"]);
        let mut input = lines.join("\n");
        input.push('\n');
        run(cmd, Some(input)).await
    }

    /// Start mosquitto_sub as `who` (or with no client certificate) on
    /// `filters`; `extra` adds options such as `-C 3` or `-c`.
    pub fn subscribe(
        &self,
        who: Option<&DeviceFiles>,
        filters: &[&str],
        qos: u8,
        extra: &[&str],
    ) -> anyhow::Result<Sub> {
        self.subscribe_formatted(who, filters, qos, FORMAT, extra)
    }

    /// Like [`Mq::subscribe`], printing messages with `format`, which must
    /// extend [`FORMAT`] (anything after `%p` lands in the payload).
    pub fn subscribe_formatted(
        &self,
        who: Option<&DeviceFiles>,
        filters: &[&str],
        qos: u8,
        format: &str,
        extra: &[&str],
    ) -> anyhow::Result<Sub> {
        let mut cmd = Command::new(&self.tools.subscriber);
        match who {
            Some(d) => cmd.args(self.connect_args(d)),
            None => cmd.args(self.tls_args(None)).args(["-i", "control-center"]),
        };
        for f in filters {
            cmd.args(["-t", f]);
        }
        cmd.args(["-q", &qos.to_string(), "-F", format, "-W", SUB_WAIT_SECS])
            .args(extra);
        Sub::spawn(cmd)
    }
}

/// Run a client to completion within [`TIMEOUT`] and require success.
pub async fn run(mut cmd: Command, stdin: Option<String>) -> anyhow::Result<()> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).await?;
        // Closing stdin is what tells `mosquitto_pub -l` to finish.
        drop(pipe);
    }
    let out = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("{cmd:?} did not finish within {TIMEOUT:?}"))??;
    ensure!(
        out.status.success(),
        "{cmd:?} failed with {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A running mosquitto_sub whose printed messages arrive on a channel.
pub struct Sub {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: JoinHandle<String>,
}

impl Sub {
    fn spawn(mut cmd: Command) -> anyhow::Result<Sub> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut stderr = child.stderr.take().context("no stderr pipe")?;
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Ok(Sub {
            child,
            lines,
            stderr,
        })
    }

    /// The next message printed, within [`TIMEOUT`].
    pub async fn next(&mut self) -> anyhow::Result<Msg> {
        loop {
            match tokio::time::timeout(TIMEOUT, self.lines.recv()).await {
                Err(_) => bail!("mosquitto_sub printed no message within {TIMEOUT:?}"),
                Ok(None) => {
                    let status = self.child.wait().await?;
                    bail!("mosquitto_sub ended ({status}) before the next message")
                }
                Ok(Some(line)) => {
                    if let Some(m) = Msg::parse(&line) {
                        return Ok(m);
                    }
                }
            }
        }
    }

    /// Wait for the retained ready marker: from then on every filter of
    /// this subscriber is registered.
    pub async fn ready(&mut self, marker_topic: &str) -> anyhow::Result<()> {
        let m = self.next().await?;
        ensure!(
            m.topic == marker_topic && m.retain,
            "expected the retained marker on {marker_topic} first, got {m:?}"
        );
        Ok(())
    }

    /// Wait for mosquitto_sub to exit by itself; its status, the messages
    /// it printed that were not yet read, and its stderr.
    pub async fn finish(mut self) -> anyhow::Result<(ExitStatus, Vec<Msg>, String)> {
        let status = tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .context("mosquitto_sub did not exit")??;
        let mut messages = Vec::new();
        while let Some(line) = tokio::time::timeout(TIMEOUT, self.lines.recv())
            .await
            .context("mosquitto_sub output did not close")?
        {
            messages.extend(Msg::parse(&line));
        }
        let stderr = tokio::time::timeout(TIMEOUT, self.stderr).await??;
        Ok((status, messages, stderr))
    }

    /// Expect a clean exit (after `-C n` messages) and return what remains.
    pub async fn messages(self) -> anyhow::Result<Vec<Msg>> {
        let (status, messages, stderr) = self.finish().await?;
        ensure!(
            status.success(),
            "mosquitto_sub exited with {status} after {messages:?}: {stderr}"
        );
        Ok(messages)
    }

    /// SIGKILL: the process dies without sending DISCONNECT.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .context("killed mosquitto_sub did not exit")??;
        Ok(())
    }
}

pub fn things(device: &str, rest: &str) -> String {
    format!("city/centre/things/{device}/{rest}")
}
