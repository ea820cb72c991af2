//! Every rule the decoder enforces, each with the exact error and the MQTT 5
//! reason code the broker would report it with.

use bytes::BytesMut;
use civitas_mqtt::*;

const V311: Option<Protocol> = Some(Protocol::V311);
const V5: Option<Protocol> = Some(Protocol::V5);

/// A packet: first byte, remaining length, body.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len & 0x7f) as u8;
        len >>= 7;
        if len > 0 {
            b |= 0x80;
        }
        v.push(b);
        if len == 0 {
            break;
        }
    }
    v.extend_from_slice(body);
    v
}

fn s(text: &str) -> Vec<u8> {
    let mut v = (text.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(text.as_bytes());
    v
}

/// A CONNECT body: name, level, flags, keep alive, then `rest`.
fn connect(name: &str, level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = s(name);
    body.extend_from_slice(&[level, flags, 0, 60]);
    body.extend_from_slice(rest);
    frame(0x10, &body)
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn decode_err(bytes: &[u8], protocol: Option<Protocol>) -> DecodeError {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, protocol, 1 << 20) {
        Err(e) => e,
        Ok(p) => panic!("{bytes:02x?} decoded to {p:?}"),
    }
}

fn check(bytes: &[u8], protocol: Option<Protocol>, want: impl Into<DecodeError>, code: u8) {
    let want = want.into();
    let got = decode_err(bytes, protocol);
    assert_eq!(got, want, "{bytes:02x?}");
    assert_eq!(got.reason_code(), ReasonCode(code), "{got}");
    assert!(!got.to_string().is_empty());
}

fn ok(bytes: &[u8], protocol: Option<Protocol>) -> Packet {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, protocol, 1 << 20) {
        Ok(Some(p)) if buf.is_empty() => p,
        other => panic!("{bytes:02x?}: {other:?}"),
    }
}

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

#[test]
fn property_identifiers_and_duplicates() {
    let publish = |props: &[u8]| {
        let mut p = vec![props.len() as u8];
        p.extend_from_slice(props);
        frame(0x30, &cat(&[&s("t"), &p]))
    };
    check(
        &publish(&[0x11, 0, 0, 0, 1]),
        V5,
        Malformed::InvalidPropertyId {
            packet: "PUBLISH",
            id: 0x11,
        },
        0x81,
    );
    check(
        &publish(&[0x7f, 0]),
        V5,
        Malformed::InvalidPropertyId {
            packet: "PUBLISH",
            id: 0x7f,
        },
        0x81,
    );
    check(
        &publish(&[0x02, 0, 0]),
        V5,
        Malformed::Truncated {
            what: "Message Expiry Interval",
        },
        0x81,
    );
    check(
        &publish(&[0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1]),
        V5,
        ProtocolViolation::DuplicateProperty {
            name: "Message Expiry Interval",
        },
        0x82,
    );
    check(
        &publish(&[0x23, 0, 0]),
        V5,
        ProtocolViolation::TopicAliasZero,
        0x94,
    );
    check(
        &publish(&[0x01, 2]),
        V5,
        ProtocolViolation::InvalidPropertyValue {
            name: "Payload Format Indicator",
            value: 2,
        },
        0x82,
    );
    check(
        &publish(&[0x0b, 0]),
        V5,
        ProtocolViolation::InvalidPropertyValue {
            name: "Subscription Identifier",
            value: 0,
        },
        0x82,
    );
    check(
        &publish(&cat(&[&[0x08], &s("r/#")])),
        V5,
        ProtocolViolation::InvalidResponseTopic(TopicError::WildcardInName),
        0x82,
    );
    // User properties and (from the server) subscription identifiers repeat.
    let p = ok(
        &publish(&cat(&[
            &[0x26],
            &s("k"),
            &s("v"),
            &[0x26],
            &s("k"),
            &s("w"),
            &[0x0b, 1, 0x0b, 2],
        ])),
        V5,
    );
    let Packet::Publish(p) = p else { panic!() };
    assert_eq!(p.properties.user_properties.len(), 2);
    assert_eq!(p.properties.subscription_identifiers, vec![1, 2]);
    // Property length larger than the packet.
    check(
        &frame(0x30, &cat(&[&s("t"), &[9, 0x01]])),
        V5,
        Malformed::Truncated { what: "properties" },
        0x81,
    );
}

