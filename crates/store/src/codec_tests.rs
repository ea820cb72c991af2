//! Round trips of every record type and the refusal of corrupt bytes.

use super::*;
use proptest::prelude::*;

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn message() -> impl Strategy<Value = StoredMessage> {
    (
        (
            ".{0,20}",
            bytes(),
            qos(),
            any::<bool>(),
            any::<Option<u64>>(),
            any::<u64>(),
        ),
        (
            any::<Option<u8>>(),
            any::<Option<u32>>(),
            proptest::option::of(".{0,10}"),
            proptest::option::of(bytes()),
            proptest::collection::vec((".{0,5}", ".{0,5}"), 0..4),
            proptest::option::of(".{0,10}"),
        ),
    )
        .prop_map(
            |(
                (topic, payload, qos, retain, expires_at_ms, received_at_ms),
                (pfi, mei, response_topic, correlation_data, user_properties, content_type),
            )| StoredMessage {
                topic,
                payload,
                qos,
                retain,
                expires_at_ms,
                properties: PublishProperties {
                    payload_format_indicator: pfi,
                    message_expiry_interval: mei,
                    topic_alias: None,
                    response_topic,
                    correlation_data,
                    user_properties,
                    subscription_identifiers: Vec::new(),
                    content_type,
                },
                received_at_ms,
            },
        )
}

fn subscription() -> impl Strategy<Value = StoredSubscription> {
    (
        ".{0,20}",
        qos(),
        any::<bool>(),
        any::<bool>(),
        0u8..3,
        any::<Option<u32>>(),
    )
        .prop_map(|(filter, qos, no_local, rap, rh, id)| StoredSubscription {
            filter,
            options: SubscriptionOptions {
                qos,
                no_local,
                retain_as_published: rap,
                retain_handling: match rh {
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendIfNew,
                    _ => RetainHandling::DoNotSend,
                },
            },
            subscription_identifier: id,
        })
}

fn session() -> impl Strategy<Value = SessionRecord> {
    (
        ".{0,23}",
        any::<u8>(),
        any::<u32>(),
        any::<Option<u64>>(),
        proptest::collection::vec(subscription(), 0..4),
        proptest::option::of((message(), any::<u32>(), any::<Option<u64>>())),
    )
        .prop_map(
            |(client_id, level, expiry, disc, subscriptions, will)| SessionRecord {
                client_id,
                protocol_level: level,
                session_expiry_interval: expiry,
                disconnected_at_ms: disc,
                subscriptions,
                will: will.map(|(message, delay_interval, publish_at_ms)| StoredWill {
                    message,
                    delay_interval,
                    publish_at_ms,
                }),
            },
        )
}

fn outbound() -> impl Strategy<Value = OutboundMessage> {
    (
        message(),
        any::<Option<u16>>(),
        0u8..4,
        qos(),
        proptest::collection::vec(any::<u32>(), 0..4),
    )
        .prop_map(|(message, packet_id, state, qos, ids)| OutboundMessage {
            message,
            packet_id,
            state: match state {
                0 => OutboundState::Queued,
                1 => OutboundState::AwaitingPubAck,
                2 => OutboundState::AwaitingPubRec,
                _ => OutboundState::AwaitingPubComp,
            },
            qos,
            subscription_identifiers: ids,
        })
}

