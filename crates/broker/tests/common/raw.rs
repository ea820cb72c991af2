//! A raw MQTT client built from the civitas codec: it sends exactly the
//! packets (or bytes) a test asks for and reports exactly what the broker
//! answered, including reason codes rumqttc would hide or refuse to send.
//!
//! It speaks plain TCP; over the mutual-TLS tunnel of the testkit it talks
//! to a mutual-TLS listener with a device certificate.

use std::collections::VecDeque;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use civitas_mqtt::{
    ConnAck, Connect, ConnectProperties, Disconnect, Packet, Protocol, PubAck, Publish, QoS,
    ReasonCode, SubAck, Subscribe, SubscribeProperties, Subscription, SubscriptionOptions, decode,
    encode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::TIMEOUT;

pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    pub protocol: Protocol,
    next_packet_id: u16,
    /// Packets that arrived while a QoS flow was waiting for its
    /// acknowledgement, handed out first by [`RawClient::next`].
    pending: VecDeque<Packet>,
}

/// A CONNECT with clean start, keep-alive 60 s and nothing else.
pub fn connect_packet(protocol: Protocol, client_id: &str) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.to_string(),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }
}

/// A PUBLISH without properties.
pub fn publish_packet(topic: &str, qos: QoS, packet_id: Option<u16>, payload: &str) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.to_string(),
        packet_id,
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        properties: Default::default(),
    }
}

pub fn ack(packet_id: u16) -> PubAck {
    PubAck {
        packet_id,
        reason_code: ReasonCode::SUCCESS,
        properties: Default::default(),
    }
}

pub fn options(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..Default::default()
    }
}

