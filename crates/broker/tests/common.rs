//! Helpers shared by the broker's integration tests: drive rumqttc event
//! loops in background tasks and collect what they receive.

#![allow(dead_code)]

// Explicit paths: this file is both a module of each test and, for
// cargo, a test crate root of its own, and the two look for submodules in
// different places.
#[path = "common/raw.rs"]
pub mod raw;
#[path = "common/v5.rs"]
pub mod v5;

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::mpsc;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A rumqttc v3.1.1 client whose event loop runs in a task; incoming
/// publishes and connection outcomes arrive on channels.
pub struct V4Client {
    pub client: rumqttc::AsyncClient,
    pub events: mpsc::UnboundedReceiver<rumqttc::Event>,
    pub errors: mpsc::UnboundedReceiver<String>,
    task: tokio::task::JoinHandle<()>,
}

impl V4Client {
    pub async fn connect(options: rumqttc::MqttOptions) -> anyhow::Result<V4Client> {
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 100);
        let (tx, events) = mpsc::unbounded_channel();
        let (etx, errors) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(ev) => {
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = etx.send(e.to_string());
                        return;
                    }
                }
            }
        });
        let mut c = V4Client {
            client,
            events,
            errors,
            task,
        };
        c.wait_connack().await?;
        Ok(c)
    }

    async fn wait_connack(&mut self) -> anyhow::Result<rumqttc::ConnAck> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack))) => return Ok(ack),
                    Some(_) => {}
                    None => bail!("connection failed: {}", self.errors.recv().await.unwrap_or_default()),
                },
                err = self.errors.recv() => bail!("connection failed: {}", err.unwrap_or_default()),
                _ = tokio::time::sleep_until(deadline) => bail!("no CONNACK"),
            }
        }
    }

    /// Drop the network connection without DISCONNECT, as a device that
    /// loses power would.
    pub fn kill(self) {
        self.task.abort();
    }

    /// The next PUBLISH received.
    pub async fn next_publish(&mut self) -> anyhow::Result<rumqttc::Publish> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => return Ok(p),
                    Some(_) => {}
                    None => bail!("event loop ended"),
                },
                _ = tokio::time::sleep_until(deadline) => bail!("no PUBLISH within {TIMEOUT:?}"),
            }
        }
    }

    /// Wait for the next packet of a kind, by predicate.
    pub async fn next_incoming(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&rumqttc::Packet) -> bool,
    ) -> anyhow::Result<rumqttc::Packet> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(rumqttc::Event::Incoming(p)) if pred(&p) => return Ok(p),
                    Some(_) => {}
                    None => bail!("event loop ended while waiting for {what}"),
                },
                _ = tokio::time::sleep_until(deadline) => bail!("no {what} within {TIMEOUT:?}"),
            }
        }
    }

    /// The error that ended the connection.
    pub async fn closed(&mut self) -> anyhow::Result<String> {
        tokio::time::timeout(TIMEOUT, self.errors.recv())
            .await
            .context("connection was not closed")?
            .context("event loop ended without an error")
    }

    pub async fn suback(&mut self) -> anyhow::Result<rumqttc::SubAck> {
        match self
            .next_incoming("SUBACK", |p| matches!(p, rumqttc::Packet::SubAck(_)))
            .await?
        {
            rumqttc::Packet::SubAck(s) => Ok(s),
            _ => unreachable!(),
        }
    }
}

/// Connect with rumqttc and expect the connection to fail; the error text.
pub async fn connect_fails(options: rumqttc::MqttOptions) -> anyhow::Result<String> {
    match V4Client::connect(options).await {
        Ok(_) => bail!("connection unexpectedly succeeded"),
        Err(e) => Ok(e.to_string()),
    }
}
