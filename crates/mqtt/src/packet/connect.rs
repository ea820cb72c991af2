//! CONNECT (MQTT 5 section 3.1, MQTT 3.1.1 section 3.1): the one packet
//! whose own protocol level decides how the rest of it is read.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
use crate::primitives::{Reader, prefixed_len, put_binary};
use crate::properties::{self as props, Value};
use crate::topic::validate_topic_name;
use crate::types::{Connect, ConnectProperties, Protocol, QoS, Will, WillProperties};

const PACKET: &str = "CONNECT";
const PROTOCOL_NAME: &[u8] = b"MQTT";

const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

pub(super) fn decode(mut r: Reader) -> Result<Connect, DecodeError> {
    let name = r.binary("protocol name")?;
    let level = r.u8("protocol level")?;
    let protocol = match (&name[..], level) {
        (PROTOCOL_NAME, 4) => Protocol::V311,
        (PROTOCOL_NAME, 5) => Protocol::V5,
        _ => {
            return Err(DecodeError::UnsupportedProtocol {
                name: String::from_utf8_lossy(&name).into_owned(),
                level,
            });
        }
    };
    let flags = r.u8("connect flags")?;
    if flags & RESERVED != 0 {
        return Err(Malformed::ConnectReservedFlag.into());
    }
    let will_flag = flags & WILL != 0;
    let will_retain = flags & WILL_RETAIN != 0;
    let will_qos =
        QoS::from_u8((flags >> 3) & 0x03).ok_or(Malformed::InvalidQoS { what: "will QoS" })?;
    if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
        return Err(Malformed::WillFlagsWithoutWill.into());
    }
    let has_username = flags & USERNAME != 0;
    let has_password = flags & PASSWORD != 0;
    if protocol == Protocol::V311 && has_password && !has_username {
        return Err(Malformed::PasswordWithoutUsername.into());
    }
    let keep_alive = r.u16("keep alive")?;
    let properties = match protocol {
        Protocol::V5 => decode_properties(&mut r)?,
        Protocol::V311 => ConnectProperties::default(),
    };
    let client_id = r.string("client identifier")?;
    let will = if will_flag {
        let properties = match protocol {
            Protocol::V5 => decode_will_properties(&mut r)?,
            Protocol::V311 => WillProperties::default(),
        };
        let topic = r.string("will topic")?;
        validate_topic_name(&topic).map_err(DecodeError::InvalidTopicName)?;
        let payload = r.binary("will payload")?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.string("user name")?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary("password")?)
    } else {
        None
    };
    r.finish(PACKET)?;
    Ok(Connect {
        protocol,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

fn decode_properties(r: &mut Reader) -> Result<ConnectProperties, DecodeError> {
    let mut p = ConnectProperties::default();
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
        (props::MAXIMUM_PACKET_SIZE, Value::U32(v)) => {
            if v == 0 {
                return Err(props::bad_value(id, 0));
            }
            props::once(&mut p.maximum_packet_size, v, id)
        }
        (props::TOPIC_ALIAS_MAXIMUM, Value::U16(v)) => {
            props::once(&mut p.topic_alias_maximum, v, id)
        }
        (props::REQUEST_RESPONSE_INFORMATION, Value::Byte(v)) => {
            props::once(&mut p.request_response_information, props::flag(v, id)?, id)
        }
        (props::REQUEST_PROBLEM_INFORMATION, Value::Byte(v)) => {
            props::once(&mut p.request_problem_information, props::flag(v, id)?, id)
        }
        (props::USER_PROPERTY, Value::Pair(k, v)) => {
            p.user_properties.push((k, v));
            Ok(())
        }
        (props::AUTHENTICATION_METHOD, Value::Str(v)) => {
            props::once(&mut p.authentication_method, v, id)
        }
        (props::AUTHENTICATION_DATA, Value::Bin(v)) => {
            props::once(&mut p.authentication_data, v, id)
        }
        (id, _) => Err(props::invalid(PACKET, id)),
    })?;
    if p.authentication_data.is_some() && p.authentication_method.is_none() {
        return Err(ProtocolViolation::AuthDataWithoutMethod.into());
    }
    Ok(p)
}

fn decode_will_properties(r: &mut Reader) -> Result<WillProperties, DecodeError> {
    let mut p = WillProperties::default();
    props::read(r, "CONNECT will", |id, v| match (id, v) {
        (props::WILL_DELAY_INTERVAL, Value::U32(v)) => {
            props::once(&mut p.will_delay_interval, v, id)
        }
        (props::PAYLOAD_FORMAT_INDICATOR, Value::Byte(v)) => {
            props::flag(v, id)?;
            props::once(&mut p.payload_format_indicator, v, id)
        }
        (props::MESSAGE_EXPIRY_INTERVAL, Value::U32(v)) => {
            props::once(&mut p.message_expiry_interval, v, id)
        }
        (props::CONTENT_TYPE, Value::Str(v)) => props::once(&mut p.content_type, v, id),
        (props::RESPONSE_TOPIC, Value::Str(v)) => {
            validate_topic_name(&v).map_err(ProtocolViolation::InvalidResponseTopic)?;
            props::once(&mut p.response_topic, v, id)
        }
        (props::CORRELATION_DATA, Value::Bin(v)) => props::once(&mut p.correlation_data, v, id),
        (props::USER_PROPERTY, Value::Pair(k, v)) => {
            p.user_properties.push((k, v));
            Ok(())
        }
        (id, _) => Err(props::invalid("CONNECT will", id)),
    })?;
    Ok(p)
}

