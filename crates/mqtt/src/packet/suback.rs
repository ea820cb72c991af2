//! SUBACK (MQTT 5 section 3.9): one reason code per requested filter; under
//! 3.1.1 any failure is the single return code 0x80.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError, ProtocolViolation};
use crate::primitives::Reader;
use crate::properties as props;
use crate::reason;
use crate::types::{AckProperties, Protocol, SubAck};

const PACKET: &str = "SUBACK";

pub(super) fn decode(mut r: Reader, protocol: Protocol) -> Result<SubAck, DecodeError> {
    let packet_id = super::packet_id(&mut r, PACKET)?;
    let properties = match protocol {
        Protocol::V5 => super::ack::decode_properties(&mut r, PACKET)?,
        Protocol::V311 => AckProperties::default(),
    };
    let codes = r.rest();
    if codes.is_empty() {
        return Err(ProtocolViolation::NoReasonCodes { packet: PACKET }.into());
    }
    let reason_codes = codes
        .iter()
        .map(|&c| match protocol {
            Protocol::V5 => reason::check(PACKET, c),
            Protocol::V311 => reason::suback_from_v311(c),
        })
        .collect::<Result<_, _>>()?;
    Ok(SubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

pub(super) fn body_len(s: &SubAck, protocol: Protocol) -> usize {
    let mut len = 2 + s.reason_codes.len();
    if protocol == Protocol::V5 {
        len += props::block_len(super::ack::properties_len(&s.properties));
    }
    len
}

pub(super) fn encode_body(
    s: &SubAck,
    protocol: Protocol,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.put_u16(s.packet_id);
    match protocol {
        Protocol::V5 => {
            super::ack::put_properties(out, &s.properties)?;
            for c in &s.reason_codes {
                out.put_u8(c.0);
            }
        }
        Protocol::V311 => {
            for &c in &s.reason_codes {
                out.put_u8(reason::suback_v311_return_code(c));
            }
        }
    }
    Ok(())
}
