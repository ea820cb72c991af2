//! AUTH (MQTT 5 section 3.15), for enhanced authentication exchanges. It
//! does not exist in 3.1.1; the dispatcher refuses it there.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::primitives::Reader;
use crate::properties::{self as props, Value};
use crate::reason;
use crate::types::{Auth, AuthProperties, ReasonCode};

const PACKET: &str = "AUTH";

pub(super) fn decode(mut r: Reader) -> Result<Auth, DecodeError> {
    let mut a = Auth::default();
    if !r.is_empty() {
        a.reason_code = reason::check(PACKET, r.u8("reason code")?)?;
        if !r.is_empty() {
            a.properties = decode_properties(&mut r)?;
        }
    }
    r.finish(PACKET)?;
    Ok(a)
}

fn decode_properties(r: &mut Reader) -> Result<AuthProperties, DecodeError> {
    let mut p = AuthProperties::default();
    props::read(r, PACKET, |id, v| match (id, v) {
        (props::AUTHENTICATION_METHOD, Value::Str(v)) => {
            props::once(&mut p.authentication_method, v, id)
        }
        (props::AUTHENTICATION_DATA, Value::Bin(v)) => {
            props::once(&mut p.authentication_data, v, id)
        }
        (props::REASON_STRING, Value::Str(v)) => props::once(&mut p.reason_string, v, id),
        (props::USER_PROPERTY, Value::Pair(k, v)) => {
            p.user_properties.push((k, v));
            Ok(())
        }
        (id, _) => Err(props::invalid(PACKET, id)),
    })?;
    Ok(p)
}

fn properties_len(p: &AuthProperties) -> usize {
    props::len_bytes(p.authentication_method.as_ref())
        + props::len_bytes(p.authentication_data.as_ref())
        + props::len_bytes(p.reason_string.as_ref())
        + props::len_user(&p.user_properties)
}

pub(super) fn body_len(a: &Auth) -> usize {
    match properties_len(&a.properties) {
        0 if a.reason_code == ReasonCode::SUCCESS => 0,
        0 => 1,
        n => 1 + props::block_len(n),
    }
}

pub(super) fn encode_body(a: &Auth, out: &mut BytesMut) -> Result<(), EncodeError> {
    let p = &a.properties;
    let len = properties_len(p);
    if len > 0 || a.reason_code != ReasonCode::SUCCESS {
        out.put_u8(a.reason_code.0);
    }
    if len > 0 {
        props::put_len(out, len);
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
        props::put_bytes(out, props::REASON_STRING, p.reason_string.as_ref())?;
        props::put_user(out, &p.user_properties)?;
    }
    Ok(())
}
