//! Every packet type in both protocol versions: hand-written wire bytes
//! decode to the expected packet and the packet encodes back to them.

use bytes::{Bytes, BytesMut};
use civitas_mqtt::*;

const MAX: u32 = 1 << 20;

fn decode_all(bytes: &[u8], protocol: Option<Protocol>) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, protocol, MAX)
        .expect("decodes")
        .expect("complete");
    assert!(buf.is_empty(), "the whole packet is consumed");
    packet
}

fn encode_vec(packet: &Packet, protocol: Protocol) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(packet, protocol, &mut out).expect("encodes");
    assert_eq!(out.len(), encoded_len(packet, protocol));
    out.to_vec()
}

/// `bytes` decodes to `packet` and `packet` encodes to `bytes`.
fn wire(bytes: &[u8], packet: Packet, protocol: Protocol) {
    let ctx = if matches!(packet, Packet::Connect(_)) {
        None
    } else {
        Some(protocol)
    };
    assert_eq!(decode_all(bytes, ctx), packet, "decode of {bytes:02x?}");
    assert_eq!(encode_vec(&packet, protocol), bytes, "encode of {packet:?}");
}

fn connect(protocol: Protocol) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: String::new(),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }
}

#[test]
fn connect_v311_minimal() {
    let bytes = [
        0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
    ];
    wire(
        &bytes,
        Packet::Connect(Box::new(connect(Protocol::V311))),
        Protocol::V311,
    );
}

#[test]
fn connect_v5_minimal() {
    let bytes = [
        0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3c, 0x00, 0x00, 0x00,
    ];
    wire(
        &bytes,
        Packet::Connect(Box::new(connect(Protocol::V5))),
        Protocol::V5,
    );
}

#[test]
fn connect_v311_full() {
    let mut c = connect(Protocol::V311);
    c.clean_start = false;
    c.client_id = "dev".into();
    c.will = Some(Will {
        topic: "w".into(),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: WillProperties::default(),
    });
    c.username = Some("u".into());
    c.password = Some(Bytes::from_static(b"p"));
    #[rustfmt::skip]
    let bytes = [
        0x10, 29,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04,
        0b1110_1100, // user name, password, will retain, will QoS 1, will
        0x00, 0x3c,
        0x00, 0x03, b'd', b'e', b'v',
        0x00, 0x01, b'w',
        0x00, 0x03, b'b', b'y', b'e',
        0x00, 0x01, b'u',
        0x00, 0x01, b'p',
    ];
    wire(&bytes, Packet::Connect(Box::new(c)), Protocol::V311);
}

#[test]
fn connect_v5_with_properties_and_will_properties() {
    let mut c = connect(Protocol::V5);
    c.client_id = "c".into();
    c.properties.session_expiry_interval = Some(10);
    c.properties.receive_maximum = Some(20);
    c.properties.user_properties = vec![("k".into(), "v".into())];
    c.will = Some(Will {
        topic: "w".into(),
        payload: Bytes::new(),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: WillProperties {
            will_delay_interval: Some(5),
            ..Default::default()
        },
    });
    // V5 password without user name is legal.
    c.password = Some(Bytes::from_static(b"pw"));
    #[rustfmt::skip]
    let bytes = [
        0x10, 44,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,
        0b0100_0110,
        0x00, 0x3c,
        15, 0x11, 0, 0, 0, 10, 0x21, 0, 20, 0x26, 0, 1, b'k', 0, 1, b'v',
        0x00, 0x01, b'c',
        5, 0x18, 0, 0, 0, 5,
        0x00, 0x01, b'w',
        0x00, 0x00,
        0x00, 0x02, b'p', b'w',
    ];
    wire(&bytes, Packet::Connect(Box::new(c)), Protocol::V5);
}

