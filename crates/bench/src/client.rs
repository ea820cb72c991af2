//! The generator's MQTT 5 client: civitas' own codec over tokio-rustls,
//! one TLS connection per client certificate, no extra tasks or buffers
//! beyond one read and one write buffer, so thousands fit on one core.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use civitas_mqtt::{
    Connect, ConnectProperties, Disconnect, Packet, Protocol, PubAck, Publish, QoS, ReasonCode,
    Subscribe, SubscribeProperties, Subscription, SubscriptionOptions, decode, encode,
};
use rustls::HandshakeKind;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{BenchError, Result};
use crate::pki::Identity;

/// Source addresses spread connections over: ~28k ephemeral ports each,
/// so tens of thousands of connections (and their TIME_WAITs) fit.
const SOURCE_ADDRS: u8 = 32;
const KEEP_ALIVE_SECS: u16 = 1200;
const MAX_PACKET: u32 = 1 << 20;
/// Read sizes: small for the many quiet connections, large once a
/// connection fills its buffer (a busy subscriber).
const READ_SMALL: usize = 4 * 1024;
const READ_LARGE: usize = 64 * 1024;

/// The loopback source address for the `i`-th connection.
pub fn source_addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        2 + (i % usize::from(SOURCE_ADDRS)) as u8,
    ))
}

/// How a connection's TLS session was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Never offer a ticket: a full handshake every time.
    Never,
    /// Offer a ticket from an earlier connection of the same identity.
    IfPossible,
}

pub struct Client {
    pub name: String,
    tls: TlsStream<TcpStream>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// The TLS handshake resumed an earlier session.
    pub resumed: bool,
    /// The broker's Receive Maximum: QoS 1 PUBLISHes we may have unacked.
    pub receive_maximum: u16,
    next_pid: u16,
    busy: bool,
}

fn mqtt_err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Mqtt(e.to_string())
}

impl Client {
    /// TCP (with TCP_NODELAY) from `source`, mutual TLS as `identity`,
    /// CONNECT with a clean start, CONNACK.
    /// What the TLS handshake negotiated, e.g. `TLSv1_3
    /// TLS13_AES_128_GCM_SHA256 X25519`.
    pub fn negotiated(&self) -> String {
        let conn = self.tls.get_ref().1;
        format!(
            "{} {} {}",
            conn.protocol_version()
                .map_or_else(|| "?".into(), |v| format!("{v:?}")),
            conn.negotiated_cipher_suite()
                .map_or_else(|| "?".into(), |s| format!("{:?}", s.suite())),
            conn.negotiated_key_exchange_group()
                .map_or_else(|| "?".into(), |g| format!("{:?}", g.name())),
        )
    }

