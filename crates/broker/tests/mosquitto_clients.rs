//! Interoperability with the mosquitto command-line clients over mutual
//! TLS, in MQTT 3.1.1 and 5: delivery at each QoS, retained messages,
//! wills on abrupt death, persistent sessions across a broker restart,
//! shared subscriptions, and the refusal of bad client certificates.
//!
//! A subscriber is known to be in place when it prints a retained
//! "ready" marker that the broker only sends after registering every
//! filter of the SUBSCRIBE (mosquitto_sub buffers its debug log, so the
//! SUBACK line cannot be awaited).

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use civitas_broker::IdentityGrant;
use civitas_testkit::external::{self, Mosquitto};
use civitas_testkit::{DeviceFiles, TestBroker, TestBrokerOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bound on any single client process and on waiting for one line.
const TIMEOUT: Duration = Duration::from_secs(15);
/// mosquitto_sub's own `-W` bound, below [`TIMEOUT`] so that it exits by
/// itself first.
const SUB_WAIT_SECS: &str = "10";
/// Every message line starts with this, so that nothing else mosquitto_sub
/// might print is mistaken for a message.
const FORMAT: &str = "MSG\t%q\t%r\t%t\t%p";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Version {
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
struct Msg {
    qos: u8,
    retain: bool,
    topic: String,
    payload: String,
}

impl Msg {
    fn parse(line: &str) -> Option<Msg> {
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
struct Mq<'a> {
    tools: Mosquitto,
    broker: &'a TestBroker,
    version: Version,
}

impl<'a> Mq<'a> {
    fn new(broker: &'a TestBroker, version: Version) -> Option<Mq<'a>> {
        Some(Mq {
            tools: external::require_mosquitto()?,
            broker,
            version,
        })
    }

    /// Connection options for `who` (client id = certificate CN).
    fn connect_args(&self, who: &DeviceFiles) -> Vec<OsString> {
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
    async fn publish(
        &self,
        who: &DeviceFiles,
        topic: &str,
        payload: &str,
        qos: u8,
        retain: bool,
    ) -> anyhow::Result<()> {
        let mut cmd = Command::new(&self.tools.publisher);
        cmd.args(self.connect_args(who))
            .args(["-t", topic, "-q", &qos.to_string(), "-m", payload]);
        if retain {
            cmd.arg("-r");
        }
        run(cmd, None).await
    }

    /// Publish each line as one message over a single connection.
    async fn publish_lines(
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
    fn subscribe(
        &self,
        who: Option<&DeviceFiles>,
        filters: &[&str],
        qos: u8,
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
        cmd.args(["-q", &qos.to_string(), "-F", FORMAT, "-W", SUB_WAIT_SECS])
            .args(extra);
        Sub::spawn(cmd)
    }
}

/// Run a client to completion within [`TIMEOUT`] and require success.
async fn run(mut cmd: Command, stdin: Option<String>) -> anyhow::Result<()> {
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
struct Sub {
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
    async fn next(&mut self) -> anyhow::Result<Msg> {
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
    async fn ready(&mut self, marker_topic: &str) -> anyhow::Result<()> {
        let m = self.next().await?;
        ensure!(
            m.topic == marker_topic && m.retain,
            "expected the retained marker on {marker_topic} first, got {m:?}"
        );
        Ok(())
    }

    /// Wait for mosquitto_sub to exit by itself; its status, the messages
    /// it printed that were not yet read, and its stderr.
    async fn finish(mut self) -> anyhow::Result<(ExitStatus, Vec<Msg>, String)> {
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
    async fn messages(self) -> anyhow::Result<Vec<Msg>> {
        let (status, messages, stderr) = self.finish().await?;
        ensure!(
            status.success(),
            "mosquitto_sub exited with {status} after {messages:?}: {stderr}"
        );
        Ok(messages)
    }

    /// SIGKILL: the process dies without sending DISCONNECT.
    async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .context("killed mosquitto_sub did not exit")??;
        Ok(())
    }
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
    persistent_session_resumes_across_restart,
    bad_certificates_are_refused,
);

async fn each_qos_is_delivered(version: Version) -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let Some(mq) = Mq::new(&broker, version) else {
        return Ok(());
    };
    let lamp = broker.device("lamp-1")?;
    let cc = broker.device("control-center")?;
    let marker = things("lamp-1", "ready");
    mq.publish(&lamp, &marker, "ready", 1, true).await?;

    let mut sub = mq.subscribe(Some(&cc), &["city/+/things/lamp-1/#"], 2, &["-C", "4"])?;
    sub.ready(&marker).await?;
    for qos in 0..=2 {
        let topic = things("lamp-1", &format!("telemetry/{qos}"));
        mq.publish(&lamp, &topic, &format!("reading at qos {qos}"), qos, false)
            .await?;
    }
    let mut got = sub.messages().await?;
    // Separate publisher connections: arrival order is not guaranteed.
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    let want: Vec<Msg> = (0..=2)
        .map(|qos| Msg {
            qos,
            retain: false,
            topic: things("lamp-1", &format!("telemetry/{qos}")),
            payload: format!("reading at qos {qos}"),
        })
        .collect();
    assert_eq!(got, want);
    Ok(())
}

async fn retained_message_reaches_later_subscriber_until_cleared(
    version: Version,
) -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let Some(mq) = Mq::new(&broker, version) else {
        return Ok(());
    };
    let lamp = broker.device("lamp-2")?;
    let cc = broker.device("control-center")?;
    let state = things("lamp-2", "state");
    mq.publish(&lamp, &state, "on", 1, true).await?;

    let sub = mq.subscribe(Some(&cc), &[&state], 1, &["-C", "1"])?;
    let got = sub.messages().await?;
    assert_eq!(
        got,
        vec![Msg {
            qos: 1,
            retain: true,
            topic: state.clone(),
            payload: "on".into(),
        }]
    );

    // An empty retained payload clears it: a later subscriber to the whole
    // subtree gets only the marker, then live traffic.
    let mut clear = Command::new(&mq.tools.publisher);
    clear
        .args(mq.connect_args(&lamp))
        .args(["-t", &state, "-q", "1", "-r", "-n"]);
    run(clear, None).await?;
    let marker = things("lamp-2", "ready");
    mq.publish(&lamp, &marker, "ready", 1, true).await?;
    let mut sub = mq.subscribe(Some(&cc), &["city/+/things/lamp-2/#"], 1, &["-C", "2"])?;
    sub.ready(&marker).await?;
    mq.publish(&lamp, &state, "live", 1, false).await?;
    let got = sub.messages().await?;
    assert_eq!(
        got,
        vec![Msg {
            qos: 1,
            retain: false,
            topic: state,
            payload: "live".into(),
        }],
        "a cleared retained message must not be sent"
    );
    Ok(())
}

async fn will_is_published_when_the_client_is_killed(version: Version) -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let Some(mq) = Mq::new(&broker, version) else {
        return Ok(());
    };
    let lamp = broker.device("lamp-3")?;
    let cc = broker.device("control-center")?;
    let marker = things("lamp-3", "ready");
    let status = things("lamp-3", "status");
    mq.publish(&lamp, &marker, "ready", 1, true).await?;

    let mut watcher = mq.subscribe(Some(&cc), &[&status, &marker], 1, &["-C", "2"])?;
    watcher.ready(&marker).await?;

    let will = [
        "--will-topic",
        status.as_str(),
        "--will-payload",
        "offline",
        "--will-qos",
        "1",
    ];
    let mut device = mq.subscribe(Some(&lamp), &[&marker], 1, &will)?;
    // Receiving the marker proves the device's CONNECT (and will) was
    // accepted.
    device.ready(&marker).await?;
    device.kill().await?;

    let got = watcher.messages().await?;
    assert_eq!(
        got,
        vec![Msg {
            qos: 1,
            retain: false,
            topic: status,
            payload: "offline".into(),
        }]
    );
    Ok(())
}

async fn persistent_session_resumes_across_restart(version: Version) -> anyhow::Result<()> {
    let mut broker = TestBroker::start().await?;
    let lamp = broker.device("lamp-4")?;
    let cc = broker.device("control-center")?;
    let telemetry = things("lamp-4", "telemetry");
    {
        let Some(mq) = Mq::new(&broker, version) else {
            return Ok(());
        };
        // -E: exit (with a normal DISCONNECT) once the SUBACK is in.
        let sub = mq.subscribe(Some(&cc), &["city/+/things/+/telemetry"], 1, &["-c", "-E"])?;
        assert_eq!(sub.messages().await?, vec![]);
        for i in 0..3 {
            mq.publish(&lamp, &telemetry, &format!("while away {i}"), 1, false)
                .await?;
        }
    }
    // Acknowledged QoS 1 messages are durable: they survive a restart.
    broker.restart().await?;
    let Some(mq) = Mq::new(&broker, version) else {
        return Ok(());
    };
    let sub = mq.subscribe(
        Some(&cc),
        &["city/+/things/+/telemetry"],
        1,
        &["-c", "-C", "3"],
    )?;
    let got = sub.messages().await?;
    let want: Vec<Msg> = (0..3)
        .map(|i| Msg {
            qos: 1,
            retain: false,
            topic: telemetry.clone(),
            payload: format!("while away {i}"),
        })
        .collect();
    assert_eq!(got, want);
    Ok(())
}

async fn bad_certificates_are_refused(version: Version) -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let Some(mq) = Mq::new(&broker, version) else {
        return Ok(());
    };
    let lamp = broker.device("lamp-6")?;
    let marker = things("lamp-6", "ready");
    mq.publish(&lamp, &marker, "ready", 1, true).await?;

    // Each would receive the retained marker at once if it were let in.
    let foreign = broker.pki.foreign_device("control-center")?;
    let expired = broker.pki.expired_device("control-center")?;
    let attempts = [
        ("foreign CA", Some(&foreign)),
        ("expired", Some(&expired)),
        ("no certificate", None),
    ];
    for (what, who) in attempts {
        let sub = mq.subscribe(who, &["city/#"], 1, &["-C", "1"])?;
        let (status, messages, stderr) = sub.finish().await?;
        assert!(
            !status.success(),
            "{what}: mosquitto_sub succeeded: {messages:?}"
        );
        assert_eq!(
            messages,
            vec![],
            "{what}: messages leaked; stderr: {stderr}"
        );
    }
    let failures = broker
        .stats()
        .tls_failures
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(failures >= 3, "{failures} TLS failures counted, expected 3");

    // The same subscription with a valid certificate gets the marker.
    let cc = broker.device("control-center")?;
    let sub = mq.subscribe(Some(&cc), &["city/#"], 1, &["-C", "1"])?;
    assert_eq!(sub.messages().await?.len(), 1);
    Ok(())
}

/// Two MQTT 5 subscribers in one `$share` group: every message goes to
/// exactly one of them, and the broker spreads them over both.
#[tokio::test]
async fn shared_subscription_delivers_each_message_once_across_the_group() -> anyhow::Result<()> {
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
    let Some(mq) = Mq::new(&broker, Version::V5) else {
        return Ok(());
    };
    let lamp = broker.device("lamp-5")?;
    let marker = things("lamp-5", "ready");
    let telemetry = things("lamp-5", "telemetry");
    mq.publish(&lamp, &marker, "ready", 1, true).await?;

    let shared = "$share/fleet/city/+/things/lamp-5/telemetry";
    let mut members = Vec::new();
    for name in ["control-center", "dispatch"] {
        let who = broker.device(name)?;
        let mut sub = mq.subscribe(Some(&who), &[shared, &marker], 1, &[])?;
        sub.ready(&marker).await?;
        members.push((name, sub));
    }

    let sent: Vec<String> = (0..20).map(|i| format!("reading {i}")).collect();
    mq.publish_lines(&lamp, &telemetry, 1, &sent).await?;
    // The end marker goes to both members (plain subscription) after all
    // readings from the same publisher, so it closes each one's stream.
    mq.publish(&lamp, &marker, "end", 1, false).await?;

    let mut received: Vec<String> = Vec::new();
    for (name, mut sub) in members {
        let mut mine = Vec::new();
        loop {
            let m = sub.next().await?;
            if m.topic == marker {
                assert_eq!(m.payload, "end", "{name}: unexpected {m:?}");
                break;
            }
            assert_eq!(m.topic, telemetry, "{name}: unexpected {m:?}");
            mine.push(m.payload);
        }
        assert!(!mine.is_empty(), "{name} received none of the readings");
        received.extend(mine);
        sub.kill().await?;
    }
    received.sort();
    let mut want = sent;
    want.sort();
    assert_eq!(received, want, "each reading exactly once across the group");
    Ok(())
}

#[test]
fn message_lines_are_parsed() {
    assert_eq!(
        Msg::parse("MSG\t1\t0\tcity/a/things/b/x\tpay\tload"),
        Some(Msg {
            qos: 1,
            retain: false,
            topic: "city/a/things/b/x".into(),
            payload: "pay\tload".into(),
        })
    );
    assert_eq!(Msg::parse("Client x received PUBLISH"), None);
}
