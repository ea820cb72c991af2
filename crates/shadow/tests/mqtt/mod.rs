//! Fixtures for the shadow service inside a running broker: the service
//! factory, rumqttc MQTT 3.1.1 and 5 clients behind one interface, and
//! timestamp normalization for comparing whole documents.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use civitas_broker::TopicService;
use civitas_shadow::{ShadowService, ShadowStore, ShadowTopicService, SystemClock};
use civitas_testkit::{DeviceFiles, ServiceFactory, TestBroker};
use serde_json::Value;
use tokio::sync::mpsc;

/// Every wait in these tests ends by this.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The shadow service over the broker's store, as `civitas up` builds it.
pub fn shadow_factory() -> ServiceFactory {
    Arc::new(|store| -> Arc<dyn TopicService> {
        let shadows = ShadowService::new(store.clone(), SystemClock);
        Arc::new(ShadowTopicService::new(shadows))
    })
}

/// A shadow service over a store the test provides instead of the
/// broker's.
pub fn factory_over(store: Arc<dyn ShadowStore>) -> ServiceFactory {
    Arc::new(move |_| -> Arc<dyn TopicService> {
        let shadows = ShadowService::new(store.clone(), SystemClock);
        Arc::new(ShadowTopicService::new(shadows))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V4,
    V5,
}

/// What a client received, in order.
#[derive(Debug)]
pub enum Incoming {
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
    SubAck {
        granted: bool,
    },
    /// MQTT 5 carries the broker's verdict; MQTT 3.1.1 acknowledges a
    /// refused PUBLISH as if it were delivered.
    PubAck {
        authorized: bool,
    },
}

enum Handle {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// One MQTT client whose event loop runs in a task.
pub struct Client {
    pub protocol: Protocol,
    handle: Handle,
    incoming: mpsc::UnboundedReceiver<Result<Incoming, String>>,
    /// PUBLISHes that arrived while waiting for an acknowledgement.
    early: std::collections::VecDeque<(String, Vec<u8>)>,
}

impl Client {
    /// `device` over mutual TLS.
    pub async fn device(
        broker: &TestBroker,
        device: &DeviceFiles,
        protocol: Protocol,
    ) -> anyhow::Result<Client> {
        match protocol {
            Protocol::V4 => Client::v4(broker.mqtt_options(device).await?).await,
            Protocol::V5 => Client::v5(broker.mqtt5_options(device).await?).await,
        }
    }

    /// An operator on the anonymous listener ("anon"), which may do
    /// anything.
    pub async fn operator(broker: &TestBroker, protocol: Protocol) -> anyhow::Result<Client> {
        let addr = broker.addr_of("anon");
        let id = "control-center";
        match protocol {
            Protocol::V4 => {
                let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", addr.port());
                o.set_keep_alive(Duration::from_secs(30));
                Client::v4(o).await
            }
            Protocol::V5 => {
                let mut o = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", addr.port());
                o.set_keep_alive(Duration::from_secs(30));
                Client::v5(o).await
            }
        }
    }

    pub async fn v4(options: rumqttc::MqttOptions) -> anyhow::Result<Client> {
        use rumqttc::{Event, Packet, SubscribeReasonCode};
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 100);
        let (tx, incoming) = mpsc::unbounded_channel();
        let (connected, connack) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut connected = Some(connected);
            loop {
                let item = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Some(c) = connected.take() {
                            let _ = c.send(());
                        }
                        continue;
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => Ok(Incoming::Publish {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                    }),
                    Ok(Event::Incoming(Packet::SubAck(s))) => Ok(Incoming::SubAck {
                        granted: s
                            .return_codes
                            .iter()
                            .all(|c| matches!(c, SubscribeReasonCode::Success(_))),
                    }),
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        Ok(Incoming::PubAck { authorized: true })
                    }
                    Ok(_) => continue,
                    Err(e) => Err(e.to_string()),
                };
                let ended = item.is_err();
                if tx.send(item).is_err() || ended {
                    return;
                }
            }
        });
        let mut c = Client {
            protocol: Protocol::V4,
            handle: Handle::V4(client),
            incoming,
            early: Default::default(),
        };
        c.wait_connected(connack).await?;
        Ok(c)
    }

    pub async fn v5(options: rumqttc::v5::MqttOptions) -> anyhow::Result<Client> {
        use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, SubscribeReasonCode};
        use rumqttc::v5::{AsyncClient, Event};
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let (tx, incoming) = mpsc::unbounded_channel();
        let (connected, connack) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut connected = Some(connected);
            loop {
                let item = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Some(c) = connected.take() {
                            let _ = c.send(());
                        }
                        continue;
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => Ok(Incoming::Publish {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload.to_vec(),
                    }),
                    Ok(Event::Incoming(Packet::SubAck(s))) => Ok(Incoming::SubAck {
                        granted: s
                            .return_codes
                            .iter()
                            .all(|c| matches!(c, SubscribeReasonCode::Success(_))),
                    }),
                    Ok(Event::Incoming(Packet::PubAck(a))) => Ok(Incoming::PubAck {
                        authorized: a.reason != PubAckReason::NotAuthorized,
                    }),
                    Ok(_) => continue,
                    Err(e) => Err(e.to_string()),
                };
                let ended = item.is_err();
                if tx.send(item).is_err() || ended {
                    return;
                }
            }
        });
        let mut c = Client {
            protocol: Protocol::V5,
            handle: Handle::V5(client),
            incoming,
            early: Default::default(),
        };
        c.wait_connected(connack).await?;
        Ok(c)
    }

    async fn wait_connected(
        &mut self,
        connack: tokio::sync::oneshot::Receiver<()>,
    ) -> anyhow::Result<()> {
        tokio::select! {
            r = connack => r.context("event loop ended before CONNACK"),
            e = self.incoming.recv() => bail!("connection failed: {e:?}"),
            _ = tokio::time::sleep(TIMEOUT) => bail!("no CONNACK within {TIMEOUT:?}"),
        }
    }

    async fn next(&mut self, what: &str) -> anyhow::Result<Incoming> {
        match tokio::time::timeout(TIMEOUT, self.incoming.recv()).await {
            Err(_) => bail!("no {what} within {TIMEOUT:?}"),
            Ok(None) => bail!("event loop ended while waiting for {what}"),
            Ok(Some(Err(e))) => bail!("connection ended while waiting for {what}: {e}"),
            Ok(Some(Ok(i))) => Ok(i),
        }
    }

    /// Subscribe at QoS 1; whether the broker granted it.
    pub async fn subscribe(&mut self, filter: &str) -> anyhow::Result<bool> {
        match &self.handle {
            Handle::V4(c) => c.subscribe(filter, rumqttc::QoS::AtLeastOnce).await?,
            Handle::V5(c) => {
                c.subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                    .await?
            }
        }
        loop {
            match self.next("SUBACK").await? {
                Incoming::SubAck { granted } => return Ok(granted),
                Incoming::Publish { topic, payload } => self.early.push_back((topic, payload)),
                Incoming::PubAck { .. } => {}
            }
        }
    }

    /// Subscribe and insist that it is granted.
    pub async fn subscribed(&mut self, filter: &str) -> anyhow::Result<()> {
        anyhow::ensure!(self.subscribe(filter).await?, "{filter} was refused");
        Ok(())
    }

    /// Publish at QoS 1 without waiting for the PUBACK.
    pub async fn send(&self, topic: &str, payload: impl Into<Vec<u8>>) -> anyhow::Result<()> {
        let payload = payload.into();
        match &self.handle {
            Handle::V4(c) => {
                c.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                    .await?
            }
            Handle::V5(c) => {
                c.publish(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    payload,
                )
                .await?
            }
        }
        Ok(())
    }

    /// Publish at QoS 1 and wait for the PUBACK; whether the broker
    /// accepted it (always true over MQTT 3.1.1).
    pub async fn publish(&mut self, topic: &str, payload: &str) -> anyhow::Result<bool> {
        self.send(topic, payload).await?;
        loop {
            match self.next("PUBACK").await? {
                Incoming::PubAck { authorized } => return Ok(authorized),
                Incoming::Publish { topic, payload } => self.early.push_back((topic, payload)),
                Incoming::SubAck { .. } => {}
            }
        }
    }

    /// The next PUBLISH as (topic, normalized JSON), skipping acks.
    pub async fn reply(&mut self) -> anyhow::Result<(String, Value)> {
        let (topic, payload) = match self.early.pop_front() {
            Some(p) => p,
            None => loop {
                if let Incoming::Publish { topic, payload } = self.next("PUBLISH").await? {
                    break (topic, payload);
                }
            },
        };
        let doc: Value = serde_json::from_slice(&payload)
            .with_context(|| format!("payload on {topic} is not JSON"))?;
        Ok((topic, normalized(doc)))
    }

    /// The next `n` PUBLISHes.
    pub async fn replies(&mut self, n: usize) -> anyhow::Result<Vec<(String, Value)>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.reply().await?);
        }
        Ok(out)
    }
}

/// `"timestamp": <number>` anywhere becomes `"timestamp": "T"`, after
/// checking the number is a plausible unix time in seconds.
pub fn normalized(mut doc: Value) -> Value {
    normalize(&mut doc);
    doc
}

fn normalize(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "timestamp" && child.is_u64() {
                    let secs = child.as_u64().unwrap_or(0);
                    assert!(
                        (1_600_000_000..4_000_000_000).contains(&secs),
                        "timestamp {secs} is not unix seconds"
                    );
                    *child = Value::from("T");
                } else {
                    normalize(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// `[(topic, doc)]` with owned topics, for comparing with `replies`.
pub fn expect(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(t, v)| ((*t).to_owned(), v.clone()))
        .collect()
}
