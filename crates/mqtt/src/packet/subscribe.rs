//! SUBSCRIBE (MQTT 5 section 3.8). Topic filter syntax is left to the
//! broker so it can refuse one filter in SUBACK instead of the whole packet.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
use crate::primitives::{Reader, prefixed_len, put_binary};
use crate::properties::{self as props, Value};
use crate::types::{
    Protocol, QoS, RetainHandling, Subscribe, SubscribeProperties, Subscription,
    SubscriptionOptions,
};

const PACKET: &str = "SUBSCRIBE";
const OPTIONS: &str = "subscription options";

const NO_LOCAL: u8 = 0x04;
const RETAIN_AS_PUBLISHED: u8 = 0x08;

pub(super) fn decode(mut r: Reader, protocol: Protocol) -> Result<Subscribe, DecodeError> {
    let packet_id = super::packet_id(&mut r, PACKET)?;
    let properties = match protocol {
        Protocol::V5 => decode_properties(&mut r)?,
        Protocol::V311 => SubscribeProperties::default(),
    };
    let mut subscriptions = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?;
        let options = decode_options(r.u8(OPTIONS)?, protocol)?;
        if options.no_local && filter.starts_with("$share/") {
            return Err(ProtocolViolation::NoLocalOnSharedSubscription.into());
        }
        subscriptions.push(Subscription { filter, options });
    }
    if subscriptions.is_empty() {
        return Err(ProtocolViolation::NoTopicFilters { packet: PACKET }.into());
    }
    Ok(Subscribe {
        packet_id,
        subscriptions,
        properties,
    })
}

fn decode_options(b: u8, protocol: Protocol) -> Result<SubscriptionOptions, DecodeError> {
    let qos = QoS::from_u8(b & 0x03);
    if protocol == Protocol::V311 {
        // 3.1.1 treats both reserved bits and QoS 3 as a malformed packet.
        if b & 0xfc != 0 {
            return Err(Malformed::ReservedBits { what: OPTIONS }.into());
        }
        let qos = qos.ok_or(Malformed::InvalidQoS { what: OPTIONS })?;
        return Ok(SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        });
    }
    if b & 0xc0 != 0 {
        return Err(Malformed::ReservedBits { what: OPTIONS }.into());
    }
    let qos = qos.ok_or(ProtocolViolation::InvalidSubscriptionQoS)?;
    let retain_handling = match (b >> 4) & 0x03 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(ProtocolViolation::InvalidRetainHandling.into()),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: b & NO_LOCAL != 0,
        retain_as_published: b & RETAIN_AS_PUBLISHED != 0,
        retain_handling,
    })
}

fn encode_options(o: &SubscriptionOptions, protocol: Protocol) -> u8 {
    let mut b = o.qos as u8;
    if protocol == Protocol::V5 {
        if o.no_local {
            b |= NO_LOCAL;
        }
        if o.retain_as_published {
            b |= RETAIN_AS_PUBLISHED;
        }
        b |= (o.retain_handling as u8) << 4;
    }
    b
}

fn decode_properties(r: &mut Reader) -> Result<SubscribeProperties, DecodeError> {
    let mut p = SubscribeProperties::default();
    props::read(r, PACKET, |id, v| match (id, v) {
        (props::SUBSCRIPTION_IDENTIFIER, Value::VarInt(v)) => {
            if v == 0 {
                return Err(props::bad_value(id, 0));
            }
            props::once(&mut p.subscription_identifier, v, id)
        }
        (props::USER_PROPERTY, Value::Pair(k, v)) => {
            p.user_properties.push((k, v));
            Ok(())
        }
        (id, _) => Err(props::invalid(PACKET, id)),
    })?;
    Ok(p)
}

fn properties_len(p: &SubscribeProperties) -> usize {
    p.subscription_identifier.map_or(0, props::len_varint) + props::len_user(&p.user_properties)
}

pub(super) fn body_len(s: &Subscribe, protocol: Protocol) -> usize {
    let mut len = 2;
    if protocol == Protocol::V5 {
        len += props::block_len(properties_len(&s.properties));
    }
    len + s
        .subscriptions
        .iter()
        .map(|sub| prefixed_len(sub.filter.as_bytes()) + 1)
        .sum::<usize>()
}

pub(super) fn encode_body(
    s: &Subscribe,
    protocol: Protocol,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.put_u16(s.packet_id);
    if protocol == Protocol::V5 {
        let p = &s.properties;
        props::put_len(out, properties_len(p));
        if let Some(id) = p.subscription_identifier {
            props::put_varint_prop(out, props::SUBSCRIPTION_IDENTIFIER, id)?;
        }
        props::put_user(out, &p.user_properties)?;
    }
    for sub in &s.subscriptions {
        put_binary(out, sub.filter.as_bytes(), "topic filter")?;
        out.put_u8(encode_options(&sub.options, protocol));
    }
    Ok(())
}
