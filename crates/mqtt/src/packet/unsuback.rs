//! UNSUBACK (MQTT 5 section 3.11): reason codes and properties exist only
//! in MQTT 5; the 3.1.1 packet is just the packet identifier.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError, ProtocolViolation};
use crate::primitives::Reader;
use crate::properties as props;
use crate::reason;
use crate::types::{AckProperties, Protocol, UnsubAck};

const PACKET: &str = "UNSUBACK";

pub(super) fn decode(mut r: Reader, protocol: Protocol) -> Result<UnsubAck, DecodeError> {
    let packet_id = super::packet_id(&mut r, PACKET)?;
    if protocol == Protocol::V311 {
        r.finish(PACKET)?;
        return Ok(UnsubAck {
            packet_id,
            reason_codes: Vec::new(),
            properties: AckProperties::default(),
        });
    }
    let properties = super::ack::decode_properties(&mut r, PACKET)?;
    let codes = r.rest();
    if codes.is_empty() {
        return Err(ProtocolViolation::NoReasonCodes { packet: PACKET }.into());
    }
    let reason_codes = codes
        .iter()
        .map(|&c| reason::check(PACKET, c))
        .collect::<Result<_, _>>()?;
    Ok(UnsubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

pub(super) fn body_len(u: &UnsubAck, protocol: Protocol) -> usize {
    match protocol {
        Protocol::V311 => 2,
        Protocol::V5 => {
            2 + props::block_len(super::ack::properties_len(&u.properties)) + u.reason_codes.len()
        }
    }
}

pub(super) fn encode_body(
    u: &UnsubAck,
    protocol: Protocol,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.put_u16(u.packet_id);
    if protocol == Protocol::V5 {
        super::ack::put_properties(out, &u.properties)?;
        for c in &u.reason_codes {
            out.put_u8(c.0);
        }
    }
    Ok(())
}
