//! Shared by the device API's tests: a broker with shadows and a
//! registry stand-in, the HTTPS API over the broker's mutual-TLS files,
//! curl as the HTTPS client and a rumqttc client as the MQTT side.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use civitas_broker::{Authority, Refusal, TopicService};
use civitas_pki::ReloadingServerConfig;
use civitas_policy::{Context, NamedPolicy, PolicyDocument, standard_device_policy};
use civitas_shadow::{ShadowService, ShadowTopicService, SystemClock};
use civitas_store::Store;
use civitas_testkit::{DeviceFiles, ServiceFactory, TestBroker, TestBrokerOptions};
use civitas_web_device::DeviceApi;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A registry stand-in: certificates by serial, each with its thing and
/// policies.
#[derive(Debug, Default)]
pub struct Registry {
    certs: Mutex<HashMap<String, (String, Vec<NamedPolicy>)>>,
    generation: AtomicU64,
}

impl Registry {
    pub fn register(&self, device: &DeviceFiles, policies: Vec<NamedPolicy>) {
        self.certs
            .lock()
            .unwrap()
            .insert(device.serial_hex.clone(), (device.name.clone(), policies));
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Authority for Registry {
    fn connection_policies(
        &self,
        serial: &str,
        client_id: &str,
    ) -> Result<(Vec<NamedPolicy>, Context), Refusal> {
        let certs = self.certs.lock().unwrap();
        let (thing, policies) = certs
            .get(serial)
            .ok_or_else(|| Refusal(format!("certificate {serial} is not active")))?;
        let attached = thing == client_id;
        let context = Context {
            region: "local".into(),
            account: "000000000000".into(),
            client_id: client_id.to_string(),
            thing_name: attached.then(|| thing.clone()),
            is_attached: attached,
            cert_common_name: Some(thing.clone()),
            cert_serial_number: Some(serial.to_string()),
            ..Context::default()
        };
        Ok((policies.clone(), context))
    }
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

pub fn standard() -> NamedPolicy {
    NamedPolicy {
        name: "standard".into(),
        version: 1,
        document: standard_device_policy(),
    }
}

pub fn operator() -> NamedPolicy {
    let document = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
            {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/city/#"},
            {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:*:*:topic/city/*"}]}"#,
    )
    .unwrap();
    NamedPolicy {
        name: "operator".into(),
        version: 1,
        document,
    }
}

/// A broker with the shadow service, and the HTTPS device API beside it.
pub struct Fixture {
    pub broker: TestBroker,
    pub registry: Arc<Registry>,
    pub shadows: ShadowService,
    pub port: u16,
    pub shutdown: CancellationToken,
    pub served: tokio::task::JoinHandle<Result<(), civitas_web_device::DeviceApiError>>,
}

impl Fixture {
    pub async fn start() -> anyhow::Result<Fixture> {
        let registry = Arc::new(Registry::default());
        let slot: Arc<Mutex<Option<ShadowService>>> = Arc::default();
        let made = slot.clone();
        let factory: ServiceFactory = Arc::new(move |store: &Store| {
            let shadows = ShadowService::new(store.clone(), SystemClock);
            *made.lock().unwrap() = Some(shadows.clone());
            Arc::new(ShadowTopicService::new(shadows)) as Arc<dyn TopicService>
        });
        let authority: Arc<dyn Authority> = registry.clone();
        let broker = TestBroker::start_full(
            TestBrokerOptions::default(),
            vec![factory],
            Some(authority.clone()),
        )
        .await?;
        let shadows = slot
            .lock()
            .unwrap()
            .clone()
            .context("the broker built no shadow service")?;
        let tls = Arc::new(ReloadingServerConfig::new(
            broker.pki.mutual_tls_files(),
            &[],
        )?);
        let listener = DeviceApi::bind("127.0.0.1:0".parse()?).await?;
        let port = listener.local_addr()?.port();
        let shutdown = CancellationToken::new();
        let api = DeviceApi::new(tls, authority, broker.handle()).with_shadows(shadows.clone());
        let served = tokio::spawn(api.serve(listener, shutdown.clone()));
        Ok(Fixture {
            broker,
            registry,
            shadows,
            port,
            shutdown,
            served,
        })
    }

    /// A registered device with the standard policy.
    pub fn device(&self, name: &str) -> anyhow::Result<DeviceFiles> {
        let device = self.broker.device(name)?;
        self.registry.register(&device, vec![standard()]);
        Ok(device)
    }

    pub fn curl(&self, curl: &Path) -> Curl {
        Curl {
            curl: curl.to_path_buf(),
            port: self.port,
            ca: self.broker.pki.ca_bundle(),
        }
    }
}

/// curl against the device API.
pub struct Curl {
    curl: PathBuf,
    port: u16,
    ca: PathBuf,
}

/// What curl got: the HTTP status and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Curl {
    /// Sends a request as `device` (no client certificate when `None`).
    /// `Err(exit code)` when curl failed before any HTTP answer.
    pub async fn request(
        &self,
        device: Option<&DeviceFiles>,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<Result<Answer, i32>> {
        let mut command = tokio::process::Command::new(&self.curl);
        command
            .args(["-sS", "--max-time", "10", "-X", method, "--cacert"])
            .arg(&self.ca)
            .args(["-w", "\n%{http_code}"]);
        if let Some(device) = device {
            command
                .arg("--cert")
                .arg(&device.cert)
                .arg("--key")
                .arg(&device.key);
        }
        if body.is_some() {
            command.args(["--data-binary", "@-"]);
        }
        command
            .arg(format!("https://localhost:{}{path}", self.port))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().context("starting curl")?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin.write_all(body.unwrap_or_default()).await?;
        }
        let out = tokio::time::timeout(TIMEOUT * 2, child.wait_with_output())
            .await
            .context("curl did not finish")??;
        if !out.status.success() {
            return Ok(Err(out.status.code().unwrap_or(-1)));
        }
        let text = String::from_utf8(out.stdout)?;
        let (body, status) = text.rsplit_once('\n').context("no status line")?;
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).with_context(|| format!("body {body:?}"))?
        };
        Ok(Ok(Answer {
            status: status.trim().parse()?,
            body,
        }))
    }

    pub async fn ok(
        &self,
        device: &DeviceFiles,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<Answer> {
        match self.request(Some(device), method, path, body).await? {
            Ok(answer) => Ok(answer),
            Err(code) => bail!("curl {method} {path} exited with {code}"),
        }
    }
}

/// A rumqttc client whose event loop runs in a task; publishes it
/// receives arrive on a channel.
pub struct Mqtt {
    pub client: rumqttc::AsyncClient,
    publishes: mpsc::UnboundedReceiver<rumqttc::Publish>,
    subacks: mpsc::UnboundedReceiver<rumqttc::SubAck>,
}

impl Mqtt {
    pub async fn connect(broker: &TestBroker, device: &DeviceFiles) -> anyhow::Result<Mqtt> {
        let (client, mut eventloop) =
            rumqttc::AsyncClient::new(broker.mqtt_options(device).await?, 100);
        let (ptx, publishes) = mpsc::unbounded_channel();
        let (stx, subacks) = mpsc::unbounded_channel();
        let (ctx, connected) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut ctx = Some(ctx);
            while let Ok(event) = eventloop.poll().await {
                match event {
                    rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)) => {
                        if let Some(ctx) = ctx.take() {
                            let _ = ctx.send(());
                        }
                    }
                    rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => {
                        let _ = ptx.send(p);
                    }
                    rumqttc::Event::Incoming(rumqttc::Packet::SubAck(a)) => {
                        let _ = stx.send(a);
                    }
                    _ => {}
                }
            }
        });
        tokio::time::timeout(TIMEOUT, connected)
            .await
            .context("no CONNACK")??;
        Ok(Mqtt {
            client,
            publishes,
            subacks,
        })
    }

    /// Subscribe and wait until the broker granted it.
    pub async fn subscribe(&mut self, filter: &str) -> anyhow::Result<()> {
        self.client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .await?;
        let ack = tokio::time::timeout(TIMEOUT, self.subacks.recv())
            .await
            .context("no SUBACK")?
            .context("connection closed")?;
        if ack.return_codes
            != vec![rumqttc::SubscribeReasonCode::Success(
                rumqttc::QoS::AtLeastOnce,
            )]
        {
            bail!("subscription to {filter} refused: {:?}", ack.return_codes);
        }
        Ok(())
    }

    pub async fn next(&mut self) -> anyhow::Result<rumqttc::Publish> {
        tokio::time::timeout(TIMEOUT, self.publishes.recv())
            .await
            .context("no PUBLISH")?
            .context("connection closed")
    }

    /// The next publish on `topic`, skipping others.
    pub async fn next_on(&mut self, topic: &str) -> anyhow::Result<Value> {
        loop {
            let p = self.next().await?;
            if p.topic == topic {
                return Ok(serde_json::from_slice(&p.payload)?);
            }
        }
    }

    /// Whether nothing arrives within a short while.
    pub async fn quiet(&mut self) -> bool {
        tokio::time::timeout(Duration::from_millis(300), self.publishes.recv())
            .await
            .is_err()
    }
}
