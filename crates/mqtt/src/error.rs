//! Errors of the codec. Decode errors are grouped the way MQTT 5 groups
//! them (malformed packet, protocol error, ...) so the broker can pick the
//! DISCONNECT or CONNACK reason code with [`DecodeError::reason_code`].

use crate::topic::TopicError;
use crate::types::{Protocol, ReasonCode};

/// Why a byte sequence is not an acceptable MQTT packet. After any of these
/// the connection must be closed; the state of the input buffer is then
/// unspecified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes cannot be parsed as the packet they claim to be.
    #[error("malformed packet: {0}")]
    Malformed(#[from] Malformed),
    /// The packet parses but breaks a rule of the protocol.
    #[error("protocol error: {0}")]
    ProtocolError(#[from] ProtocolViolation),
    /// The whole packet (fixed header included) is larger than allowed.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge { size: u64, max: u32 },
    /// A CONNECT for a protocol this codec does not speak (for instance
    /// MQTT 3.1, "MQIsdp" level 3). `level` tells the broker which CONNACK
    /// format to answer with, see [`DecodeError::connack_protocol`].
    #[error("unsupported protocol {name:?} level {level}")]
    UnsupportedProtocol { name: String, level: u8 },
    /// A topic name (PUBLISH topic, will topic) that is well formed as a
    /// string but not as a topic name, e.g. one containing a wildcard.
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
}

impl DecodeError {
    /// The MQTT 5 reason code to report this error with (CONNACK before the
    /// session exists, DISCONNECT after).
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::Malformed(_) => ReasonCode::MALFORMED_PACKET,
            DecodeError::ProtocolError(ProtocolViolation::TopicAliasZero) => {
                ReasonCode::TOPIC_ALIAS_INVALID
            }
            DecodeError::ProtocolError(_) => ReasonCode::PROTOCOL_ERROR,
            DecodeError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocol { .. } => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            DecodeError::InvalidTopicName(_) => ReasonCode::TOPIC_NAME_INVALID,
        }
    }

    /// For [`DecodeError::UnsupportedProtocol`]: the protocol whose CONNACK
    /// layout the client will understand (MQTT 5 for level 5, otherwise the
    /// 3.x layout, where return code 1 means "unacceptable protocol version").
    pub fn connack_protocol(&self) -> Option<Protocol> {
        match self {
            DecodeError::UnsupportedProtocol { level, .. } if *level >= 5 => Some(Protocol::V5),
            DecodeError::UnsupportedProtocol { .. } => Some(Protocol::V311),
            _ => None,
        }
    }
}

/// A packet that cannot be parsed (MQTT 5 reason code 0x81).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("reserved control packet type {0}")]
    ReservedPacketType(u8),
    #[error("invalid fixed header flags {flags:#06b} for {packet}")]
    InvalidFlags { packet: &'static str, flags: u8 },
    #[error("{what}: variable byte integer longer than 4 bytes or not minimally encoded")]
    InvalidVarInt { what: &'static str },
    #[error("packet ends inside {what}")]
    Truncated { what: &'static str },
    #[error("{count} unexpected bytes at the end of {packet}")]
    TrailingBytes { packet: &'static str, count: usize },
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    #[error("{what} contains U+0000")]
    NullCharacter { what: &'static str },
    #[error("QoS 3 in {what}")]
    InvalidQoS { what: &'static str },
    #[error("DUP flag set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    #[error("reserved flag set in CONNECT flags")]
    ConnectReservedFlag,
    #[error("will QoS or will retain set without the will flag")]
    WillFlagsWithoutWill,
    #[error("password flag set without the user name flag")]
    PasswordWithoutUsername,
    #[error("reserved bits set in {what}")]
    ReservedBits { what: &'static str },
    #[error("property identifier {id:#04x} is not valid in {packet}")]
    InvalidPropertyId { packet: &'static str, id: u8 },
}

/// A packet that parses but breaks a protocol rule (MQTT 5 reason code
/// 0x82, except where noted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolViolation {
    #[error("the first packet must be CONNECT, got {got}")]
    ExpectedConnect { got: &'static str },
    #[error("packet identifier 0 in {packet}")]
    PacketIdZero { packet: &'static str },
    #[error("{packet} without any topic filter")]
    NoTopicFilters { packet: &'static str },
    #[error("{packet} without any reason code")]
    NoReasonCodes { packet: &'static str },
    #[error("QoS 3 in subscription options")]
    InvalidSubscriptionQoS,
    #[error("retain handling 3 in subscription options")]
    InvalidRetainHandling,
    #[error("no local set on a shared subscription")]
    NoLocalOnSharedSubscription,
    #[error("property {name} appears more than once")]
    DuplicateProperty { name: &'static str },
    #[error("property {name} has the invalid value {value}")]
    InvalidPropertyValue { name: &'static str, value: u32 },
    /// Reported with reason code 0x94 (topic alias invalid).
    #[error("topic alias 0")]
    TopicAliasZero,
    #[error("empty topic name without a topic alias")]
    EmptyTopicWithoutAlias,
    #[error("authentication data without an authentication method")]
    AuthDataWithoutMethod,
    #[error("reason code {code:#04x} is not valid in {packet}")]
    InvalidReasonCode { packet: &'static str, code: u8 },
    #[error("CONNACK with session present and a non-zero reason code")]
    SessionPresentWithError,
    #[error("invalid response topic: {0}")]
    InvalidResponseTopic(TopicError),
}

/// Why a packet cannot be encoded. `encode` leaves its output buffer as it
/// found it when it fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("AUTH does not exist in MQTT 3.1.1")]
    AuthInV311,
    #[error("{what} is {len} bytes, more than the 65535 a length prefix allows")]
    FieldTooLong { what: &'static str, len: usize },
    #[error("{what} {value} does not fit a variable byte integer")]
    VarIntTooLarge { what: &'static str, value: u64 },
    #[error("remaining length {0} exceeds the MQTT limit of 268435455 bytes")]
    PacketTooLarge(usize),
    #[error(
        "PUBLISH must carry a packet identifier exactly when QoS > 0 (QoS {qos:?}, identifier {packet_id:?})"
    )]
    PublishPacketId {
        qos: crate::types::QoS,
        packet_id: Option<u16>,
    },
}
