//! The binary encoding of stored records.
//!
//! Hand-written so that the on-disk format is explicit and owned here
//! rather than implied by a serialization crate's conventions. Every record
//! starts with one byte naming its record format version; integers are
//! little-endian, strings and byte strings carry a `u32` length, optional
//! fields a `0`/`1` tag. Decoding checks every length against what is left
//! and rejects trailing bytes, so corrupt input yields a `DecodeError`,
//! never a panic or a huge allocation.

use bytes::Bytes;
use civitas_mqtt::{PublishProperties, QoS, RetainHandling, SubscriptionOptions};

use crate::records::{
    OutboundMessage, OutboundState, SessionRecord, ShadowRecord, StoredMessage, StoredSubscription,
    StoredWill,
};

/// The record format this build writes. A future format gets a new number
/// and a decoder branch; old records stay readable.
pub(crate) const RECORD_FORMAT_V1: u8 = 1;

/// Why a record's bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty record")]
    Empty,
    #[error("unknown record format version {0}")]
    UnknownVersion(u8),
    #[error("truncated: `{field}` needs {needed} bytes at byte {offset}, {available} left")]
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("invalid value {value} for `{field}` at byte {offset}")]
    InvalidValue {
        field: &'static str,
        offset: usize,
        value: u64,
    },
    #[error("`{field}` at byte {offset} is not UTF-8")]
    InvalidUtf8 { field: &'static str, offset: usize },
    #[error("{extra} unexpected bytes after the record at byte {offset}")]
    TrailingBytes { offset: usize, extra: usize },
    /// A composite key (an index entry) does not have its expected form.
    #[error("malformed key {key:?}")]
    MalformedKey { key: String },
}

// ---- writing ----

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn record() -> Writer {
        let mut w = Writer {
            buf: Vec::with_capacity(128),
        };
        w.u8(RECORD_FORMAT_V1);
        w
    }

    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Lengths are `u32`; MQTT caps every field well below that (a packet
    /// is at most 256 MiB), so saturating is unreachable in practice and
    /// still yields a record that decodes as truncated rather than wrong.
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.buf.extend_from_slice(v);
    }

    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    fn opt<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Writer, T)) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x);
            }
        }
    }

    fn finish(self) -> Vec<u8> {
        self.buf
    }
}

// ---- reading ----

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Checks the format version byte and positions after it.
    fn record(buf: &'a [u8]) -> Result<Reader<'a>, DecodeError> {
        match buf.first() {
            None => Err(DecodeError::Empty),
            Some(&RECORD_FORMAT_V1) => Ok(Reader { buf, pos: 1 }),
            Some(&v) => Err(DecodeError::UnknownVersion(v)),
        }
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.buf.len() - self.pos;
        if n > available {
            return Err(DecodeError::Truncated {
                field,
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn invalid(&self, field: &'static str, offset: usize, value: u64) -> DecodeError {
        DecodeError::InvalidValue {
            field,
            offset,
            value,
        }
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.invalid(field, at, v.into())),
        }
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.u32(field)?;
        // A length that does not fit usize cannot fit the buffer either.
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.take(field, n)
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let at = self.pos;
        let raw = self.bytes(field)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8 { field, offset: at })
    }

    fn opt<T>(
        &mut self,
        field: &'static str,
        f: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if self.bool(field)? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Reads a `u32` element count. Capacity is bounded by what is left so
    /// that a corrupt count cannot force a huge allocation.
    fn count(
        &mut self,
        field: &'static str,
        min_elem: usize,
    ) -> Result<(usize, usize), DecodeError> {
        let n = usize::try_from(self.u32(field)?).unwrap_or(usize::MAX);
        let left = self.buf.len() - self.pos;
        Ok((n, n.min(left / min_elem.max(1))))
    }

    fn qos(&mut self, field: &'static str) -> Result<QoS, DecodeError> {
        let at = self.pos;
        let v = self.u8(field)?;
        QoS::from_u8(v).ok_or_else(|| self.invalid(field, at, v.into()))
    }

    fn finish(self) -> Result<(), DecodeError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                offset: self.pos,
                extra: self.buf.len() - self.pos,
            })
        }
    }
}

// ---- StoredMessage ----

fn write_message(w: &mut Writer, m: &StoredMessage) {
    w.str(&m.topic);
    w.bytes(&m.payload);
    w.u8(m.qos as u8);
    w.bool(m.retain);
    w.opt(m.expires_at_ms, Writer::u64);
    w.u64(m.received_at_ms);
    let p = &m.properties;
    w.opt(p.payload_format_indicator, Writer::u8);
    w.opt(p.message_expiry_interval, Writer::u32);
    w.opt(p.response_topic.as_deref(), Writer::str);
    w.opt(p.correlation_data.as_deref(), Writer::bytes);
    w.opt(p.content_type.as_deref(), Writer::str);
    w.len(p.user_properties.len());
    for (k, v) in &p.user_properties {
        w.str(k);
        w.str(v);
    }
}

