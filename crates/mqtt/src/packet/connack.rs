//! CONNACK (MQTT 5 section 3.2): under 3.1.1 the reason code travels as one
//! of the six return codes that version defines.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
use crate::primitives::Reader;
use crate::properties::{self as props, Value};
use crate::reason;
use crate::types::{ConnAck, ConnAckProperties, Protocol};

const PACKET: &str = "CONNACK";

pub(super) fn decode(mut r: Reader, protocol: Protocol) -> Result<ConnAck, DecodeError> {
    let flags = r.u8("connect acknowledge flags")?;
    if flags & 0xfe != 0 {
        return Err(Malformed::ReservedBits {
            what: "CONNACK flags",
        }
        .into());
    }
    let session_present = flags & 0x01 != 0;
    let code = r.u8("reason code")?;
    let reason_code = match protocol {
        Protocol::V311 => reason::connack_from_v311(code)?,
        Protocol::V5 => reason::check(PACKET, code)?,
    };
    if session_present && reason_code.0 != 0 {
        return Err(ProtocolViolation::SessionPresentWithError.into());
    }
    let properties = match protocol {
        Protocol::V5 => decode_properties(&mut r)?,
        Protocol::V311 => ConnAckProperties::default(),
    };
    r.finish(PACKET)?;
    Ok(ConnAck {
        session_present,
        reason_code,
        properties,
    })
}

fn decode_properties(r: &mut Reader) -> Result<ConnAckProperties, DecodeError> {
    let mut p = ConnAckProperties::default();
    props::read(r, PACKET, |id, v| match (id, v) {
        (props::SESSION_EXPIRY_INTERVAL, Value::U32(v)) => {
            props::once(&mut p.session_expiry_interval, v, id)
        }
        (props::RECEIVE_MAXIMUM, Value::U16(v)) => {
            if v == 0 {
                return Err(props::bad_value(id, 0));
            }
            props::once(&mut p.receive_maximum, v, id)
        }
        (props::MAXIMUM_QOS, Value::Byte(v)) => {
            props::flag(v, id)?;
            props::once(&mut p.maximum_qos, v, id)
        }
        (props::RETAIN_AVAILABLE, Value::Byte(v)) => {
            props::once(&mut p.retain_available, props::flag(v, id)?, id)
        }
        (props::MAXIMUM_PACKET_SIZE, Value::U32(v)) => {
            if v == 0 {
                return Err(props::bad_value(id, 0));
            }
            props::once(&mut p.maximum_packet_size, v, id)
        }
        (props::ASSIGNED_CLIENT_IDENTIFIER, Value::Str(v)) => {
            props::once(&mut p.assigned_client_identifier, v, id)
        }
        (props::TOPIC_ALIAS_MAXIMUM, Value::U16(v)) => {
            props::once(&mut p.topic_alias_maximum, v, id)
        }
        (props::REASON_STRING, Value::Str(v)) => props::once(&mut p.reason_string, v, id),
        (props::USER_PROPERTY, Value::Pair(k, v)) => {
            p.user_properties.push((k, v));
            Ok(())
        }
        (props::WILDCARD_SUBSCRIPTION_AVAILABLE, Value::Byte(v)) => props::once(
            &mut p.wildcard_subscription_available,
            props::flag(v, id)?,
            id,
        ),
        (props::SUBSCRIPTION_IDENTIFIER_AVAILABLE, Value::Byte(v)) => props::once(
            &mut p.subscription_identifiers_available,
            props::flag(v, id)?,
            id,
        ),
        (props::SHARED_SUBSCRIPTION_AVAILABLE, Value::Byte(v)) => props::once(
            &mut p.shared_subscription_available,
            props::flag(v, id)?,
            id,
        ),
        (props::SERVER_KEEP_ALIVE, Value::U16(v)) => props::once(&mut p.server_keep_alive, v, id),
        (props::RESPONSE_INFORMATION, Value::Str(v)) => {
            props::once(&mut p.response_information, v, id)
        }
        (props::SERVER_REFERENCE, Value::Str(v)) => props::once(&mut p.server_reference, v, id),
        (props::AUTHENTICATION_METHOD, Value::Str(v)) => {
            props::once(&mut p.authentication_method, v, id)
        }
        (props::AUTHENTICATION_DATA, Value::Bin(v)) => {
            props::once(&mut p.authentication_data, v, id)
        }
        (id, _) => Err(props::invalid(PACKET, id)),
    })?;
    Ok(p)
}

