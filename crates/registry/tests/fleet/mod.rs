//! A broker authorized by a real registry (over the broker's own store
//! and the test CA, on a manual clock) with the MQTT provisioning service,
//! and rumqttc clients that connect to it over mutual TLS with
//! certificates the registry issued.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use civitas_pki::CertificateAuthority;
use civitas_registry::{
    Actor, IssuedCertificate, ManualClock, MemorySink, MqttProvisioning, MqttProvisioningSettings,
    Registry, RegistrySettings,
};
use civitas_testkit::{Assembly, AssemblyFactory, ClientTls, DeviceFiles, TestBroker};
use rumqttc::{Event, Packet, QoS, SubscribeReasonCode};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::mpsc;

pub const TIMEOUT: Duration = Duration::from_secs(10);
pub const OVERLAP: Duration = Duration::from_secs(86400);

pub struct Fleet {
    pub broker: TestBroker,
    pub registry: Arc<Registry>,
    pub clock: Arc<ManualClock>,
    pub files: tempfile::TempDir,
    pub actor: Actor,
}

pub async fn fleet() -> anyhow::Result<Fleet> {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let built: Arc<Mutex<Option<Arc<Registry>>>> = Arc::default();
    let factory: AssemblyFactory = {
        let clock = clock.clone();
        let built = built.clone();
        Arc::new(move |store, pki| {
            let ca = CertificateAuthority::load(pki.ca.dir())?;
            let registry = Arc::new(Registry::new(
                store.clone(),
                ca,
                clock.clone(),
                Arc::new(MemorySink::new()),
                RegistrySettings::default(),
            ));
            *built.lock().unwrap() = Some(registry.clone());
            let service = MqttProvisioning::new(
                registry.clone(),
                MqttProvisioningSettings {
                    renewal_overlap: OVERLAP,
                },
            );
            Ok(Assembly {
                services: vec![Arc::new(service)],
                authority: Some(registry),
            })
        })
    };
    let broker = TestBroker::start_assembled(Default::default(), factory).await?;
    let registry = built
        .lock()
        .unwrap()
        .clone()
        .context("the registry was not built")?;
    Ok(Fleet {
        broker,
        registry,
        clock,
        files: tempfile::tempdir()?,
        actor: Actor::new("test-operator"),
    })
}

/// A fresh key: its PEM and a CSR for it.
pub fn key_and_csr() -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    (key.serialize_pem(), csr)
}

impl Fleet {
    /// Client files for a certificate PEM and its key.
    pub fn files_for(
        &self,
        label: &str,
        serial: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> anyhow::Result<DeviceFiles> {
        let dir = self.files.path();
        let cert = dir.join(format!("{label}.pem"));
        let key = dir.join(format!("{label}.key"));
        std::fs::write(&cert, cert_pem)?;
        std::fs::write(&key, key_pem)?;
        Ok(DeviceFiles {
            name: label.to_string(),
            cert,
            key,
            ca: self.broker.pki.ca_bundle(),
            serial_hex: serial.to_string(),
        })
    }

    /// Client files for a certificate the registry issued with its key.
    pub fn issued_files(
        &self,
        label: &str,
        issued: &IssuedCertificate,
    ) -> anyhow::Result<DeviceFiles> {
        let key = issued
            .private_key_pem
            .as_deref()
            .context("the certificate has no generated key")?;
        self.files_for(label, &issued.serial, &issued.certificate_pem, key)
    }

    pub async fn connect(&self, client_id: &str, files: &DeviceFiles) -> anyhow::Result<Client> {
        let options = self
            .broker
            .mqtt_options_with(client_id, ClientTls::Device(files))
            .await?;
        Client::connect(options).await
    }

    /// Connecting fails; the error text.
    pub async fn refused(&self, client_id: &str, files: &DeviceFiles) -> anyhow::Result<String> {
        match self.connect(client_id, files).await {
            Ok(_) => bail!("{client_id} unexpectedly connected"),
            Err(e) => Ok(e.to_string()),
        }
    }
}

/// A rumqttc client whose event loop runs in a task.
pub struct Client {
    pub client: rumqttc::AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, String>>,
}

impl Client {
    async fn connect(options: rumqttc::MqttOptions) -> anyhow::Result<Client> {
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 100);
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let event = eventloop.poll().await.map_err(|e| e.to_string());
                let failed = event.is_err();
                if tx.send(event).is_err() || failed {
                    return;
                }
            }
        });
        let mut c = Client { client, events };
        c.next("CONNACK", |p| matches!(p, Packet::ConnAck(_)))
            .await?;
        Ok(c)
    }

    async fn next(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&Packet) -> bool,
    ) -> anyhow::Result<Packet> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => bail!("no {what} within {TIMEOUT:?}"),
                Ok(None) => bail!("connection ended while waiting for {what}"),
                Ok(Some(Err(e))) => bail!("connection failed while waiting for {what}: {e}"),
                Ok(Some(Ok(Event::Incoming(p)))) if pred(&p) => return Ok(p),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Subscribes; whether the broker granted it.
    pub async fn subscribe(&mut self, filter: &str) -> anyhow::Result<bool> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        match self
            .next("SUBACK", |p| matches!(p, Packet::SubAck(_)))
            .await?
        {
            Packet::SubAck(ack) => Ok(ack
                .return_codes
                .iter()
                .all(|c| *c != SubscribeReasonCode::Failure)),
            _ => unreachable!(),
        }
    }

    /// Publishes at QoS 1 and waits for the PUBACK.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
    ) -> anyhow::Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await?;
        self.next("PUBACK", |p| matches!(p, Packet::PubAck(_)))
            .await?;
        Ok(())
    }

    /// The next PUBLISH: its topic and payload.
    pub async fn message(&mut self) -> anyhow::Result<(String, Vec<u8>)> {
        match self
            .next("PUBLISH", |p| matches!(p, Packet::Publish(_)))
            .await?
        {
            Packet::Publish(p) => Ok((p.topic, p.payload.to_vec())),
            _ => unreachable!(),
        }
    }

    /// Subscribes to `request`'s replies, sends it and returns the reply:
    /// whether it was accepted, and its document.
    pub async fn ask(&mut self, request: &str, payload: &Value) -> anyhow::Result<(bool, Value)> {
        for outcome in ["accepted", "rejected"] {
            anyhow::ensure!(
                self.subscribe(&format!("{request}/{outcome}")).await?,
                "subscribing to {request}/{outcome} was refused"
            );
        }
        self.publish(request, payload.to_string()).await?;
        let (topic, body) = self.message().await?;
        let accepted = if topic == format!("{request}/accepted") {
            true
        } else if topic == format!("{request}/rejected") {
            false
        } else {
            bail!("unexpected reply on {topic}")
        };
        Ok((accepted, serde_json::from_slice(&body)?))
    }

    /// Publishes on `topic` and receives it back: the connection may use it.
    pub async fn round_trip(&mut self, topic: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.subscribe(topic).await?,
            "subscribing to {topic} was refused"
        );
        self.publish(topic, "ping").await?;
        let (got, body) = self.message().await?;
        anyhow::ensure!(got == topic && body == b"ping", "got {got}");
        Ok(())
    }
}

pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}