#[test]
fn connack_both_versions() {
    let ok = ConnAck {
        session_present: true,
        ..Default::default()
    };
    wire(
        &[0x20, 0x02, 0x01, 0x00],
        Packet::ConnAck(ok.clone()),
        Protocol::V311,
    );
    wire(
        &[0x20, 0x03, 0x01, 0x00, 0x00],
        Packet::ConnAck(ok),
        Protocol::V5,
    );
    let refused = ConnAck {
        reason_code: ReasonCode::NOT_AUTHORIZED,
        ..Default::default()
    };
    wire(
        &[0x20, 0x02, 0x00, 0x05],
        Packet::ConnAck(refused.clone()),
        Protocol::V311,
    );
    wire(
        &[0x20, 0x03, 0x00, 0x87, 0x00],
        Packet::ConnAck(refused),
        Protocol::V5,
    );
    let mut props = ConnAck::default();
    props.properties.maximum_qos = Some(1);
    props.properties.assigned_client_identifier = Some("id".into());
    wire(
        &[
            0x20, 0x0a, 0x00, 0x00, 0x07, 0x24, 0x01, 0x12, 0x00, 0x02, b'i', b'd',
        ],
        Packet::ConnAck(props),
        Protocol::V5,
    );
}

#[test]
fn connack_v311_return_code_mapping() {
    let cases = [
        (ReasonCode::SUCCESS, 0),
        (ReasonCode::UNSUPPORTED_PROTOCOL_VERSION, 1),
        (ReasonCode::CLIENT_IDENTIFIER_NOT_VALID, 2),
        (ReasonCode::SERVER_UNAVAILABLE, 3),
        (ReasonCode::SERVER_BUSY, 3),
        (ReasonCode::SERVER_SHUTTING_DOWN, 3),
        (ReasonCode::UNSPECIFIED_ERROR, 3),
        (ReasonCode::BAD_USER_NAME_OR_PASSWORD, 4),
        (ReasonCode::NOT_AUTHORIZED, 5),
        (ReasonCode::BANNED, 5),
        (ReasonCode::BAD_AUTHENTICATION_METHOD, 5),
    ];
    for (code, rc) in cases {
        let p = Packet::ConnAck(ConnAck {
            reason_code: code,
            ..Default::default()
        });
        assert_eq!(
            encode_vec(&p, Protocol::V311),
            [0x20, 0x02, 0x00, rc],
            "{code:?}"
        );
    }
    // And back: each 3.1.1 return code names one MQTT 5 reason code.
    for (rc, code) in [(1, 0x84), (2, 0x85), (3, 0x88), (4, 0x86), (5, 0x87)] {
        let p = decode_all(&[0x20, 0x02, 0x00, rc], Some(Protocol::V311));
        assert_eq!(
            p,
            Packet::ConnAck(ConnAck {
                reason_code: ReasonCode(code),
                ..Default::default()
            })
        );
    }
}

#[test]
fn publish_both_versions() {
    let p = Publish {
        qos: QoS::AtLeastOnce,
        topic: "a/b".into(),
        packet_id: Some(10),
        payload: Bytes::from_static(b"hi"),
        ..Default::default()
    };
    wire(
        &[
            0x32, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, b'h', b'i',
        ],
        Packet::Publish(p.clone()),
        Protocol::V311,
    );
    wire(
        &[
            0x32, 0x0a, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, 0x00, b'h', b'i',
        ],
        Packet::Publish(p),
        Protocol::V5,
    );
    let q0 = Publish {
        retain: true,
        topic: "t".into(),
        payload: Bytes::from_static(b"x"),
        ..Default::default()
    };
    wire(
        &[0x31, 0x05, 0x00, 0x01, b't', 0x00, b'x'],
        Packet::Publish(q0),
        Protocol::V5,
    );
    let dup2 = Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        topic: "t".into(),
        packet_id: Some(1),
        ..Default::default()
    };
    wire(
        &[0x3c, 0x05, 0x00, 0x01, b't', 0x00, 0x01],
        Packet::Publish(dup2),
        Protocol::V311,
    );
}

#[test]
fn publish_v5_alias_only_and_properties() {
    let mut p = Publish {
        topic: String::new(),
        payload: Bytes::from_static(b"z"),
        ..Default::default()
    };
    p.properties.topic_alias = Some(7);
    p.properties.subscription_identifiers = vec![1, 300];
    wire(
        &[
            0x30, 0x0c, 0x00, 0x00, 0x08, 0x23, 0x00, 0x07, 0x0b, 0x01, 0x0b, 0xac, 0x02, b'z',
        ],
        Packet::Publish(p),
        Protocol::V5,
    );
}

