//! The decoder's framing, string, CONNECT, PUBLISH and SUBSCRIBE rules, each
//! with the exact error and the MQTT 5 reason code the broker would report.

use bytes::BytesMut;
use civitas_mqtt::*;

mod common;

use common::wire::*;

#[test]
fn fixed_header() {
    check(&[0x00, 0x00], V5, Malformed::ReservedPacketType(0), 0x81);
    check(&[0xf0, 0x00], V311, Malformed::ReservedPacketType(15), 0x81);
    check(
        &[0xc0, 0x00],
        None,
        ProtocolViolation::ExpectedConnect { got: "PINGREQ" },
        0x82,
    );
    check(
        &[0x30, 0x00],
        None,
        ProtocolViolation::ExpectedConnect { got: "PUBLISH" },
        0x82,
    );
    check(
        &[0x60, 0x02, 0, 1],
        V5,
        Malformed::InvalidFlags {
            packet: "PUBREL",
            flags: 0,
        },
        0x81,
    );
    check(
        &[0x80, 0x02, 0, 1],
        V5,
        Malformed::InvalidFlags {
            packet: "SUBSCRIBE",
            flags: 0,
        },
        0x81,
    );
    check(
        &[0xa0, 0x02, 0, 1],
        V311,
        Malformed::InvalidFlags {
            packet: "UNSUBSCRIBE",
            flags: 0,
        },
        0x81,
    );
    check(
        &[0x42, 0x02, 0, 1],
        V5,
        Malformed::InvalidFlags {
            packet: "PUBACK",
            flags: 2,
        },
        0x81,
    );
    check(
        &[0xc1, 0x00],
        V5,
        Malformed::InvalidFlags {
            packet: "PINGREQ",
            flags: 1,
        },
        0x81,
    );
    check(
        &[0x11, 0x00],
        None,
        Malformed::InvalidFlags {
            packet: "CONNECT",
            flags: 1,
        },
        0x81,
    );
    check(
        &[0xe8, 0x00],
        V5,
        Malformed::InvalidFlags {
            packet: "DISCONNECT",
            flags: 8,
        },
        0x81,
    );
    check(
        &[0x36, 0x00],
        V5,
        Malformed::InvalidQoS { what: "PUBLISH" },
        0x81,
    );
    check(&[0x38, 0x00], V311, Malformed::DupOnQoS0, 0x81);
}

#[test]
fn header_errors_need_only_the_first_byte() {
    check(
        &[0xc1],
        V5,
        Malformed::InvalidFlags {
            packet: "PINGREQ",
            flags: 1,
        },
        0x81,
    );
    check(
        &[0x20],
        None,
        ProtocolViolation::ExpectedConnect { got: "CONNACK" },
        0x82,
    );
}

#[test]
fn remaining_length() {
    let what = "remaining length";
    check(
        &[0x30, 0xff, 0xff, 0xff, 0xff, 0x7f],
        V5,
        Malformed::InvalidVarInt { what },
        0x81,
    );
    check(
        &[0xc0, 0x80, 0x00],
        V5,
        Malformed::InvalidVarInt { what },
        0x81,
    );
    // Four continuation bytes are already too many.
    check(
        &[0x30, 0x80, 0x80, 0x80, 0x80],
        V5,
        Malformed::InvalidVarInt { what },
        0x81,
    );
}

#[test]
fn packet_too_large_as_soon_as_the_length_is_known() {
    let mut buf = BytesMut::from(&[0x30, 0xff, 0xff, 0x7f][..]);
    let err = decode(&mut buf, V5, 1000).unwrap_err();
    assert_eq!(
        err,
        DecodeError::PacketTooLarge {
            size: 1 + 3 + 2_097_151,
            max: 1000
        }
    );
    assert_eq!(err.reason_code(), ReasonCode::PACKET_TOO_LARGE);
    // The limit counts the fixed header.
    let mut buf = BytesMut::from(&[0xc0, 0x00][..]);
    assert_eq!(decode(&mut buf, V5, 2), Ok(Some(Packet::PingReq)));
    let mut buf = BytesMut::from(&[0xc0, 0x00][..]);
    assert_eq!(
        decode(&mut buf, V5, 1),
        Err(DecodeError::PacketTooLarge { size: 2, max: 1 })
    );
}

