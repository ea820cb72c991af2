//! MQTT 5 properties (section 2.2.2): identifiers, their data types, the
//! generic reader every packet uses, and the sizing and writing helpers
//! the encoders share. Which identifier is allowed where, and what values
//! it may take, is decided by each packet's module.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
use crate::primitives::{Reader, put_binary, put_checked_varint, put_varint, varint_len};
use crate::types::UserProperties;

pub(crate) const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
pub(crate) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
pub(crate) const CONTENT_TYPE: u8 = 0x03;
pub(crate) const RESPONSE_TOPIC: u8 = 0x08;
pub(crate) const CORRELATION_DATA: u8 = 0x09;
pub(crate) const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
pub(crate) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
pub(crate) const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
pub(crate) const SERVER_KEEP_ALIVE: u8 = 0x13;
pub(crate) const AUTHENTICATION_METHOD: u8 = 0x15;
pub(crate) const AUTHENTICATION_DATA: u8 = 0x16;
pub(crate) const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
pub(crate) const WILL_DELAY_INTERVAL: u8 = 0x18;
pub(crate) const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
pub(crate) const RESPONSE_INFORMATION: u8 = 0x1A;
pub(crate) const SERVER_REFERENCE: u8 = 0x1C;
pub(crate) const REASON_STRING: u8 = 0x1F;
pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
pub(crate) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
pub(crate) const TOPIC_ALIAS: u8 = 0x23;
pub(crate) const MAXIMUM_QOS: u8 = 0x24;
pub(crate) const RETAIN_AVAILABLE: u8 = 0x25;
pub(crate) const USER_PROPERTY: u8 = 0x26;
pub(crate) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
pub(crate) const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
pub(crate) const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
pub(crate) const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

/// The data type of a property's value.
#[derive(Clone, Copy)]
enum Kind {
    Byte,
    U16,
    U32,
    VarInt,
    Str,
    Bin,
    Pair,
}

/// Name (as the specification spells it) and data type of an identifier.
fn describe(id: u8) -> Option<(&'static str, Kind)> {
    Some(match id {
        PAYLOAD_FORMAT_INDICATOR => ("Payload Format Indicator", Kind::Byte),
        MESSAGE_EXPIRY_INTERVAL => ("Message Expiry Interval", Kind::U32),
        CONTENT_TYPE => ("Content Type", Kind::Str),
        RESPONSE_TOPIC => ("Response Topic", Kind::Str),
        CORRELATION_DATA => ("Correlation Data", Kind::Bin),
        SUBSCRIPTION_IDENTIFIER => ("Subscription Identifier", Kind::VarInt),
        SESSION_EXPIRY_INTERVAL => ("Session Expiry Interval", Kind::U32),
        ASSIGNED_CLIENT_IDENTIFIER => ("Assigned Client Identifier", Kind::Str),
        SERVER_KEEP_ALIVE => ("Server Keep Alive", Kind::U16),
        AUTHENTICATION_METHOD => ("Authentication Method", Kind::Str),
        AUTHENTICATION_DATA => ("Authentication Data", Kind::Bin),
        REQUEST_PROBLEM_INFORMATION => ("Request Problem Information", Kind::Byte),
        WILL_DELAY_INTERVAL => ("Will Delay Interval", Kind::U32),
        REQUEST_RESPONSE_INFORMATION => ("Request Response Information", Kind::Byte),
        RESPONSE_INFORMATION => ("Response Information", Kind::Str),
        SERVER_REFERENCE => ("Server Reference", Kind::Str),
        REASON_STRING => ("Reason String", Kind::Str),
        RECEIVE_MAXIMUM => ("Receive Maximum", Kind::U16),
        TOPIC_ALIAS_MAXIMUM => ("Topic Alias Maximum", Kind::U16),
        TOPIC_ALIAS => ("Topic Alias", Kind::U16),
        MAXIMUM_QOS => ("Maximum QoS", Kind::Byte),
        RETAIN_AVAILABLE => ("Retain Available", Kind::Byte),
        USER_PROPERTY => ("User Property", Kind::Pair),
        MAXIMUM_PACKET_SIZE => ("Maximum Packet Size", Kind::U32),
        WILDCARD_SUBSCRIPTION_AVAILABLE => ("Wildcard Subscription Available", Kind::Byte),
        SUBSCRIPTION_IDENTIFIER_AVAILABLE => ("Subscription Identifier Available", Kind::Byte),
        SHARED_SUBSCRIPTION_AVAILABLE => ("Shared Subscription Available", Kind::Byte),
        _ => return None,
    })
}

/// The specification's name of a property identifier.
pub(crate) fn name(id: u8) -> &'static str {
    describe(id).map_or("unknown property", |(n, _)| n)
}

/// A decoded property value; its variant follows from the identifier.
pub(crate) enum Value {
    Byte(u8),
    U16(u16),
    U32(u32),
    VarInt(u32),
    Str(String),
    Bin(Bytes),
    Pair(String, String),
}

