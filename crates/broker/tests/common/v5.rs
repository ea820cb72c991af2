//! A rumqttc MQTT 5 client whose event loop runs in a task: incoming
//! packets and the error that ended the connection arrive on channels.

use anyhow::{Context, bail};
use rumqttc::v5::mqttbytes::v5::{ConnAck, Packet, Publish, SubAck};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions, StateError};
use tokio::sync::mpsc;

use super::TIMEOUT;

pub use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;

pub struct V5Client {
    pub client: AsyncClient,
    pub connack: ConnAck,
    pub events: mpsc::UnboundedReceiver<Packet>,
    pub errors: mpsc::UnboundedReceiver<ConnectionError>,
    task: tokio::task::JoinHandle<()>,
}

impl V5Client {
    pub async fn connect(options: MqttOptions) -> anyhow::Result<V5Client> {
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let (tx, mut events) = mpsc::unbounded_channel();
        let (etx, mut errors) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(e) => {
                        let _ = etx.send(e);
                        return;
                    }
                }
            }
        });
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let connack = loop {
            tokio::select! {
                p = events.recv() => match p {
                    Some(Packet::ConnAck(ack)) => break ack,
                    Some(_) => {}
                    None => bail!("connection failed: {:?}", errors.recv().await),
                },
                e = errors.recv() => bail!("connection failed: {e:?}"),
                _ = tokio::time::sleep_until(deadline) => bail!("no CONNACK"),
            }
        };
        Ok(V5Client {
            client,
            connack,
            events,
            errors,
            task,
        })
    }

    /// Drop the network connection without DISCONNECT.
    pub fn kill(self) {
        self.task.abort();
    }

    /// The next packet matching `pred`, skipping others.
    pub async fn next_incoming(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&Packet) -> bool,
    ) -> anyhow::Result<Packet> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            tokio::select! {
                p = self.events.recv() => match p {
                    Some(p) if pred(&p) => return Ok(p),
                    Some(_) => {}
                    None => bail!("event loop ended while waiting for {what}"),
                },
                _ = tokio::time::sleep_until(deadline) => bail!("no {what} within {TIMEOUT:?}"),
            }
        }
    }

    pub async fn next_publish(&mut self) -> anyhow::Result<Publish> {
        match self
            .next_incoming("PUBLISH", |p| matches!(p, Packet::Publish(_)))
            .await?
        {
            Packet::Publish(p) => Ok(p),
            _ => unreachable!(),
        }
    }

    pub async fn suback(&mut self) -> anyhow::Result<SubAck> {
        match self
            .next_incoming("SUBACK", |p| matches!(p, Packet::SubAck(_)))
            .await?
        {
            Packet::SubAck(s) => Ok(s),
            _ => unreachable!(),
        }
    }

    /// The error that ended the connection.
    pub async fn closed(&mut self) -> anyhow::Result<ConnectionError> {
        tokio::time::timeout(TIMEOUT, self.errors.recv())
            .await
            .context("connection was not closed")?
            .context("event loop ended without an error")
    }

    /// The reason code of the DISCONNECT the broker closed us with.
    pub async fn server_disconnect(&mut self) -> anyhow::Result<DisconnectReasonCode> {
        match self.closed().await? {
            ConnectionError::MqttState(StateError::ServerDisconnect { reason_code, .. }) => {
                Ok(reason_code)
            }
            other => bail!("closed without a DISCONNECT from the broker: {other:?}"),
        }
    }
}

/// The topic of a received PUBLISH as text.
pub fn topic(p: &Publish) -> String {
    String::from_utf8_lossy(&p.topic).into_owned()
}
