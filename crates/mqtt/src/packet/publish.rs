//! PUBLISH (MQTT 5 section 3.3). The hot path of the broker: the payload
//! stays a slice of the received frame, and encoding writes straight into
//! the output buffer.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError, ProtocolViolation};
use crate::primitives::{Reader, prefixed_len, put_binary};
use crate::properties::{self as props, Value};
use crate::topic::{TopicError, validate_topic_name};
use crate::types::{Protocol, Publish, PublishProperties, QoS};

const PACKET: &str = "PUBLISH";

/// `dup`, `qos` and `retain` come from the fixed header, already checked.
pub(super) fn decode(
    dup: bool,
    qos: QoS,
    retain: bool,
    mut r: Reader,
    protocol: Protocol,
) -> Result<Publish, DecodeError> {
    let topic = r.string("topic name")?;
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(super::packet_id(&mut r, PACKET)?)
    };
    let properties = match protocol {
        Protocol::V5 => decode_properties(&mut r)?,
        Protocol::V311 => PublishProperties::default(),
    };
    if topic.is_empty() {
        match protocol {
            Protocol::V5 if properties.topic_alias.is_some() => {}
            Protocol::V5 => return Err(ProtocolViolation::EmptyTopicWithoutAlias.into()),
            Protocol::V311 => return Err(DecodeError::InvalidTopicName(TopicError::Empty)),
        }
    } else {
        validate_topic_name(&topic).map_err(DecodeError::InvalidTopicName)?;
    }
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        payload: r.rest(),
        properties,
    })
}

fn decode_properties(r: &mut Reader) -> Result<PublishProperties, DecodeError> {
    let mut p = PublishProperties::default();
    props::read(r, PACKET, |id, v| match (id, v) {
        (props::PAYLOAD_FORMAT_INDICATOR, Value::Byte(v)) => {
            props::flag(v, id)?;
            props::once(&mut p.payload_format_indicator, v, id)
        }
        (props::MESSAGE_EXPIRY_INTERVAL, Value::U32(v)) => {
            props::once(&mut p.message_expiry_interval, v, id)
        }
        (props::TOPIC_ALIAS, Value::U16(v)) => {
            if v == 0 {
                return Err(ProtocolViolation::TopicAliasZero.into());
            }
            props::once(&mut p.topic_alias, v, id)
        }
        (props::RESPONSE_TOPIC, Value::Str(v)) => {
            validate_topic_name(&v).map_err(ProtocolViolation::InvalidResponseTopic)?;
            props::once(&mut p.response_topic, v, id)
        }
        (props::CORRELATION_DATA, Value::Bin(v)) => props::once(&mut p.correlation_data, v, id),
        (props::USER_PROPERTY, Value::Pair(k, v)) => {
            p.user_properties.push((k, v));
            Ok(())
        }
        // Several are legal in a PUBLISH from the server; a client must
        // send none, which only the broker, knowing the direction, checks.
        (props::SUBSCRIPTION_IDENTIFIER, Value::VarInt(v)) => {
            if v == 0 {
                return Err(props::bad_value(id, 0));
            }
            p.subscription_identifiers.push(v);
            Ok(())
        }
        (props::CONTENT_TYPE, Value::Str(v)) => props::once(&mut p.content_type, v, id),
        (id, _) => Err(props::invalid(PACKET, id)),
    })?;
    Ok(p)
}

fn properties_len(p: &PublishProperties) -> usize {
    props::len_u8(p.payload_format_indicator)
        + props::len_u32(p.message_expiry_interval)
        + props::len_u16(p.topic_alias)
        + props::len_bytes(p.response_topic.as_ref())
        + props::len_bytes(p.correlation_data.as_ref())
        + props::len_user(&p.user_properties)
        + p.subscription_identifiers
            .iter()
            .map(|&s| props::len_varint(s))
            .sum::<usize>()
        + props::len_bytes(p.content_type.as_ref())
}

pub(super) fn header_flags(p: &Publish) -> u8 {
    (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
}

pub(super) fn body_len(p: &Publish, protocol: Protocol) -> usize {
    let mut len = prefixed_len(p.topic.as_bytes()) + p.payload.len();
    if p.qos != QoS::AtMostOnce {
        len += 2;
    }
    if protocol == Protocol::V5 {
        len += props::block_len(properties_len(&p.properties));
    }
    len
}

pub(super) fn encode_body(
    p: &Publish,
    protocol: Protocol,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    put_binary(out, p.topic.as_bytes(), "topic name")?;
    match (p.qos, p.packet_id) {
        (QoS::AtMostOnce, None) => {}
        (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(id)) => out.put_u16(id),
        (qos, packet_id) => return Err(EncodeError::PublishPacketId { qos, packet_id }),
    }
    if protocol == Protocol::V5 {
        let pr = &p.properties;
        props::put_len(out, properties_len(pr));
        props::put_u8(
            out,
            props::PAYLOAD_FORMAT_INDICATOR,
            pr.payload_format_indicator,
        );
        props::put_u32(
            out,
            props::MESSAGE_EXPIRY_INTERVAL,
            pr.message_expiry_interval,
        );
        props::put_u16(out, props::TOPIC_ALIAS, pr.topic_alias);
        props::put_bytes(out, props::RESPONSE_TOPIC, pr.response_topic.as_ref())?;
        props::put_bytes(out, props::CORRELATION_DATA, pr.correlation_data.as_ref())?;
        props::put_user(out, &pr.user_properties)?;
        for &s in &pr.subscription_identifiers {
            props::put_varint_prop(out, props::SUBSCRIPTION_IDENTIFIER, s)?;
        }
        props::put_bytes(out, props::CONTENT_TYPE, pr.content_type.as_ref())?;
    }
    out.put_slice(&p.payload);
    Ok(())
}