fn properties_len(p: &ConnectProperties) -> usize {
    props::len_u32(p.session_expiry_interval)
        + props::len_u16(p.receive_maximum)
        + props::len_u32(p.maximum_packet_size)
        + props::len_u16(p.topic_alias_maximum)
        + props::len_u8(p.request_response_information)
        + props::len_u8(p.request_problem_information)
        + props::len_user(&p.user_properties)
        + props::len_bytes(p.authentication_method.as_ref())
        + props::len_bytes(p.authentication_data.as_ref())
}

fn will_properties_len(p: &WillProperties) -> usize {
    props::len_u32(p.will_delay_interval)
        + props::len_u8(p.payload_format_indicator)
        + props::len_u32(p.message_expiry_interval)
        + props::len_bytes(p.content_type.as_ref())
        + props::len_bytes(p.response_topic.as_ref())
        + props::len_bytes(p.correlation_data.as_ref())
        + props::len_user(&p.user_properties)
}

/// Remaining length. The CONNECT's own `protocol` decides the layout.
pub(super) fn body_len(c: &Connect) -> usize {
    let v5 = c.protocol == Protocol::V5;
    let mut len = prefixed_len(PROTOCOL_NAME) + 1 + 1 + 2 + prefixed_len(c.client_id.as_bytes());
    if v5 {
        len += props::block_len(properties_len(&c.properties));
    }
    if let Some(w) = &c.will {
        if v5 {
            len += props::block_len(will_properties_len(&w.properties));
        }
        len += prefixed_len(w.topic.as_bytes()) + prefixed_len(&w.payload);
    }
    len += c
        .username
        .as_ref()
        .map_or(0, |u| prefixed_len(u.as_bytes()));
    len += c.password.as_ref().map_or(0, |p| prefixed_len(p));
    len
}

pub(super) fn encode_body(c: &Connect, out: &mut BytesMut) -> Result<(), EncodeError> {
    let v5 = c.protocol == Protocol::V5;
    put_binary(out, PROTOCOL_NAME, "protocol name")?;
    out.put_u8(c.protocol.level());
    let mut flags = 0u8;
    if c.clean_start {
        flags |= CLEAN_START;
    }
    if let Some(w) = &c.will {
        flags |= WILL | ((w.qos as u8) << 3);
        if w.retain {
            flags |= WILL_RETAIN;
        }
    }
    if c.username.is_some() {
        flags |= USERNAME;
    }
    if c.password.is_some() {
        flags |= PASSWORD;
    }
    out.put_u8(flags);
    out.put_u16(c.keep_alive);
    if v5 {
        let p = &c.properties;
        props::put_len(out, properties_len(p));
        props::put_u32(
            out,
            props::SESSION_EXPIRY_INTERVAL,
            p.session_expiry_interval,
        );
        props::put_u16(out, props::RECEIVE_MAXIMUM, p.receive_maximum);
        props::put_u32(out, props::MAXIMUM_PACKET_SIZE, p.maximum_packet_size);
        props::put_u16(out, props::TOPIC_ALIAS_MAXIMUM, p.topic_alias_maximum);
        props::put_bool(
            out,
            props::REQUEST_RESPONSE_INFORMATION,
            p.request_response_information,
        );
        props::put_bool(
            out,
            props::REQUEST_PROBLEM_INFORMATION,
            p.request_problem_information,
        );
        props::put_user(out, &p.user_properties)?;
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
    }
    put_binary(out, c.client_id.as_bytes(), "client identifier")?;
    if let Some(w) = &c.will {
        if v5 {
            let p = &w.properties;
            props::put_len(out, will_properties_len(p));
            props::put_u32(out, props::WILL_DELAY_INTERVAL, p.will_delay_interval);
            props::put_u8(
                out,
                props::PAYLOAD_FORMAT_INDICATOR,
                p.payload_format_indicator,
            );
            props::put_u32(
                out,
                props::MESSAGE_EXPIRY_INTERVAL,
                p.message_expiry_interval,
            );
            props::put_bytes(out, props::CONTENT_TYPE, p.content_type.as_ref())?;
            props::put_bytes(out, props::RESPONSE_TOPIC, p.response_topic.as_ref())?;
            props::put_bytes(out, props::CORRELATION_DATA, p.correlation_data.as_ref())?;
            props::put_user(out, &p.user_properties)?;
        }
        put_binary(out, w.topic.as_bytes(), "will topic")?;
        put_binary(out, &w.payload, "will payload")?;
    }
    if let Some(u) = &c.username {
        put_binary(out, u.as_bytes(), "user name")?;
    }
    if let Some(p) = &c.password {
        put_binary(out, p, "password")?;
    }
    Ok(())
}