#[test]
fn publish_payload_is_a_slice_of_the_input() {
    let mut buf = BytesMut::from(&[0x30, 0x06, 0x00, 0x01, b't', b'a', b'b', b'c'][..]);
    let start = buf.as_ptr() as usize;
    let Some(Packet::Publish(p)) = decode(&mut buf, Some(Protocol::V311), MAX).unwrap() else {
        panic!("not a PUBLISH");
    };
    assert_eq!(&p.payload[..], b"abc");
    assert_eq!(p.payload.as_ptr() as usize, start + 5);
}

#[test]
fn acks_both_versions() {
    type Make = fn(PubAck) -> Packet;
    let kinds: [(u8, Make, ReasonCode); 4] = [
        (0x40, Packet::PubAck, ReasonCode::NO_MATCHING_SUBSCRIBERS),
        (0x50, Packet::PubRec, ReasonCode::QUOTA_EXCEEDED),
        (
            0x62,
            Packet::PubRel,
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        ),
        (
            0x70,
            Packet::PubComp,
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        ),
    ];
    for (first, make, code) in kinds {
        let plain = PubAck {
            packet_id: 0x1234,
            ..Default::default()
        };
        wire(
            &[first, 0x02, 0x12, 0x34],
            make(plain.clone()),
            Protocol::V311,
        );
        wire(
            &[first, 0x02, 0x12, 0x34],
            make(plain.clone()),
            Protocol::V5,
        );
        let coded = PubAck {
            reason_code: code,
            ..plain.clone()
        };
        wire(
            &[first, 0x03, 0x12, 0x34, code.0],
            make(coded.clone()),
            Protocol::V5,
        );
        let mut with_props = coded;
        with_props.properties.reason_string = Some("r".into());
        wire(
            &[
                first, 0x08, 0x12, 0x34, code.0, 0x04, 0x1f, 0x00, 0x01, b'r',
            ],
            make(with_props),
            Protocol::V5,
        );
        // The long form of a plain success decodes to the same packet.
        assert_eq!(
            decode_all(&[first, 0x04, 0x12, 0x34, 0x00, 0x00], Some(Protocol::V5)),
            make(plain)
        );
    }
}

#[test]
fn subscribe_both_versions() {
    let s = Subscribe {
        packet_id: 1,
        subscriptions: vec![Subscription {
            filter: "a/b".into(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        }],
        properties: SubscribeProperties::default(),
    };
    wire(
        &[0x82, 0x08, 0x00, 0x01, 0x00, 0x03, b'a', b'/', b'b', 0x01],
        Packet::Subscribe(s.clone()),
        Protocol::V311,
    );
    let mut v5 = s;
    v5.properties.subscription_identifier = Some(128);
    v5.subscriptions.push(Subscription {
        filter: "#".into(),
        options: SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::DoNotSend,
        },
    });
    wire(
        &[
            0x82, 0x10, 0x00, 0x01, 0x03, 0x0b, 0x80, 0x01, 0x00, 0x03, b'a', b'/', b'b', 0x01,
            0x00, 0x01, b'#', 0x2e,
        ],
        Packet::Subscribe(v5),
        Protocol::V5,
    );
}

#[test]
fn suback_both_versions() {
    let s = SubAck {
        packet_id: 2,
        reason_codes: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::UNSPECIFIED_ERROR],
        properties: AckProperties::default(),
    };
    wire(
        &[0x90, 0x04, 0x00, 0x02, 0x01, 0x80],
        Packet::SubAck(s.clone()),
        Protocol::V311,
    );
    wire(
        &[0x90, 0x05, 0x00, 0x02, 0x00, 0x01, 0x80],
        Packet::SubAck(s),
        Protocol::V5,
    );
    // Under 3.1.1 every failure is 0x80.
    let refused = SubAck {
        packet_id: 2,
        reason_codes: vec![ReasonCode::NOT_AUTHORIZED, ReasonCode::GRANTED_QOS_2],
        properties: AckProperties::default(),
    };
    assert_eq!(
        encode_vec(&Packet::SubAck(refused), Protocol::V311),
        [0x90, 0x04, 0x00, 0x02, 0x80, 0x02]
    );
}

