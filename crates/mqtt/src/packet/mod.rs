//! Framing and dispatch: the fixed header, the size limit, and routing each
//! control packet type to the module that knows its variable header and
//! payload in both directions.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod suback;
mod subscribe;
mod unsuback;
mod unsubscribe;

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
use crate::primitives::{Reader, VARINT_MAX, parse_varint, put_varint, varint_len};
use crate::types::{Packet, Protocol, QoS};

/// Packet names by control packet type, for error messages.
const NAMES: [&str; 16] = [
    "reserved",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];

/// Decode one packet from the front of `buf`.
///
/// `Ok(None)` if `buf` does not yet hold a whole packet (nothing consumed).
/// On success the packet's bytes are split off `buf`; payloads, passwords
/// and binary properties are zero-copy slices of them.
///
/// `protocol` is `None` before CONNECT: then only CONNECT is accepted
/// (anything else is [`ProtocolViolation::ExpectedConnect`]), and CONNECT's
/// own protocol level decides how it is parsed, with or without a
/// `protocol`. `max_packet_size` limits the whole packet, fixed header
/// included; a larger one fails with [`DecodeError::PacketTooLarge`] as soon
/// as its remaining length is known, before its body has arrived.
///
/// Header errors (type, flags, CONNECT-first, size) are reported from the
/// first bytes, without waiting for the rest of the packet. Topic filters
/// in SUBSCRIBE and UNSUBSCRIBE are not checked here: the broker answers a
/// bad filter in SUBACK rather than by closing the connection. A PUBLISH
/// may carry several subscription identifiers (legal from the server); a
/// broker must reject any from a client.
pub fn decode(
    buf: &mut BytesMut,
    protocol: Option<Protocol>,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let kind = first >> 4;
    let flags = first & 0x0f;
    check_header(kind, flags, protocol)?;
    let Some((remaining, len_len)) = parse_varint(&buf[1..], "remaining length")? else {
        return Ok(None);
    };
    let size = 1 + len_len as u64 + u64::from(remaining);
    if size > u64::from(max_packet_size) {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    // `size` is at most 1 + 4 + VARINT_MAX, which fits any usize we run on.
    let size = size as usize;
    if buf.len() < size {
        return Ok(None);
    }
    let frame = buf.split_to(size).freeze();
    let body = Reader::new(frame.slice(1 + len_len..));
    // Only CONNECT gets past `check_header` without a protocol, and it
    // reads its own.
    let p = protocol.unwrap_or(Protocol::V5);
    let name = NAMES[usize::from(kind)];
    let packet = match kind {
        1 => Packet::Connect(Box::new(connect::decode(body)?)),
        2 => Packet::ConnAck(connack::decode(body, p)?),
        3 => {
            let qos =
                QoS::from_u8((flags >> 1) & 0x03).ok_or(Malformed::InvalidQoS { what: name })?;
            Packet::Publish(publish::decode(
                flags & 0x08 != 0,
                qos,
                flags & 0x01 != 0,
                body,
                p,
            )?)
        }
        4 => Packet::PubAck(ack::decode(name, body, p)?),
        5 => Packet::PubRec(ack::decode(name, body, p)?),
        6 => Packet::PubRel(ack::decode(name, body, p)?),
        7 => Packet::PubComp(ack::decode(name, body, p)?),
        8 => Packet::Subscribe(subscribe::decode(body, p)?),
        9 => Packet::SubAck(suback::decode(body, p)?),
        10 => Packet::Unsubscribe(unsubscribe::decode(body, p)?),
        11 => Packet::UnsubAck(unsuback::decode(body, p)?),
        12 => {
            body.finish(name)?;
            Packet::PingReq
        }
        13 => {
            body.finish(name)?;
            Packet::PingResp
        }
        14 => Packet::Disconnect(disconnect::decode(body, p)?),
        _ => Packet::Auth(auth::decode(body)?),
    };
    Ok(Some(packet))
}

/// Checks the first byte of the fixed header.
fn check_header(kind: u8, flags: u8, protocol: Option<Protocol>) -> Result<(), DecodeError> {
    if kind == 0 || (kind == 15 && protocol == Some(Protocol::V311)) {
        return Err(Malformed::ReservedPacketType(kind).into());
    }
    let name = NAMES[usize::from(kind)];
    if protocol.is_none() && kind != 1 {
        return Err(ProtocolViolation::ExpectedConnect { got: name }.into());
    }
    let valid = match kind {
        3 => {
            let qos = (flags >> 1) & 0x03;
            if qos == 3 {
                return Err(Malformed::InvalidQoS { what: name }.into());
            }
            if qos == 0 && flags & 0x08 != 0 {
                return Err(Malformed::DupOnQoS0.into());
            }
            true
        }
        6 | 8 | 10 => flags == 0b0010,
        _ => flags == 0,
    };
    if valid {
        Ok(())
    } else {
        Err(Malformed::InvalidFlags {
            packet: name,
            flags,
        }
        .into())
    }
}

/// Reads a packet identifier, which MQTT never allows to be 0.
fn packet_id(r: &mut Reader, packet: &'static str) -> Result<u16, DecodeError> {
    match r.u16("packet identifier")? {
        0 => Err(ProtocolViolation::PacketIdZero { packet }.into()),
        id => Ok(id),
    }
}

/// Encode `packet` for a peer speaking `protocol`, appending to `out`.
///
/// Under 3.1.1 properties are left out and reason codes become that
/// version's return codes. A CONNECT is always encoded for its own
/// `protocol` field. Only what the wire format cannot represent is an
/// error (over-long fields, out-of-range integers, AUTH under 3.1.1, a
/// PUBLISH whose packet identifier disagrees with its QoS); protocol rules
/// such as valid reason codes are the caller's. On error `out` is left as
/// it was.
pub fn encode(packet: &Packet, protocol: Protocol, out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = out.len();
    let result = encode_unchecked(packet, protocol, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_unchecked(
    packet: &Packet,
    protocol: Protocol,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    if protocol == Protocol::V311 && matches!(packet, Packet::Auth(_)) {
        return Err(EncodeError::AuthInV311);
    }
    let remaining = body_len(packet, protocol);
    if remaining > VARINT_MAX as usize {
        return Err(EncodeError::PacketTooLarge(remaining));
    }
    out.reserve(1 + varint_len(remaining) + remaining);
    let flags = match packet {
        Packet::Publish(p) => publish::header_flags(p),
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
        _ => 0,
    };
    out.put_u8((packet.packet_type() << 4) | flags);
    put_varint(out, remaining);
    match packet {
        Packet::Connect(c) => connect::encode_body(c, out),
        Packet::ConnAck(c) => connack::encode_body(c, protocol, out),
        Packet::Publish(p) => publish::encode_body(p, protocol, out),
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            ack::encode_body(a, protocol, out)
        }
        Packet::Subscribe(s) => subscribe::encode_body(s, protocol, out),
        Packet::SubAck(s) => suback::encode_body(s, protocol, out),
        Packet::Unsubscribe(u) => unsubscribe::encode_body(u, protocol, out),
        Packet::UnsubAck(u) => unsuback::encode_body(u, protocol, out),
        Packet::PingReq | Packet::PingResp => Ok(()),
        Packet::Disconnect(d) => disconnect::encode_body(d, protocol, out),
        Packet::Auth(a) => auth::encode_body(a, out),
    }
}

/// The exact number of bytes [`encode`] writes for `packet`, fixed header
/// included (meaningless when `encode` would fail).
pub fn encoded_len(packet: &Packet, protocol: Protocol) -> usize {
    let remaining = body_len(packet, protocol);
    1 + varint_len(remaining) + remaining
}

fn body_len(packet: &Packet, protocol: Protocol) -> usize {
    match packet {
        Packet::Connect(c) => connect::body_len(c),
        Packet::ConnAck(c) => connack::body_len(c, protocol),
        Packet::Publish(p) => publish::body_len(p, protocol),
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            ack::body_len(a, protocol)
        }
        Packet::Subscribe(s) => subscribe::body_len(s, protocol),
        Packet::SubAck(s) => suback::body_len(s, protocol),
        Packet::Unsubscribe(u) => unsubscribe::body_len(u, protocol),
        Packet::UnsubAck(u) => unsuback::body_len(u, protocol),
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => disconnect::body_len(d, protocol),
        Packet::Auth(a) => auth::body_len(a),
    }
}