#[test]
fn connect_property_values() {
    let with = |props: &[u8]| {
        let mut p = vec![props.len() as u8];
        p.extend_from_slice(props);
        connect("MQTT", 5, 0x02, &cat(&[&p, &s("c")]))
    };
    let bad = |name, value| ProtocolViolation::InvalidPropertyValue { name, value };
    check(&with(&[0x21, 0, 0]), None, bad("Receive Maximum", 0), 0x82);
    check(
        &with(&[0x27, 0, 0, 0, 0]),
        None,
        bad("Maximum Packet Size", 0),
        0x82,
    );
    check(
        &with(&[0x17, 2]),
        None,
        bad("Request Problem Information", 2),
        0x82,
    );
    check(
        &with(&[0x19, 7]),
        None,
        bad("Request Response Information", 7),
        0x82,
    );
    check(
        &with(&[0x16, 0, 1, 9]),
        None,
        ProtocolViolation::AuthDataWithoutMethod,
        0x82,
    );
    check(
        &with(&[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1]),
        None,
        ProtocolViolation::DuplicateProperty {
            name: "Session Expiry Interval",
        },
        0x82,
    );
    check(
        &with(&[0x23, 0, 1]),
        None,
        Malformed::InvalidPropertyId {
            packet: "CONNECT",
            id: 0x23,
        },
        0x81,
    );
    // Will properties have their own set.
    let will_props = [5, 0x11, 0, 0, 0, 0];
    let will = connect(
        "MQTT",
        5,
        0x06,
        &cat(&[&[0], &s("c"), &will_props, &s("w"), &s("")]),
    );
    check(
        &will,
        None,
        Malformed::InvalidPropertyId {
            packet: "CONNECT will",
            id: 0x11,
        },
        0x81,
    );
}

#[test]
fn connack_rules() {
    check(
        &[0x20, 2, 0x02, 0],
        V311,
        Malformed::ReservedBits {
            what: "CONNACK flags",
        },
        0x81,
    );
    check(
        &[0x20, 2, 0x00, 6],
        V311,
        ProtocolViolation::InvalidReasonCode {
            packet: "CONNACK",
            code: 6,
        },
        0x82,
    );
    check(
        &[0x20, 3, 0x00, 0x10, 0],
        V5,
        ProtocolViolation::InvalidReasonCode {
            packet: "CONNACK",
            code: 0x10,
        },
        0x82,
    );
    check(
        &[0x20, 2, 0x01, 5],
        V311,
        ProtocolViolation::SessionPresentWithError,
        0x82,
    );
    check(
        &[0x20, 5, 0x00, 0, 2, 0x24, 2],
        V5,
        ProtocolViolation::InvalidPropertyValue {
            name: "Maximum QoS",
            value: 2,
        },
        0x82,
    );
    check(
        &[0x20, 5, 0x00, 0, 2, 0x25, 3],
        V5,
        ProtocolViolation::InvalidPropertyValue {
            name: "Retain Available",
            value: 3,
        },
        0x82,
    );
    check(
        &[0x20, 6, 0x00, 0, 3, 0x21, 0, 0],
        V5,
        ProtocolViolation::InvalidPropertyValue {
            name: "Receive Maximum",
            value: 0,
        },
        0x82,
    );
}

