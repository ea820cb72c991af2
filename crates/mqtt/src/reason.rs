//! Which reason codes each MQTT 5 packet may carry, and the mapping between
//! MQTT 5 reason codes and the MQTT 3.1.1 CONNACK and SUBACK return codes.

use crate::error::{DecodeError, ProtocolViolation};
use crate::types::ReasonCode;

const CONNACK: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL: &[u8] = &[0x00, 0x92];
const SUBACK: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH: &[u8] = &[0x00, 0x18, 0x19];

/// The MQTT 5 reason codes `packet` (a packet name as in
/// [`crate::Packet::name`]) may carry.
pub fn allowed(packet: &str) -> &'static [u8] {
    match packet {
        "CONNACK" => CONNACK,
        "PUBACK" | "PUBREC" => PUBACK,
        "PUBREL" | "PUBCOMP" => PUBREL,
        "SUBACK" => SUBACK,
        "UNSUBACK" => UNSUBACK,
        "DISCONNECT" => DISCONNECT,
        "AUTH" => AUTH,
        _ => &[],
    }
}

/// Accepts `code` if `packet` may carry it.
pub(crate) fn check(packet: &'static str, code: u8) -> Result<ReasonCode, DecodeError> {
    if allowed(packet).contains(&code) {
        Ok(ReasonCode(code))
    } else {
        Err(ProtocolViolation::InvalidReasonCode { packet, code }.into())
    }
}

/// The MQTT 3.1.1 CONNACK return code closest to an MQTT 5 reason code.
pub fn connack_v311_return_code(code: ReasonCode) -> u8 {
    match code.0 {
        0x00 => 0,
        0x84 => 1,
        0x85 => 2,
        0x86 => 4,
        // Server-side conditions become "server unavailable".
        0x80 | 0x81 | 0x82 | 0x83 | 0x88 | 0x89 | 0x8B | 0x95 | 0x97 | 0x9C | 0x9D | 0x9F => 3,
        // Anything about the client's rights or requests: "not authorized".
        _ => 5,
    }
}

/// The MQTT 5 reason code for an MQTT 3.1.1 CONNACK return code.
pub(crate) fn connack_from_v311(code: u8) -> Result<ReasonCode, DecodeError> {
    Ok(match code {
        0 => ReasonCode::SUCCESS,
        1 => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        2 => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
        3 => ReasonCode::SERVER_UNAVAILABLE,
        4 => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        5 => ReasonCode::NOT_AUTHORIZED,
        _ => {
            return Err(ProtocolViolation::InvalidReasonCode {
                packet: "CONNACK",
                code,
            }
            .into());
        }
    })
}

/// The MQTT 3.1.1 SUBACK return code: the granted QoS, or 0x80 for any
/// failure.
pub fn suback_v311_return_code(code: ReasonCode) -> u8 {
    match code.0 {
        c @ 0..=2 => c,
        _ => 0x80,
    }
}

/// Accepts an MQTT 3.1.1 SUBACK return code.
pub(crate) fn suback_from_v311(code: u8) -> Result<ReasonCode, DecodeError> {
    match code {
        0 | 1 | 2 | 0x80 => Ok(ReasonCode(code)),
        _ => Err(ProtocolViolation::InvalidReasonCode {
            packet: "SUBACK",
            code,
        }
        .into()),
    }
}