#[test]
fn unsubscribe_and_unsuback_both_versions() {
    let u = Unsubscribe {
        packet_id: 1,
        filters: vec!["a/b".into()],
        user_properties: vec![],
    };
    wire(
        &[0xa2, 0x07, 0x00, 0x01, 0x00, 0x03, b'a', b'/', b'b'],
        Packet::Unsubscribe(u.clone()),
        Protocol::V311,
    );
    wire(
        &[0xa2, 0x08, 0x00, 0x01, 0x00, 0x00, 0x03, b'a', b'/', b'b'],
        Packet::Unsubscribe(u),
        Protocol::V5,
    );
    wire(
        &[0xb0, 0x02, 0x00, 0x01],
        Packet::UnsubAck(UnsubAck {
            packet_id: 1,
            ..Default::default()
        }),
        Protocol::V311,
    );
    let v5 = UnsubAck {
        packet_id: 1,
        reason_codes: vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
        properties: AckProperties::default(),
    };
    wire(
        &[0xb0, 0x05, 0x00, 0x01, 0x00, 0x00, 0x11],
        Packet::UnsubAck(v5.clone()),
        Protocol::V5,
    );
    // 3.1.1 has no reason codes: they are dropped.
    assert_eq!(
        encode_vec(&Packet::UnsubAck(v5), Protocol::V311),
        [0xb0, 0x02, 0x00, 0x01]
    );
}

#[test]
fn ping_both_versions() {
    for protocol in [Protocol::V311, Protocol::V5] {
        wire(&[0xc0, 0x00], Packet::PingReq, protocol);
        wire(&[0xd0, 0x00], Packet::PingResp, protocol);
    }
}

#[test]
fn disconnect_both_versions() {
    wire(
        &[0xe0, 0x00],
        Packet::Disconnect(Disconnect::default()),
        Protocol::V311,
    );
    wire(
        &[0xe0, 0x00],
        Packet::Disconnect(Disconnect::default()),
        Protocol::V5,
    );
    let taken = Disconnect {
        reason_code: ReasonCode::SESSION_TAKEN_OVER,
        ..Default::default()
    };
    wire(
        &[0xe0, 0x01, 0x8e],
        Packet::Disconnect(taken.clone()),
        Protocol::V5,
    );
    assert_eq!(
        encode_vec(&Packet::Disconnect(taken), Protocol::V311),
        [0xe0, 0x00]
    );
    let mut expiry = Disconnect::default();
    expiry.properties.session_expiry_interval = Some(0);
    wire(
        &[0xe0, 0x07, 0x00, 0x05, 0x11, 0, 0, 0, 0],
        Packet::Disconnect(expiry),
        Protocol::V5,
    );
}

#[test]
fn auth_v5_only() {
    wire(&[0xf0, 0x00], Packet::Auth(Auth::default()), Protocol::V5);
    let mut a = Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        ..Default::default()
    };
    a.properties.authentication_method = Some("m".into());
    wire(
        &[0xf0, 0x06, 0x18, 0x04, 0x15, 0x00, 0x01, b'm'],
        Packet::Auth(a.clone()),
        Protocol::V5,
    );
    let mut out = BytesMut::from(&b"keep"[..]);
    assert_eq!(
        encode(&Packet::Auth(a), Protocol::V311, &mut out),
        Err(EncodeError::AuthInV311)
    );
    assert_eq!(
        &out[..],
        b"keep",
        "a failed encode leaves the buffer as it was"
    );
}

#[test]
fn partial_input_is_not_consumed() {
    let bytes = [
        0x32, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, b'h', b'i', 0xc0, 0x00,
    ];
    for cut in 0..11 {
        let mut buf = BytesMut::from(&bytes[..cut]);
        assert_eq!(
            decode(&mut buf, Some(Protocol::V311), MAX),
            Ok(None),
            "cut at {cut}"
        );
        assert_eq!(buf.len(), cut);
    }
    // Two packets back to back come out one at a time.
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(matches!(
        decode(&mut buf, Some(Protocol::V311), MAX),
        Ok(Some(Packet::Publish(_)))
    ));
    assert_eq!(
        decode(&mut buf, Some(Protocol::V311), MAX),
        Ok(Some(Packet::PingReq))
    );
    assert!(buf.is_empty());
}

#[test]
fn encode_appends() {
    let mut out = BytesMut::from(&b"x"[..]);
    encode(&Packet::PingReq, Protocol::V5, &mut out).unwrap();
    encode(&Packet::PingResp, Protocol::V5, &mut out).unwrap();
    assert_eq!(&out[..], &[b'x', 0xc0, 0x00, 0xd0, 0x00]);
}