fn read_message(r: &mut Reader<'_>) -> Result<StoredMessage, DecodeError> {
    let topic = r.string("topic")?;
    let payload = Bytes::copy_from_slice(r.bytes("payload")?);
    let qos = r.qos("qos")?;
    let retain = r.bool("retain")?;
    let expires_at_ms = r.opt("expires_at_ms", |r| r.u64("expires_at_ms"))?;
    let received_at_ms = r.u64("received_at_ms")?;
    let payload_format_indicator = r.opt("payload_format_indicator", |r| {
        r.u8("payload_format_indicator")
    })?;
    let message_expiry_interval = r.opt("message_expiry_interval", |r| {
        r.u32("message_expiry_interval")
    })?;
    let response_topic = r.opt("response_topic", |r| r.string("response_topic"))?;
    let correlation_data = r.opt("correlation_data", |r| {
        r.bytes("correlation_data").map(Bytes::copy_from_slice)
    })?;
    let content_type = r.opt("content_type", |r| r.string("content_type"))?;
    let (n, cap) = r.count("user_properties", 8)?;
    let mut user_properties = Vec::with_capacity(cap);
    for _ in 0..n {
        let k = r.string("user_property name")?;
        let v = r.string("user_property value")?;
        user_properties.push((k, v));
    }
    Ok(StoredMessage {
        topic,
        payload,
        qos,
        retain,
        expires_at_ms,
        properties: PublishProperties {
            payload_format_indicator,
            message_expiry_interval,
            topic_alias: None,
            response_topic,
            correlation_data,
            user_properties,
            subscription_identifiers: Vec::new(),
            content_type,
        },
        received_at_ms,
    })
}

/// A retained message record.
pub(crate) fn encode_message(m: &StoredMessage) -> Vec<u8> {
    let mut w = Writer::record();
    write_message(&mut w, m);
    w.finish()
}

pub(crate) fn decode_message(buf: &[u8]) -> Result<StoredMessage, DecodeError> {
    let mut r = Reader::record(buf)?;
    let m = read_message(&mut r)?;
    r.finish()?;
    Ok(m)
}

// ---- SessionRecord ----

const NO_LOCAL: u8 = 1;
const RETAIN_AS_PUBLISHED: u8 = 2;

fn write_subscription(w: &mut Writer, s: &StoredSubscription) {
    w.str(&s.filter);
    w.u8(s.options.qos as u8);
    let mut flags = 0;
    if s.options.no_local {
        flags |= NO_LOCAL;
    }
    if s.options.retain_as_published {
        flags |= RETAIN_AS_PUBLISHED;
    }
    w.u8(flags);
    w.u8(s.options.retain_handling as u8);
    w.opt(s.subscription_identifier, Writer::u32);
}

fn read_subscription(r: &mut Reader<'_>) -> Result<StoredSubscription, DecodeError> {
    let filter = r.string("subscription filter")?;
    let qos = r.qos("subscription qos")?;
    let at = r.pos;
    let flags = r.u8("subscription flags")?;
    if flags & !(NO_LOCAL | RETAIN_AS_PUBLISHED) != 0 {
        return Err(r.invalid("subscription flags", at, flags.into()));
    }
    let at = r.pos;
    let retain_handling = match r.u8("retain_handling")? {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        v => return Err(r.invalid("retain_handling", at, v.into())),
    };
    let subscription_identifier = r.opt("subscription_identifier", |r| {
        r.u32("subscription_identifier")
    })?;
    Ok(StoredSubscription {
        filter,
        options: SubscriptionOptions {
            qos,
            no_local: flags & NO_LOCAL != 0,
            retain_as_published: flags & RETAIN_AS_PUBLISHED != 0,
            retain_handling,
        },
        subscription_identifier,
    })
}

pub(crate) fn encode_session(s: &SessionRecord) -> Vec<u8> {
    let mut w = Writer::record();
    w.str(&s.client_id);
    w.u8(s.protocol_level);
    w.u32(s.session_expiry_interval);
    w.opt(s.disconnected_at_ms, Writer::u64);
    w.len(s.subscriptions.len());
    for sub in &s.subscriptions {
        write_subscription(&mut w, sub);
    }
    w.opt(s.will.as_ref(), |w, will| {
        write_message(w, &will.message);
        w.u32(will.delay_interval);
        w.opt(will.publish_at_ms, Writer::u64);
    });
    w.finish()
}