    pub async fn connect(
        identity: &Identity,
        addr: SocketAddr,
        source: IpAddr,
        resume: Resume,
    ) -> Result<Client> {
        let socket = TcpSocket::new_v4().map_err(|e| BenchError::io("socket", e))?;
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| BenchError::io(format!("bind {source}"), e))?;
        let tcp = socket
            .connect(addr)
            .await
            .map_err(|e| BenchError::io(format!("connect {addr}"), e))?;
        tcp.set_nodelay(true)
            .map_err(|e| BenchError::io("TCP_NODELAY", e))?;
        let config = match resume {
            Resume::Never => identity.full.clone(),
            Resume::IfPossible => identity.resuming.clone(),
        };
        let tls = TlsConnector::from(config)
            .connect(ServerName::try_from("localhost").map_err(mqtt_err)?, tcp)
            .await
            .map_err(|e| BenchError::io(format!("TLS handshake as {}", identity.name), e))?;
        let resumed = tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
        let mut client = Client {
            name: identity.name.clone(),
            tls,
            rbuf: BytesMut::with_capacity(1024),
            wbuf: BytesMut::with_capacity(1024),
            resumed,
            receive_maximum: u16::MAX,
            next_pid: 0,
            busy: false,
        };
        client.queue(&Packet::Connect(Box::new(Connect {
            protocol: Protocol::V5,
            clean_start: true,
            keep_alive: KEEP_ALIVE_SECS,
            client_id: identity.name.clone(),
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        })))?;
        client.flush().await?;
        match client.next().await? {
            Packet::ConnAck(ack) if !ack.reason_code.is_error() => {
                client.receive_maximum = ack.properties.receive_maximum.unwrap_or(u16::MAX);
                Ok(client)
            }
            Packet::ConnAck(ack) => Err(BenchError::Mqtt(format!(
                "{} refused: CONNACK 0x{:02x} {}",
                identity.name,
                ack.reason_code.0,
                ack.properties.reason_string.unwrap_or_default()
            ))),
            other => Err(BenchError::Mqtt(format!(
                "{}: expected CONNACK, got {}",
                identity.name,
                other.name()
            ))),
        }
    }

    /// Subscribe and wait for a granting SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<()> {
        let packet_id = self.next_pid();
        self.queue(&Packet::Subscribe(Subscribe {
            packet_id,
            subscriptions: vec![Subscription {
                filter: filter.to_string(),
                options: SubscriptionOptions {
                    qos,
                    ..SubscriptionOptions::default()
                },
            }],
            properties: SubscribeProperties::default(),
        }))?;
        self.flush().await?;
        loop {
            match self.next().await? {
                Packet::SubAck(ack) if ack.packet_id == packet_id => {
                    return match ack.reason_codes.first() {
                        Some(rc) if !rc.is_error() => Ok(()),
                        rc => Err(BenchError::Mqtt(format!(
                            "{}: subscription to {filter} refused ({rc:?})",
                            self.name
                        ))),
                    };
                }
                // Retained or early messages are not expected here.
                _ => continue,
            }
        }
    }

    /// A fresh packet identifier (never 0).
    pub fn next_pid(&mut self) -> u16 {
        self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
        self.next_pid
    }

    pub fn queue(&mut self, packet: &Packet) -> Result<()> {
        encode(packet, Protocol::V5, &mut self.wbuf).map_err(mqtt_err)
    }

    /// Append pre-encoded bytes (see [`PublishTemplate`]).
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.wbuf.extend_from_slice(bytes);
    }

    pub fn queue_puback(&mut self, packet_id: u16) -> Result<()> {
        self.queue(&Packet::PubAck(PubAck {
            packet_id,
            reason_code: ReasonCode::SUCCESS,
            properties: Default::default(),
        }))
    }

    /// Write everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.tls
            .write_all(&self.wbuf)
            .await
            .map_err(|e| BenchError::io(format!("{}: write", self.name), e))?;
        self.tls
            .flush()
            .await
            .map_err(|e| BenchError::io(format!("{}: flush", self.name), e))?;
        self.wbuf.clear();
        Ok(())
    }

    /// One read from the connection into the read buffer. Cancel safe:
    /// usable as a `select!` branch.
    pub async fn read(&mut self) -> Result<()> {
        self.rbuf
            .reserve(if self.busy { READ_LARGE } else { READ_SMALL });
        let room = self.rbuf.capacity() - self.rbuf.len();
        let n = self
            .tls
            .read_buf(&mut self.rbuf)
            .await
            .map_err(|e| BenchError::io(format!("{}: read", self.name), e))?;
        if n == 0 {
            return Err(BenchError::Mqtt(format!(
                "{}: the broker closed the connection",
                self.name
            )));
        }
        self.busy |= n == room;
        Ok(())
    }

    /// The next whole packet already read, if any.
    pub fn take(&mut self) -> Result<Option<Packet>> {
        let packet = decode(&mut self.rbuf, Some(Protocol::V5), MAX_PACKET).map_err(mqtt_err)?;
        if let Some(Packet::Disconnect(d)) = &packet {
            return Err(BenchError::Mqtt(format!(
                "{}: DISCONNECT from the broker, reason 0x{:02x} {}",
                self.name,
                d.reason_code.0,
                d.properties.reason_string.clone().unwrap_or_default()
            )));
        }
        Ok(packet)
    }

    /// The next packet, reading as needed.
    pub async fn next(&mut self) -> Result<Packet> {
        loop {
            if let Some(p) = self.take()? {
                return Ok(p);
            }
            self.read().await?;
        }
    }

    /// DISCONNECT (normal), then close the TLS session and the socket.
    pub async fn disconnect(mut self) -> Result<()> {
        self.queue(&Packet::Disconnect(Disconnect::default()))?;
        self.flush().await?;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.tls.shutdown()).await;
        Ok(())
    }
}