#[test]
fn strings() {
    let mut bad_utf8 = vec![0x00, 0x02, 0xc3, 0x28];
    check(
        &frame(0x30, &bad_utf8),
        V311,
        Malformed::InvalidUtf8 { what: "topic name" },
        0x81,
    );
    bad_utf8 = vec![0x00, 0x03, 0xed, 0xa0, 0x80]; // a surrogate
    check(
        &frame(0x30, &bad_utf8),
        V311,
        Malformed::InvalidUtf8 { what: "topic name" },
        0x81,
    );
    check(
        &frame(0x30, &s("a\0b")),
        V311,
        Malformed::NullCharacter { what: "topic name" },
        0x81,
    );
    check(
        &frame(0x30, &[0x00, 0x09, b'a']),
        V311,
        Malformed::Truncated { what: "topic name" },
        0x81,
    );
}

#[test]
fn publish_rules() {
    check(
        &frame(0x30, &s("a/+")),
        V311,
        DecodeError::InvalidTopicName(TopicError::WildcardInName),
        0x90,
    );
    check(
        &frame(0x30, &cat(&[&s("#"), &[0]])),
        V5,
        DecodeError::InvalidTopicName(TopicError::WildcardInName),
        0x90,
    );
    check(
        &frame(0x30, &s("")),
        V311,
        DecodeError::InvalidTopicName(TopicError::Empty),
        0x90,
    );
    check(
        &frame(0x30, &cat(&[&s(""), &[0]])),
        V5,
        ProtocolViolation::EmptyTopicWithoutAlias,
        0x82,
    );
    check(
        &frame(0x32, &cat(&[&s("t"), &[0, 0]])),
        V311,
        ProtocolViolation::PacketIdZero { packet: "PUBLISH" },
        0x82,
    );
    check(
        &frame(0x34, &s("t")),
        V311,
        Malformed::Truncated {
            what: "packet identifier",
        },
        0x81,
    );
    // V5 PUBLISH without a property length.
    check(
        &frame(0x30, &s("t")),
        V5,
        Malformed::Truncated {
            what: "property length",
        },
        0x81,
    );
    // Topic alias alone carries the name.
    let alias = ok(&frame(0x30, &cat(&[&s(""), &[3, 0x23, 0, 9]])), V5);
    assert!(matches!(alias, Packet::Publish(p) if p.properties.topic_alias == Some(9)));
}

#[test]
fn packet_ids_must_not_be_zero() {
    for (first, packet) in [
        (0x40, "PUBACK"),
        (0x50, "PUBREC"),
        (0x62, "PUBREL"),
        (0x70, "PUBCOMP"),
    ] {
        check(
            &[first, 2, 0, 0],
            V5,
            ProtocolViolation::PacketIdZero { packet },
            0x82,
        );
    }
    let sub = cat(&[&[0, 0], &s("a"), &[0]]);
    check(
        &frame(0x82, &sub),
        V311,
        ProtocolViolation::PacketIdZero {
            packet: "SUBSCRIBE",
        },
        0x82,
    );
    let unsub = cat(&[&[0, 0], &s("a")]);
    check(
        &frame(0xa2, &unsub),
        V311,
        ProtocolViolation::PacketIdZero {
            packet: "UNSUBSCRIBE",
        },
        0x82,
    );
    check(
        &[0x90, 3, 0, 0, 0],
        V311,
        ProtocolViolation::PacketIdZero { packet: "SUBACK" },
        0x82,
    );
    check(
        &[0xb0, 2, 0, 0],
        V311,
        ProtocolViolation::PacketIdZero { packet: "UNSUBACK" },
        0x82,
    );
}