#[test]
fn ack_rules() {
    check(
        &[0x40, 3, 0, 1, 0x05],
        V5,
        ProtocolViolation::InvalidReasonCode {
            packet: "PUBACK",
            code: 5,
        },
        0x82,
    );
    check(
        &[0x62, 3, 0, 1, 0x10],
        V5,
        ProtocolViolation::InvalidReasonCode {
            packet: "PUBREL",
            code: 0x10,
        },
        0x82,
    );
    check(
        &[0x40, 3, 0, 1, 0],
        V311,
        Malformed::TrailingBytes {
            packet: "PUBACK",
            count: 1,
        },
        0x81,
    );
    check(
        &[0x40, 1, 0],
        V5,
        Malformed::Truncated {
            what: "packet identifier",
        },
        0x81,
    );
    check(
        &[0x40, 5, 0, 1, 0, 5, 0],
        V5,
        Malformed::Truncated { what: "properties" },
        0x81,
    );
    check(
        &[0x40, 6, 0, 1, 0, 2, 0x26, 0],
        V5,
        Malformed::Truncated {
            what: "User Property",
        },
        0x81,
    );
    check(
        &[0x40, 6, 0, 1, 0, 2, 0x24, 0],
        V5,
        Malformed::InvalidPropertyId {
            packet: "PUBACK",
            id: 0x24,
        },
        0x81,
    );
    check(
        &[0x90, 2, 0, 1],
        V311,
        ProtocolViolation::NoReasonCodes { packet: "SUBACK" },
        0x82,
    );
    check(
        &[0x90, 3, 0, 1, 0],
        V5,
        ProtocolViolation::NoReasonCodes { packet: "SUBACK" },
        0x82,
    );
    check(
        &[0x90, 3, 0, 1, 3],
        V311,
        ProtocolViolation::InvalidReasonCode {
            packet: "SUBACK",
            code: 3,
        },
        0x82,
    );
    check(
        &[0x90, 4, 0, 1, 0, 0x11],
        V5,
        ProtocolViolation::InvalidReasonCode {
            packet: "SUBACK",
            code: 0x11,
        },
        0x82,
    );
    check(
        &[0xb0, 3, 0, 1, 0],
        V5,
        ProtocolViolation::NoReasonCodes { packet: "UNSUBACK" },
        0x82,
    );
    check(
        &[0xb0, 3, 0, 1, 0],
        V311,
        Malformed::TrailingBytes {
            packet: "UNSUBACK",
            count: 1,
        },
        0x81,
    );
    check(
        &[0xc0, 1, 0],
        V5,
        Malformed::TrailingBytes {
            packet: "PINGREQ",
            count: 1,
        },
        0x81,
    );
    check(
        &[0xd0, 1, 0],
        V311,
        Malformed::TrailingBytes {
            packet: "PINGRESP",
            count: 1,
        },
        0x81,
    );
}

#[test]
fn disconnect_and_auth_rules() {
    check(
        &[0xe0, 1, 0],
        V311,
        Malformed::TrailingBytes {
            packet: "DISCONNECT",
            count: 1,
        },
        0x81,
    );
    check(
        &[0xe0, 1, 0x84],
        V5,
        ProtocolViolation::InvalidReasonCode {
            packet: "DISCONNECT",
            code: 0x84,
        },
        0x82,
    );
    check(
        &[0xe0, 4, 0, 2, 0x24, 0],
        V5,
        Malformed::InvalidPropertyId {
            packet: "DISCONNECT",
            id: 0x24,
        },
        0x81,
    );
    check(
        &[0xf0, 1, 0x04],
        V5,
        ProtocolViolation::InvalidReasonCode {
            packet: "AUTH",
            code: 4,
        },
        0x82,
    );
    check(
        &[0xf0, 10, 0x18, 8, 0x15, 0, 1, b'm', 0x15, 0, 1, b'n'],
        V5,
        ProtocolViolation::DuplicateProperty {
            name: "Authentication Method",
        },
        0x82,
    );
}

#[test]
fn property_identifier_is_a_variable_byte_integer() {
    // 0x81 0x00 is a non-minimal encoding; 0x80 0x01 is identifier 128.
    check(
        &[0x40, 6, 0, 1, 0, 2, 0x81, 0x00],
        V5,
        Malformed::InvalidVarInt {
            what: "property identifier",
        },
        0x81,
    );
    check(
        &[0x40, 6, 0, 1, 0, 2, 0x80, 0x01],
        V5,
        Malformed::InvalidPropertyId {
            packet: "PUBACK",
            id: 0x80,
        },
        0x81,
    );
}
