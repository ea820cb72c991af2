//! Test support: an engine wired into a broker on port 0, and a small
//! MQTT client that keeps what arrives while it waits for an ack.

#![allow(dead_code)]

pub mod https;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use civitas_monitor::Monitor;
use civitas_rules_runtime::{
    ActionDeps, RuleCatalog, RuleDocument, RulesEngine, RuntimeOptions, document,
};
use civitas_testkit::{ServiceFactory, TestBroker, TestBrokerOptions};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, Publish, QoS};
use tokio::sync::mpsc;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A rule document from JSON text.
pub fn doc(text: &str) -> RuleDocument {
    document::parse_document(text).expect("test document parses")
}

/// A broker with the engine as its observer and Basic Ingest service.
pub async fn broker_with(
    engine: &RulesEngine,
    options: TestBrokerOptions,
    mut services: Vec<ServiceFactory>,
) -> anyhow::Result<TestBroker> {
    let ingest = engine.basic_ingest();
    services.push(Arc::new(move |_| ingest.clone()));
    let broker =
        TestBroker::start_observed_with_services(options, services, vec![engine.observer()])
            .await?;
    engine.attach_broker(broker.handle());
    Ok(broker)
}

/// An engine with an in-memory catalog over `deps`, and its broker with
/// the anonymous listener.
pub async fn engine_and_broker(
    deps: ActionDeps,
    options: RuntimeOptions,
) -> anyhow::Result<(RulesEngine, TestBroker)> {
    let engine = RulesEngine::start(RuleCatalog::in_memory(), deps, options);
    let broker = broker_with(&engine, TestBrokerOptions::with_anonymous(), Vec::new()).await?;
    Ok((engine, broker))
}

pub fn monitor_deps() -> (ActionDeps, Monitor) {
    let monitor = Monitor::new();
    (
        ActionDeps {
            monitor: monitor.clone(),
            ..ActionDeps::default()
        },
        monitor,
    )
}

/// A rumqttc client on the anonymous listener.
pub async fn anon_client(broker: &TestBroker, id: &str) -> anyhow::Result<Client> {
    let addr = broker.addr_of("anon");
    let mut o = MqttOptions::new(id, "127.0.0.1", addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    Client::connect(o).await
}

pub struct Client {
    pub client: AsyncClient,
    events: mpsc::UnboundedReceiver<Incoming>,
    held: VecDeque<Publish>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    pub async fn connect(options: MqttOptions) -> anyhow::Result<Client> {
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, mut events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(i)) => {
                        if tx.send(i).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(_) => return,
                }
            }
        });
        match tokio::time::timeout(TIMEOUT, events.recv()).await {
            Ok(Some(Incoming::ConnAck(_))) => {}
            other => bail!("expected CONNACK, got {other:?}"),
        }
        Ok(Client {
            client,
            events,
            held: VecDeque::new(),
            task,
        })
    }

    async fn next_incoming(&mut self) -> anyhow::Result<Incoming> {
        tokio::time::timeout(TIMEOUT, self.events.recv())
            .await
            .context("nothing arrived in time")?
            .context("connection closed")
    }

    pub async fn subscribe(&mut self, filter: &str) -> anyhow::Result<()> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        loop {
            match self.next_incoming().await? {
                Incoming::SubAck(a) => {
                    if a.return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    {
                        bail!("subscription to {filter} refused");
                    }
                    return Ok(());
                }
                Incoming::Publish(p) => self.held.push_back(p),
                _ => {}
            }
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
        loop {
            match self.next_incoming().await? {
                Incoming::PubAck(_) => return Ok(()),
                Incoming::Publish(p) => self.held.push_back(p),
                _ => {}
            }
        }
    }

    pub async fn next_publish(&mut self) -> anyhow::Result<Publish> {
        if let Some(p) = self.held.pop_front() {
            return Ok(p);
        }
        loop {
            if let Incoming::Publish(p) = self.next_incoming().await? {
                return Ok(p);
            }
        }
    }

    /// The JSON payload of the next message on `topic`, skipping others.
    pub async fn next_json_on(&mut self, topic: &str) -> anyhow::Result<serde_json::Value> {
        loop {
            let p = self.next_publish().await?;
            if p.topic == topic {
                return Ok(serde_json::from_slice(&p.payload)?);
            }
        }
    }

    /// The next publish's JSON payload, checking its topic.
    pub async fn next_json(&mut self, topic: &str) -> anyhow::Result<serde_json::Value> {
        let p = self.next_publish().await?;
        if p.topic != topic {
            bail!(
                "expected a message on {topic}, got one on {}: {}",
                p.topic,
                String::from_utf8_lossy(&p.payload)
            );
        }
        Ok(serde_json::from_slice(&p.payload)?)
    }
}