fn properties_len(p: &ConnAckProperties) -> usize {
    props::len_u32(p.session_expiry_interval)
        + props::len_u16(p.receive_maximum)
        + props::len_u8(p.maximum_qos)
        + props::len_u8(p.retain_available)
        + props::len_u32(p.maximum_packet_size)
        + props::len_bytes(p.assigned_client_identifier.as_ref())
        + props::len_u16(p.topic_alias_maximum)
        + props::len_bytes(p.reason_string.as_ref())
        + props::len_user(&p.user_properties)
        + props::len_u8(p.wildcard_subscription_available)
        + props::len_u8(p.subscription_identifiers_available)
        + props::len_u8(p.shared_subscription_available)
        + props::len_u16(p.server_keep_alive)
        + props::len_bytes(p.response_information.as_ref())
        + props::len_bytes(p.server_reference.as_ref())
        + props::len_bytes(p.authentication_method.as_ref())
        + props::len_bytes(p.authentication_data.as_ref())
}

pub(super) fn body_len(c: &ConnAck, protocol: Protocol) -> usize {
    match protocol {
        Protocol::V311 => 2,
        Protocol::V5 => 2 + props::block_len(properties_len(&c.properties)),
    }
}

pub(super) fn encode_body(
    c: &ConnAck,
    protocol: Protocol,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.put_u8(u8::from(c.session_present));
    match protocol {
        Protocol::V311 => {
            out.put_u8(reason::connack_v311_return_code(c.reason_code));
            Ok(())
        }
        Protocol::V5 => {
            out.put_u8(c.reason_code.0);
            let p = &c.properties;
            props::put_len(out, properties_len(p));
            props::put_u32(
                out,
                props::SESSION_EXPIRY_INTERVAL,
                p.session_expiry_interval,
            );
            props::put_u16(out, props::RECEIVE_MAXIMUM, p.receive_maximum);
            props::put_u8(out, props::MAXIMUM_QOS, p.maximum_qos);
            props::put_bool(out, props::RETAIN_AVAILABLE, p.retain_available);
            props::put_u32(out, props::MAXIMUM_PACKET_SIZE, p.maximum_packet_size);
            props::put_bytes(
                out,
                props::ASSIGNED_CLIENT_IDENTIFIER,
                p.assigned_client_identifier.as_ref(),
            )?;
            props::put_u16(out, props::TOPIC_ALIAS_MAXIMUM, p.topic_alias_maximum);
            props::put_bytes(out, props::REASON_STRING, p.reason_string.as_ref())?;
            props::put_user(out, &p.user_properties)?;
            props::put_bool(
                out,
                props::WILDCARD_SUBSCRIPTION_AVAILABLE,
                p.wildcard_subscription_available,
            );
            props::put_bool(
                out,
                props::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                p.subscription_identifiers_available,
            );
            props::put_bool(
                out,
                props::SHARED_SUBSCRIPTION_AVAILABLE,
                p.shared_subscription_available,
            );
            props::put_u16(out, props::SERVER_KEEP_ALIVE, p.server_keep_alive);
            props::put_bytes(
                out,
                props::RESPONSE_INFORMATION,
                p.response_information.as_ref(),
            )?;
            props::put_bytes(out, props::SERVER_REFERENCE, p.server_reference.as_ref())?;
            props::put_bytes(
                out,
                props::AUTHENTICATION_METHOD,
                p.authentication_method.as_ref(),
            )?;
            props::put_bytes(
                out,
                props::AUTHENTICATION_DATA,
                p.authentication_data.as_ref(),
            )?;
            Ok(())
        }
    }
}