/// Reads a property length and the properties it covers, handing each to
/// `f`. `f` returns [`invalid`] for identifiers its packet does not allow.
pub(crate) fn read(
    r: &mut Reader,
    packet: &'static str,
    mut f: impl FnMut(u8, Value) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let len = r.varint("property length")? as usize;
    let mut props = Reader::new(r.take(len, "properties")?);
    while !props.is_empty() {
        // The identifier is a variable byte integer; every defined one
        // fits a single byte, so a longer one is simply unknown.
        let id = props.varint("property identifier")?;
        let id = u8::try_from(id).map_err(|_| Malformed::InvalidPropertyId { packet, id: 0xff })?;
        let (pname, kind) = describe(id).ok_or(Malformed::InvalidPropertyId { packet, id })?;
        let value = match kind {
            Kind::Byte => Value::Byte(props.u8(pname)?),
            Kind::U16 => Value::U16(props.u16(pname)?),
            Kind::U32 => Value::U32(props.u32(pname)?),
            Kind::VarInt => Value::VarInt(props.varint(pname)?),
            Kind::Str => Value::Str(props.string(pname)?),
            Kind::Bin => Value::Bin(props.binary(pname)?),
            Kind::Pair => Value::Pair(props.string(pname)?, props.string(pname)?),
        };
        f(id, value)?;
    }
    Ok(())
}

/// The error for an identifier that exists but not in this packet.
pub(crate) fn invalid(packet: &'static str, id: u8) -> DecodeError {
    Malformed::InvalidPropertyId { packet, id }.into()
}

/// Stores a property that may appear at most once.
pub(crate) fn once<T>(slot: &mut Option<T>, value: T, id: u8) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(ProtocolViolation::DuplicateProperty { name: name(id) }.into());
    }
    *slot = Some(value);
    Ok(())
}

/// A byte property that is a boolean: only 0 and 1 are allowed.
pub(crate) fn flag(v: u8, id: u8) -> Result<bool, DecodeError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(bad_value(id, u32::from(v))),
    }
}

/// A value MQTT forbids for this property.
pub(crate) fn bad_value(id: u8, value: u32) -> DecodeError {
    ProtocolViolation::InvalidPropertyValue {
        name: name(id),
        value,
    }
    .into()
}

// Sizes, identifier byte included, of a property when present.

pub(crate) fn len_u8<T>(v: Option<T>) -> usize {
    v.map_or(0, |_| 2)
}

pub(crate) fn len_u16(v: Option<u16>) -> usize {
    v.map_or(0, |_| 3)
}

pub(crate) fn len_u32(v: Option<u32>) -> usize {
    v.map_or(0, |_| 5)
}

pub(crate) fn len_bytes<T: AsRef<[u8]>>(v: Option<&T>) -> usize {
    v.map_or(0, |b| 3 + b.as_ref().len())
}

pub(crate) fn len_varint(v: u32) -> usize {
    1 + varint_len(v as usize)
}

pub(crate) fn len_user(props: &UserProperties) -> usize {
    props.iter().map(|(k, v)| 5 + k.len() + v.len()).sum()
}

/// Size of a property block: its length prefix plus the properties.
pub(crate) fn block_len(props_len: usize) -> usize {
    varint_len(props_len) + props_len
}

/// Writes the property length; the caller has already checked the whole
/// remaining length fits, so this one does too.
pub(crate) fn put_len(out: &mut BytesMut, props_len: usize) {
    put_varint(out, props_len);
}

pub(crate) fn put_u8(out: &mut BytesMut, id: u8, v: Option<u8>) {
    if let Some(v) = v {
        out.put_u8(id);
        out.put_u8(v);
    }
}

pub(crate) fn put_bool(out: &mut BytesMut, id: u8, v: Option<bool>) {
    put_u8(out, id, v.map(u8::from));
}

pub(crate) fn put_u16(out: &mut BytesMut, id: u8, v: Option<u16>) {
    if let Some(v) = v {
        out.put_u8(id);
        out.put_u16(v);
    }
}

pub(crate) fn put_u32(out: &mut BytesMut, id: u8, v: Option<u32>) {
    if let Some(v) = v {
        out.put_u8(id);
        out.put_u32(v);
    }
}

pub(crate) fn put_bytes<T: AsRef<[u8]>>(
    out: &mut BytesMut,
    id: u8,
    v: Option<&T>,
) -> Result<(), EncodeError> {
    if let Some(v) = v {
        out.put_u8(id);
        put_binary(out, v.as_ref(), name(id))?;
    }
    Ok(())
}

pub(crate) fn put_varint_prop(out: &mut BytesMut, id: u8, v: u32) -> Result<(), EncodeError> {
    out.put_u8(id);
    put_checked_varint(out, v, name(id))
}

pub(crate) fn put_user(out: &mut BytesMut, props: &UserProperties) -> Result<(), EncodeError> {
    for (k, v) in props {
        out.put_u8(USER_PROPERTY);
        put_binary(out, k.as_bytes(), "user property name")?;
        put_binary(out, v.as_bytes(), "user property value")?;
    }
    Ok(())
}