#[test]
fn subscribe_rules() {
    let none = ProtocolViolation::NoTopicFilters {
        packet: "SUBSCRIBE",
    };
    check(&[0x82, 2, 0, 1], V311, none.clone(), 0x82);
    check(&[0x82, 3, 0, 1, 0], V5, none, 0x82);
    let none = ProtocolViolation::NoTopicFilters {
        packet: "UNSUBSCRIBE",
    };
    check(&[0xa2, 2, 0, 1], V311, none.clone(), 0x82);
    check(&[0xa2, 3, 0, 1, 0], V5, none, 0x82);

    let sub = |props: &[u8], filter: &str, options: u8| {
        frame(0x82, &cat(&[&[0, 1], props, &s(filter), &[options]]))
    };
    let what = "subscription options";
    check(
        &sub(&[], "a", 0x04),
        V311,
        Malformed::ReservedBits { what },
        0x81,
    );
    check(
        &sub(&[], "a", 0x03),
        V311,
        Malformed::InvalidQoS { what },
        0x81,
    );
    check(
        &sub(&[0], "a", 0x40),
        V5,
        Malformed::ReservedBits { what },
        0x81,
    );
    check(
        &sub(&[0], "a", 0x80),
        V5,
        Malformed::ReservedBits { what },
        0x81,
    );
    check(
        &sub(&[0], "a", 0x03),
        V5,
        ProtocolViolation::InvalidSubscriptionQoS,
        0x82,
    );
    check(
        &sub(&[0], "a", 0x30),
        V5,
        ProtocolViolation::InvalidRetainHandling,
        0x82,
    );
    check(
        &sub(&[0], "$share/g/a", 0x04),
        V5,
        ProtocolViolation::NoLocalOnSharedSubscription,
        0x82,
    );
    check(
        &frame(0x82, &cat(&[&[0, 1], &s("a")])),
        V311,
        Malformed::Truncated {
            what: "subscription options",
        },
        0x81,
    );
    let sid = "Subscription Identifier";
    check(
        &sub(&[2, 0x0b, 0], "a", 0),
        V5,
        ProtocolViolation::InvalidPropertyValue {
            name: sid,
            value: 0,
        },
        0x82,
    );
    check(
        &sub(&[4, 0x0b, 1, 0x0b, 2], "a", 0),
        V5,
        ProtocolViolation::DuplicateProperty { name: sid },
        0x82,
    );
    // Filter syntax is the broker's to judge (it answers in SUBACK).
    assert!(matches!(
        ok(&sub(&[], "a/#/b", 0), V311),
        Packet::Subscribe(_)
    ));
}

#[test]
fn connect_rules() {
    let id = s("c");
    check(
        &connect("MQTT", 4, 0x03, &id),
        None,
        Malformed::ConnectReservedFlag,
        0x81,
    );
    check(
        &connect("MQTT", 4, 0x08, &id),
        None,
        Malformed::WillFlagsWithoutWill,
        0x81,
    );
    check(
        &connect("MQTT", 5, 0x20, &cat(&[&[0], &id])),
        None,
        Malformed::WillFlagsWithoutWill,
        0x81,
    );
    check(
        &connect("MQTT", 4, 0x1c, &id),
        None,
        Malformed::InvalidQoS { what: "will QoS" },
        0x81,
    );
    check(
        &connect("MQTT", 4, 0x40, &cat(&[&id, &s("pw")])),
        None,
        Malformed::PasswordWithoutUsername,
        0x81,
    );
    let will = cat(&[&id, &s("w/+"), &s("")]);
    check(
        &connect("MQTT", 4, 0x04, &will),
        None,
        DecodeError::InvalidTopicName(TopicError::WildcardInName),
        0x90,
    );
    check(
        &connect("MQTT", 4, 0x00, &cat(&[&id, &[1]])),
        None,
        Malformed::TrailingBytes {
            packet: "CONNECT",
            count: 1,
        },
        0x81,
    );
    check(
        &connect("MQTT", 4, 0x80, &id),
        None,
        Malformed::Truncated { what: "user name" },
        0x81,
    );
    // A CONNECT while connected still parses by its own level; rejecting a
    // second CONNECT is the broker's call.
    assert!(
        matches!(ok(&connect("MQTT", 4, 0, &id), V5), Packet::Connect(c) if c.protocol == Protocol::V311)
    );
    // 5.0 allows a password alone.
    assert!(matches!(
        ok(
            &connect("MQTT", 5, 0x40, &cat(&[&[0], &id, &s("pw")])),
            None
        ),
        Packet::Connect(_)
    ));
}

#[test]
fn unsupported_protocol_levels() {
    for (name, level, answer) in [
        ("MQIsdp", 3, Protocol::V311),
        ("MQTT", 3, Protocol::V311),
        ("MQTT", 6, Protocol::V5),
        ("MQTX", 4, Protocol::V311),
    ] {
        let err = decode_err(&connect(name, level, 0x02, &s("c")), None);
        assert_eq!(
            err,
            DecodeError::UnsupportedProtocol {
                name: name.into(),
                level
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(err.connack_protocol(), Some(answer));
    }
    assert_eq!(decode_err(&[0xc0, 0x00], None).connack_protocol(), None);
}