fn shadow() -> impl Strategy<Value = ShadowRecord> {
    (
        "[a-zA-Z0-9:_-]{1,16}",
        "[$a-zA-Z0-9:_-]{0,16}",
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(
            |(thing, shadow, version, updated_at_ms, document)| ShadowRecord {
                thing,
                shadow,
                version,
                updated_at_ms,
                document,
            },
        )
}

/// Every strict prefix of a valid record must fail to decode, cleanly.
fn assert_prefixes_fail<T: std::fmt::Debug>(
    buf: &[u8],
    decode: fn(&[u8]) -> Result<T, DecodeError>,
) {
    for n in 0..buf.len() {
        assert!(decode(&buf[..n]).is_err(), "prefix of {n} bytes decoded");
    }
}

proptest! {
    #[test]
    fn message_round_trips(m in message()) {
        let buf = encode_message(&m);
        prop_assert_eq!(buf[0], RECORD_FORMAT_V1);
        prop_assert_eq!(decode_message(&buf), Ok(m));
        assert_prefixes_fail(&buf, decode_message);
    }

    #[test]
    fn session_round_trips(s in session()) {
        let buf = encode_session(&s);
        prop_assert_eq!(decode_session(&buf), Ok(s));
        assert_prefixes_fail(&buf, decode_session);
    }

    #[test]
    fn outbound_round_trips(m in outbound()) {
        let buf = encode_outbound(&m);
        prop_assert_eq!(decode_outbound(&buf), Ok(m));
        assert_prefixes_fail(&buf, decode_outbound);
    }

    #[test]
    fn shadow_round_trips(s in shadow()) {
        let buf = encode_shadow(&s);
        prop_assert_eq!(decode_shadow(&buf), Ok(s));
        assert_prefixes_fail(&buf, decode_shadow);
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut buf in proptest::collection::vec(any::<u8>(), 0..256)) {
        // Mostly with a valid version byte, so decoding gets past it.
        if let Some(first) = buf.first_mut()
            && *first % 4 != 0
        {
            *first = RECORD_FORMAT_V1;
        }
        let _ = decode_message(&buf);
        let _ = decode_session(&buf);
        let _ = decode_outbound(&buf);
        let _ = decode_shadow(&buf);
        let _ = decode_meta_u32(&buf);
    }
}

#[test]
fn subscription_identifiers_and_topic_alias_are_not_stored() {
    let mut m = StoredMessage {
        topic: "t".into(),
        payload: Bytes::new(),
        qos: QoS::AtMostOnce,
        retain: false,
        expires_at_ms: None,
        properties: PublishProperties::default(),
        received_at_ms: 0,
    };
    let plain = encode_message(&m);
    m.properties.topic_alias = Some(3);
    m.properties.subscription_identifiers = vec![1, 2];
    assert_eq!(encode_message(&m), plain);
}

#[test]
fn corrupt_bytes_give_precise_errors() {
    assert_eq!(decode_message(&[]), Err(DecodeError::Empty));
    assert_eq!(decode_session(&[9, 0]), Err(DecodeError::UnknownVersion(9)));

    let m = StoredMessage {
        topic: "t".into(),
        payload: Bytes::from_static(b"p"),
        qos: QoS::AtLeastOnce,
        retain: false,
        expires_at_ms: None,
        properties: PublishProperties::default(),
        received_at_ms: 0,
    };
    let mut buf = encode_message(&m);
    buf.push(0);
    assert_eq!(
        decode_message(&buf),
        Err(DecodeError::TrailingBytes {
            offset: buf.len() - 1,
            extra: 1
        })
    );

    // version, topic len (4) + "t", payload len (4) + "p", then the qos byte.
    let qos_at = 1 + 4 + 1 + 4 + 1;
    let mut buf = encode_message(&m);
    buf[qos_at] = 7;
    assert_eq!(
        decode_message(&buf),
        Err(DecodeError::InvalidValue {
            field: "qos",
            offset: qos_at,
            value: 7
        })
    );

    let mut buf = encode_message(&m);
    buf[5] = 0xff;
    assert_eq!(
        decode_message(&buf),
        Err(DecodeError::InvalidUtf8 {
            field: "topic",
            offset: 1
        })
    );

    // A length far beyond the buffer is refused, not allocated.
    let mut buf = encode_message(&m);
    buf[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode_message(&buf),
        Err(DecodeError::Truncated { field: "topic", .. })
    ));
}

#[test]
fn meta_u32_is_exactly_four_bytes() {
    assert_eq!(decode_meta_u32(&encode_meta_u32(42)), Ok(42));
    assert!(decode_meta_u32(&[1, 2, 3]).is_err());
    assert!(decode_meta_u32(&[1, 2, 3, 4, 5]).is_err());
}
