//! PUBACK, PUBREC, PUBREL and PUBCOMP (MQTT 5 sections 3.4 to 3.7), which
//! share one layout, and the reason-string-and-user-properties block that
//! SUBACK and UNSUBACK reuse.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::primitives::Reader;
use crate::properties::{self as props, Value};
use crate::reason;
use crate::types::{AckProperties, Protocol, PubAck, ReasonCode};

pub(super) fn decode(
    packet: &'static str,
    mut r: Reader,
    protocol: Protocol,
) -> Result<PubAck, DecodeError> {
    let packet_id = super::packet_id(&mut r, packet)?;
    let mut ack = PubAck {
        packet_id,
        reason_code: ReasonCode::SUCCESS,
        properties: AckProperties::default(),
    };
    // MQTT 5 lets the sender stop after the packet identifier (success, no
    // properties) or after the reason code (no properties).
    if protocol == Protocol::V5 && !r.is_empty() {
        ack.reason_code = reason::check(packet, r.u8("reason code")?)?;
        if !r.is_empty() {
            ack.properties = decode_properties(&mut r, packet)?;
        }
    }
    r.finish(packet)?;
    Ok(ack)
}

pub(super) fn decode_properties(
    r: &mut Reader,
    packet: &'static str,
) -> Result<AckProperties, DecodeError> {
    let mut p = AckProperties::default();
    props::read(r, packet, |id, v| match (id, v) {
        (props::REASON_STRING, Value::Str(v)) => props::once(&mut p.reason_string, v, id),
        (props::USER_PROPERTY, Value::Pair(k, v)) => {
            p.user_properties.push((k, v));
            Ok(())
        }
        (id, _) => Err(props::invalid(packet, id)),
    })?;
    Ok(p)
}

pub(super) fn properties_len(p: &AckProperties) -> usize {
    props::len_bytes(p.reason_string.as_ref()) + props::len_user(&p.user_properties)
}

/// Writes the property block (length included).
pub(super) fn put_properties(out: &mut BytesMut, p: &AckProperties) -> Result<(), EncodeError> {
    props::put_len(out, properties_len(p));
    props::put_bytes(out, props::REASON_STRING, p.reason_string.as_ref())?;
    props::put_user(out, &p.user_properties)
}

pub(super) fn body_len(a: &PubAck, protocol: Protocol) -> usize {
    if protocol == Protocol::V311 {
        return 2;
    }
    match properties_len(&a.properties) {
        0 if a.reason_code == ReasonCode::SUCCESS => 2,
        0 => 3,
        n => 3 + props::block_len(n),
    }
}

pub(super) fn encode_body(
    a: &PubAck,
    protocol: Protocol,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.put_u16(a.packet_id);
    if protocol == Protocol::V311 {
        return Ok(());
    }
    let has_props = properties_len(&a.properties) > 0;
    if has_props || a.reason_code != ReasonCode::SUCCESS {
        out.put_u8(a.reason_code.0);
    }
    if has_props {
        put_properties(out, &a.properties)?;
    }
    Ok(())
}