pub(crate) fn decode_session(buf: &[u8]) -> Result<SessionRecord, DecodeError> {
    let mut r = Reader::record(buf)?;
    let client_id = r.string("client_id")?;
    let protocol_level = r.u8("protocol_level")?;
    let session_expiry_interval = r.u32("session_expiry_interval")?;
    let disconnected_at_ms = r.opt("disconnected_at_ms", |r| r.u64("disconnected_at_ms"))?;
    let (n, cap) = r.count("subscriptions", 9)?;
    let mut subscriptions = Vec::with_capacity(cap);
    for _ in 0..n {
        subscriptions.push(read_subscription(&mut r)?);
    }
    let will = r.opt("will", |r| {
        let message = read_message(r)?;
        let delay_interval = r.u32("will delay_interval")?;
        let publish_at_ms = r.opt("will publish_at_ms", |r| r.u64("will publish_at_ms"))?;
        Ok(StoredWill {
            message,
            delay_interval,
            publish_at_ms,
        })
    })?;
    r.finish()?;
    Ok(SessionRecord {
        client_id,
        protocol_level,
        session_expiry_interval,
        disconnected_at_ms,
        subscriptions,
        will,
    })
}

// ---- OutboundMessage ----

fn state_code(s: OutboundState) -> u8 {
    match s {
        OutboundState::Queued => 0,
        OutboundState::AwaitingPubAck => 1,
        OutboundState::AwaitingPubRec => 2,
        OutboundState::AwaitingPubComp => 3,
    }
}

pub(crate) fn encode_outbound(m: &OutboundMessage) -> Vec<u8> {
    let mut w = Writer::record();
    write_message(&mut w, &m.message);
    w.opt(m.packet_id, Writer::u16);
    w.u8(state_code(m.state));
    w.u8(m.qos as u8);
    w.len(m.subscription_identifiers.len());
    for id in &m.subscription_identifiers {
        w.u32(*id);
    }
    w.finish()
}

pub(crate) fn decode_outbound(buf: &[u8]) -> Result<OutboundMessage, DecodeError> {
    let mut r = Reader::record(buf)?;
    let message = read_message(&mut r)?;
    let packet_id = r.opt("packet_id", |r| r.u16("packet_id"))?;
    let at = r.pos;
    let state = match r.u8("state")? {
        0 => OutboundState::Queued,
        1 => OutboundState::AwaitingPubAck,
        2 => OutboundState::AwaitingPubRec,
        3 => OutboundState::AwaitingPubComp,
        v => return Err(r.invalid("state", at, v.into())),
    };
    let qos = r.qos("delivered qos")?;
    let (n, cap) = r.count("subscription_identifiers", 4)?;
    let mut subscription_identifiers = Vec::with_capacity(cap);
    for _ in 0..n {
        subscription_identifiers.push(r.u32("subscription_identifier")?);
    }
    r.finish()?;
    Ok(OutboundMessage {
        message,
        packet_id,
        state,
        qos,
        subscription_identifiers,
    })
}

// ---- ShadowRecord ----

/// A shadow record. The key (thing, shadow) is stored with it so that a
/// record read on its own is complete and can be checked against its key.
pub(crate) fn encode_shadow(s: &ShadowRecord) -> Vec<u8> {
    let mut w = Writer::record();
    w.str(&s.thing);
    w.str(&s.shadow);
    w.u64(s.version);
    w.u64(s.updated_at_ms);
    w.opt(s.document.as_deref(), Writer::bytes);
    w.finish()
}

pub(crate) fn decode_shadow(buf: &[u8]) -> Result<ShadowRecord, DecodeError> {
    let mut r = Reader::record(buf)?;
    let thing = r.string("thing")?;
    let shadow = r.string("shadow")?;
    let version = r.u64("version")?;
    let updated_at_ms = r.u64("updated_at_ms")?;
    let document = r.opt("document", |r| r.bytes("document").map(<[u8]>::to_vec))?;
    r.finish()?;
    Ok(ShadowRecord {
        thing,
        shadow,
        version,
        updated_at_ms,
        document,
    })
}

// ---- meta values ----

/// Meta values are bare little-endian `u32`s: the schema version must stay
/// readable by every future build, so it does not go through the versioned
/// record format.
pub(crate) fn encode_meta_u32(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

pub(crate) fn decode_meta_u32(buf: &[u8]) -> Result<u32, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let v = r.u32("u32")?;
    r.finish()?;
    Ok(v)
}

pub(crate) mod registry;
pub(crate) mod rules;
pub(crate) mod telemetry;

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
