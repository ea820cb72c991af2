//! The decoder's rules on MQTT 5 properties, reason codes and the
//! acknowledgement packets, each with the exact error and reason code.

use civitas_mqtt::*;

mod common;

use common::wire::*;

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