impl RawClient {
    /// Open TCP without sending anything.
    pub async fn open(addr: SocketAddr, protocol: Protocol) -> anyhow::Result<RawClient> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            buf: BytesMut::new(),
            protocol,
            next_packet_id: 1,
            pending: VecDeque::new(),
        })
    }

    /// Open TCP, send `connect` and return the CONNACK, whatever its code.
    pub async fn connect_with(
        addr: SocketAddr,
        connect: Connect,
    ) -> anyhow::Result<(RawClient, ConnAck)> {
        let mut c = RawClient::open(addr, connect.protocol).await?;
        c.send(&Packet::Connect(Box::new(connect))).await?;
        match c.recv().await? {
            Packet::ConnAck(ack) => Ok((c, ack)),
            other => bail!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connect with `connect` and require success.
    pub async fn connect_ok(addr: SocketAddr, connect: Connect) -> anyhow::Result<RawClient> {
        let (c, ack) = RawClient::connect_with(addr, connect).await?;
        if ack.reason_code != ReasonCode::SUCCESS {
            bail!("CONNACK refused with {:#04x}", ack.reason_code.0);
        }
        Ok(c)
    }

    /// An MQTT 5 client with a clean session.
    pub async fn v5(addr: SocketAddr, client_id: &str) -> anyhow::Result<RawClient> {
        RawClient::connect_ok(addr, connect_packet(Protocol::V5, client_id)).await
    }

    pub async fn send(&mut self, packet: &Packet) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        encode(packet, self.protocol, &mut out)?;
        self.send_bytes(&out).await
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// The next packet, or None once the broker has closed the connection.
    pub async fn next(&mut self) -> anyhow::Result<Option<Packet>> {
        if let Some(p) = self.pending.pop_front() {
            return Ok(Some(p));
        }
        self.read_next().await
    }

    async fn read_next(&mut self) -> anyhow::Result<Option<Packet>> {
        tokio::time::timeout(TIMEOUT, self.read_packet())
            .await
            .context("no packet and no close within the timeout")?
    }

    async fn read_packet(&mut self) -> anyhow::Result<Option<Packet>> {
        loop {
            if let Some(p) = decode(&mut self.buf, Some(self.protocol), u32::MAX)? {
                return Ok(Some(p));
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next packet; the connection closing is an error.
    pub async fn recv(&mut self) -> anyhow::Result<Packet> {
        self.next().await?.context("connection closed")
    }

    pub async fn recv_publish(&mut self) -> anyhow::Result<Publish> {
        match self.recv().await? {
            Packet::Publish(p) => Ok(p),
            other => bail!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Read until the broker closes the connection; what arrived before.
    pub async fn closed(&mut self) -> anyhow::Result<Vec<Packet>> {
        let mut got = Vec::new();
        while let Some(p) = self.next().await? {
            got.push(p);
        }
        Ok(got)
    }

    /// Require a DISCONNECT (skipping nothing else but PUBLISHes in flight)
    /// followed by the close of the connection; its reason code.
    pub async fn disconnected(&mut self) -> anyhow::Result<ReasonCode> {
        let got = self.closed().await?;
        match got.iter().rev().find(|p| !matches!(p, Packet::Publish(_))) {
            Some(Packet::Disconnect(d)) => Ok(d.reason_code),
            _ => bail!("closed without DISCONNECT; received {got:?}"),
        }
    }

    /// Send PINGREQ and return everything received before the PINGRESP.
    /// Whatever the broker had decided to send before it read the PINGREQ
    /// is in the result.
    pub async fn ping(&mut self) -> anyhow::Result<Vec<Packet>> {
        self.send(&Packet::PingReq).await?;
        let mut got = Vec::new();
        loop {
            match self.recv().await? {
                Packet::PingResp => return Ok(got),
                p => got.push(p),
            }
        }
    }

    /// Everything the broker sends in response to what it has already
    /// received: two PINGREQ round trips, because what the broker decides
    /// while handling the first PINGREQ may follow its PINGRESP.
    pub async fn drain(&mut self) -> anyhow::Result<Vec<Packet>> {
        let mut got = self.ping().await?;
        got.extend(self.ping().await?);
        Ok(got)
    }

    fn packet_id(&mut self) -> u16 {
        let id = self.next_packet_id;
        self.next_packet_id = self.next_packet_id.wrapping_add(1).max(1);
        id
    }

    /// Subscribe with `options` and an optional subscription identifier;
    /// the SUBACK.
    pub async fn subscribe_with(
        &mut self,
        filters: &[(&str, SubscriptionOptions)],
        identifier: Option<u32>,
    ) -> anyhow::Result<SubAck> {
        let packet_id = self.packet_id();
        self.send(&Packet::Subscribe(Subscribe {
            packet_id,
            subscriptions: filters
                .iter()
                .map(|(f, o)| Subscription {
                    filter: f.to_string(),
                    options: *o,
                })
                .collect(),
            properties: SubscribeProperties {
                subscription_identifier: identifier,
                user_properties: Vec::new(),
            },
        }))
        .await?;
        match self.recv().await? {
            Packet::SubAck(s) if s.packet_id == packet_id => Ok(s),
            other => bail!("expected SUBACK {packet_id}, got {other:?}"),
        }
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> anyhow::Result<SubAck> {
        self.subscribe_with(&[(filter, options(qos))], None).await
    }

    /// Publish and complete the QoS flow as a well-behaved client;
    /// returns the PUBACK or PUBREC reason code (SUCCESS for QoS 0).
    /// Other packets arriving meanwhile are kept for [`RawClient::next`].
    pub async fn publish(&mut self, p: Publish) -> anyhow::Result<ReasonCode> {
        let mut p = p;
        if p.qos != QoS::AtMostOnce && p.packet_id.is_none() {
            p.packet_id = Some(self.packet_id());
        }
        let qos = p.qos;
        let id = p.packet_id.unwrap_or(0);
        self.send(&Packet::Publish(p)).await?;
        match qos {
            QoS::AtMostOnce => Ok(ReasonCode::SUCCESS),
            QoS::AtLeastOnce => {
                let a = self
                    .await_ack(
                        "PUBACK",
                        |p| matches!(p, Packet::PubAck(a) if a.packet_id == id),
                    )
                    .await?;
                Ok(a.reason_code)
            }
            QoS::ExactlyOnce => {
                let rec = self
                    .await_ack(
                        "PUBREC",
                        |p| matches!(p, Packet::PubRec(a) if a.packet_id == id),
                    )
                    .await?;
                self.send(&Packet::PubRel(ack(id))).await?;
                self.await_ack(
                    "PUBCOMP",
                    |p| matches!(p, Packet::PubComp(a) if a.packet_id == id),
                )
                .await?;
                Ok(rec.reason_code)
            }
        }
    }

    /// Read until an acknowledgement matching `pred`, keeping PUBLISHes
    /// (and their PUBRELs) that come first.
    async fn await_ack(
        &mut self,
        what: &str,
        pred: impl Fn(&Packet) -> bool,
    ) -> anyhow::Result<PubAck> {
        let mut held = Vec::new();
        let found = loop {
            let p = self
                .read_next()
                .await?
                .with_context(|| format!("closed before {what}"))?;
            if pred(&p) {
                break p;
            }
            match p {
                Packet::Publish(_) | Packet::PubRel(_) => held.push(p),
                other => bail!("expected {what}, got {other:?}"),
            }
        };
        self.pending.extend(held);
        match found {
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubComp(a) => Ok(a),
            other => bail!("expected {what}, got {other:?}"),
        }
    }

    /// Send a DISCONNECT with `reason` and wait for the broker to close.
    pub async fn disconnect(mut self, reason: ReasonCode) -> anyhow::Result<()> {
        self.send(&Packet::Disconnect(Disconnect {
            reason_code: reason,
            properties: Default::default(),
        }))
        .await?;
        self.closed().await?;
        Ok(())
    }
}