/// A PUBLISH encoded once; each send copies it and patches the packet
/// identifier and the payload's timestamp, which keeps the generator's
/// cost per message to a copy.
#[derive(Clone)]
pub struct PublishTemplate {
    bytes: Vec<u8>,
    pid_at: Option<usize>,
    payload_at: usize,
}

impl PublishTemplate {
    pub fn new(topic: &str, qos: QoS, payload_len: usize) -> Result<PublishTemplate> {
        let payload_len = payload_len.max(crate::clock::STAMP_LEN);
        PublishTemplate::with_payload(topic, qos, vec![0u8; payload_len])
    }

    /// A template with this payload, for [`queue_patched`](Self::queue_patched).
    pub fn with_payload(topic: &str, qos: QoS, payload: Vec<u8>) -> Result<PublishTemplate> {
        let payload_len = payload.len();
        let publish = Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.to_string(),
            packet_id: (qos != QoS::AtMostOnce).then_some(1),
            payload: payload.into(),
            properties: Default::default(),
        };
        let mut out = BytesMut::new();
        encode(&Packet::Publish(publish), Protocol::V5, &mut out).map_err(mqtt_err)?;
        let payload_at = out.len() - payload_len;
        // MQTT 5 without properties: packet id, then a zero property
        // length, then the payload.
        let pid_at = (qos != QoS::AtMostOnce).then(|| payload_at - 3);
        Ok(PublishTemplate {
            bytes: out.to_vec(),
            pid_at,
            payload_at,
        })
    }

    /// The payload as encoded, before any patch.
    #[cfg(test)]
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.payload_at..]
    }

    /// Queue one copy on `client`, stamped now with `seq`; QoS 1 takes a
    /// fresh packet id, returned.
    pub fn queue(&self, client: &mut Client, seq: u64) -> Option<u16> {
        self.queue_patched(client, |payload| crate::clock::stamp(payload, seq))
    }

    /// Queue one copy on `client` with its payload patched in place by
    /// `patch` (which must keep its length); QoS 1 takes a fresh packet
    /// id, returned.
    pub fn queue_patched(&self, client: &mut Client, patch: impl FnOnce(&mut [u8])) -> Option<u16> {
        let start = client.wbuf.len();
        client.wbuf.extend_from_slice(&self.bytes);
        let frame = &mut client.wbuf[start..];
        patch(&mut frame[self.payload_at..]);
        let pid_at = self.pid_at?;
        let pid = client.next_pid();
        client.wbuf[start + pid_at..start + pid_at + 2].copy_from_slice(&pid.to_be_bytes());
        Some(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_patches_decode_cleanly() {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            let t = PublishTemplate::new("city/bench/things/x/telemetry", qos, 200).unwrap();
            let mut buf = BytesMut::from(&t.bytes[..]);
            let pid_at = t.pid_at;
            if let Some(at) = pid_at {
                buf[at..at + 2].copy_from_slice(&0x1234u16.to_be_bytes());
            }
            crate::clock::stamp(&mut buf[t.payload_at..], 9);
            let Some(Packet::Publish(p)) =
                decode(&mut buf, Some(Protocol::V5), MAX_PACKET).unwrap()
            else {
                panic!("not a publish");
            };
            assert_eq!(p.qos, qos);
            assert_eq!(p.payload.len(), 200);
            assert_eq!(p.packet_id, pid_at.map(|_| 0x1234));
            assert!(crate::clock::sent_at(&p.payload).is_some());
            assert_eq!(u64::from_le_bytes(p.payload[8..16].try_into().unwrap()), 9);
        }
    }

    #[test]
    fn source_addresses_stay_in_loopback() {
        for i in [0, 1, 31, 32, 10_000] {
            let IpAddr::V4(a) = source_addr(i) else {
                panic!()
            };
            assert!(a.is_loopback() && a.octets()[3] >= 2);
        }
    }
}
