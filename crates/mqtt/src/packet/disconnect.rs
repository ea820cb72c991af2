//! DISCONNECT (MQTT 5 section 3.14): empty under 3.1.1; under MQTT 5 the
//! reason code and properties may be left out when there is nothing to say.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::primitives::Reader;
use crate::properties::{self as props, Value};
use crate::reason;
use crate::types::{Disconnect, DisconnectProperties, Protocol, ReasonCode};

const PACKET: &str = "DISCONNECT";

pub(super) fn decode(mut r: Reader, protocol: Protocol) -> Result<Disconnect, DecodeError> {
    let mut d = Disconnect::default();
    if protocol == Protocol::V5 && !r.is_empty() {
        d.reason_code = reason::check(PACKET, r.u8("reason code")?)?;
        if !r.is_empty() {
            d.properties = decode_properties(&mut r)?;
        }
    }
    r.finish(PACKET)?;
    Ok(d)
}

fn decode_properties(r: &mut Reader) -> Result<DisconnectProperties, DecodeError> {
    let mut p = DisconnectProperties::default();
    props::read(r, PACKET, |id, v| match (id, v) {
        (props::SESSION_EXPIRY_INTERVAL, Value::U32(v)) => {
            props::once(&mut p.session_expiry_interval, v, id)
        }
        (props::REASON_STRING, Value::Str(v)) => props::once(&mut p.reason_string, v, id),
        (props::USER_PROPERTY, Value::Pair(k, v)) => {
            p.user_properties.push((k, v));
            Ok(())
        }
        (props::SERVER_REFERENCE, Value::Str(v)) => props::once(&mut p.server_reference, v, id),
        (id, _) => Err(props::invalid(PACKET, id)),
    })?;
    Ok(p)
}

fn properties_len(p: &DisconnectProperties) -> usize {
    props::len_u32(p.session_expiry_interval)
        + props::len_bytes(p.reason_string.as_ref())
        + props::len_user(&p.user_properties)
        + props::len_bytes(p.server_reference.as_ref())
}

pub(super) fn body_len(d: &Disconnect, protocol: Protocol) -> usize {
    if protocol == Protocol::V311 {
        return 0;
    }
    match properties_len(&d.properties) {
        0 if d.reason_code == ReasonCode::NORMAL_DISCONNECTION => 0,
        0 => 1,
        n => 1 + props::block_len(n),
    }
}

pub(super) fn encode_body(
    d: &Disconnect,
    protocol: Protocol,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    if protocol == Protocol::V311 {
        return Ok(());
    }
    let p = &d.properties;
    let len = properties_len(p);
    if len > 0 || d.reason_code != ReasonCode::NORMAL_DISCONNECTION {
        out.put_u8(d.reason_code.0);
    }
    if len > 0 {
        props::put_len(out, len);
        props::put_u32(
            out,
            props::SESSION_EXPIRY_INTERVAL,
            p.session_expiry_interval,
        );
        props::put_bytes(out, props::REASON_STRING, p.reason_string.as_ref())?;
        props::put_user(out, &p.user_properties)?;
        props::put_bytes(out, props::SERVER_REFERENCE, p.server_reference.as_ref())?;
    }
    Ok(())
}
