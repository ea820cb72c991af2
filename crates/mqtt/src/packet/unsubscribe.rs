//! UNSUBSCRIBE (MQTT 5 section 3.10).

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError, ProtocolViolation};
use crate::primitives::{Reader, prefixed_len, put_binary};
use crate::properties::{self as props, Value};
use crate::types::{Protocol, Unsubscribe, UserProperties};

const PACKET: &str = "UNSUBSCRIBE";

pub(super) fn decode(mut r: Reader, protocol: Protocol) -> Result<Unsubscribe, DecodeError> {
    let packet_id = super::packet_id(&mut r, PACKET)?;
    let mut user_properties = UserProperties::new();
    if protocol == Protocol::V5 {
        props::read(&mut r, PACKET, |id, v| match (id, v) {
            (props::USER_PROPERTY, Value::Pair(k, v)) => {
                user_properties.push((k, v));
                Ok(())
            }
            (id, _) => Err(props::invalid(PACKET, id)),
        })?;
    }
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string("topic filter")?);
    }
    if filters.is_empty() {
        return Err(ProtocolViolation::NoTopicFilters { packet: PACKET }.into());
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        user_properties,
    })
}

pub(super) fn body_len(u: &Unsubscribe, protocol: Protocol) -> usize {
    let mut len = 2;
    if protocol == Protocol::V5 {
        len += props::block_len(props::len_user(&u.user_properties));
    }
    len + u
        .filters
        .iter()
        .map(|f| prefixed_len(f.as_bytes()))
        .sum::<usize>()
}

pub(super) fn encode_body(
    u: &Unsubscribe,
    protocol: Protocol,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.put_u16(u.packet_id);
    if protocol == Protocol::V5 {
        props::put_len(out, props::len_user(&u.user_properties));
        props::put_user(out, &u.user_properties)?;
    }
    for f in &u.filters {
        put_binary(out, f.as_bytes(), "topic filter")?;
    }
    Ok(())
}
