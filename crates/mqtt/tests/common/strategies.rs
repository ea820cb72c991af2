//! Proptest strategies for valid packets of every type, per protocol
//! version: what the decoder must accept and round-trip.

use bytes::Bytes;
use civitas_mqtt::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;

const VARINT_MAX: u32 = 268_435_455;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 /_.-]{0,8}",
        any::<String>().prop_map(|s| s.chars().filter(|&c| c != '\0').take(12).collect()),
    ]
}

fn topic_name() -> impl Strategy<Value = String> {
    "[a-z$é😀]{1,3}(/[a-z0-9 ]{0,3}){0,3}"
}

fn topic_filter() -> impl Strategy<Value = String> {
    "[a-z+#/]{0,8}"
}

fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn user_properties() -> impl Strategy<Value = UserProperties> {
    vec((text(), text()), 0..3)
}

fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

fn packet_id() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

fn reason(packet: &str) -> impl Strategy<Value = ReasonCode> {
    select(reason::allowed(packet).to_vec()).prop_map(ReasonCode)
}

fn v5_only<T: Default + std::fmt::Debug + Clone + 'static>(
    v5: bool,
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    if v5 {
        s.boxed()
    } else {
        Just(T::default()).boxed()
    }
}

fn ack_properties(v5: bool) -> BoxedStrategy<AckProperties> {
    v5_only(
        v5,
        (of(text()), user_properties()).prop_map(|(reason_string, user_properties)| {
            AckProperties {
                reason_string,
                user_properties,
            }
        }),
    )
}

fn will(v5: bool) -> impl Strategy<Value = Will> {
    let props = v5_only(
        v5,
        (
            of(any::<u32>()),
            of(0..=1u8),
            of(any::<u32>()),
            of(text()),
            of(topic_name()),
            of(binary()),
            user_properties(),
        )
            .prop_map(|(d, pf, e, ct, rt, cd, up)| WillProperties {
                will_delay_interval: d,
                payload_format_indicator: pf,
                message_expiry_interval: e,
                content_type: ct,
                response_topic: rt,
                correlation_data: cd,
                user_properties: up,
            }),
    );
    (topic_name(), binary(), qos(), any::<bool>(), props).prop_map(
        |(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        },
    )
}

fn connect(v5: bool) -> impl Strategy<Value = Packet> {
    let props = v5_only(
        v5,
        (
            (
                of(any::<u32>()),
                of(1..=u16::MAX),
                of(1..=u32::MAX),
                of(any::<u16>()),
            ),
            (of(any::<bool>()), of(any::<bool>()), user_properties()),
            (of(text()), of(binary())),
        )
            .prop_map(
                |((se, rm, mps, tam), (rri, rpi, up), (am, ad))| ConnectProperties {
                    session_expiry_interval: se,
                    receive_maximum: rm,
                    maximum_packet_size: mps,
                    topic_alias_maximum: tam,
                    request_response_information: rri,
                    request_problem_information: rpi,
                    user_properties: up,
                    // Authentication data needs a method.
                    authentication_data: if am.is_some() { ad } else { None },
                    authentication_method: am,
                },
            ),
    );
    let protocol = if v5 { Protocol::V5 } else { Protocol::V311 };
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        of(will(v5)),
        of(text()),
        of(binary()),
        props,
    )
        .prop_map(
            move |(
                clean_start,
                keep_alive,
                client_id,
                will,
                mut username,
                password,
                properties,
            )| {
                if !v5 && password.is_some() && username.is_none() {
                    username = Some(String::new());
                }
                Packet::Connect(Box::new(Connect {
                    protocol,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }))
            },
        )
}

fn connack(v5: bool) -> impl Strategy<Value = Packet> {
    let code = if v5 {
        reason("CONNACK").boxed()
    } else {
        select(vec![0x00, 0x84, 0x85, 0x88, 0x86, 0x87])
            .prop_map(ReasonCode)
            .boxed()
    };
    let props = v5_only(
        v5,
        (
            (
                of(any::<u32>()),
                of(1..=u16::MAX),
                of(0..=1u8),
                of(any::<bool>()),
                of(1..=u32::MAX),
            ),
            (of(text()), of(any::<u16>()), of(text()), user_properties()),
            (
                of(any::<bool>()),
                of(any::<bool>()),
                of(any::<bool>()),
                of(any::<u16>()),
            ),
            (of(text()), of(text()), of(text()), of(binary())),
        )
            .prop_map(
                |(
                    (se, rm, mq, ra, mps),
                    (aci, tam, rs, up),
                    (wsa, sia, ssa, ska),
                    (ri, sr, am, ad),
                )| {
                    ConnAckProperties {
                        session_expiry_interval: se,
                        receive_maximum: rm,
                        maximum_qos: mq,
                        retain_available: ra,
                        maximum_packet_size: mps,
                        assigned_client_identifier: aci,
                        topic_alias_maximum: tam,
                        reason_string: rs,
                        user_properties: up,
                        wildcard_subscription_available: wsa,
                        subscription_identifiers_available: sia,
                        shared_subscription_available: ssa,
                        server_keep_alive: ska,
                        response_information: ri,
                        server_reference: sr,
                        authentication_method: am,
                        authentication_data: ad,
                    }
                },
            ),
    );
    (any::<bool>(), code, props).prop_map(|(sp, reason_code, properties)| {
        Packet::ConnAck(ConnAck {
            session_present: sp && reason_code.0 == 0,
            reason_code,
            properties,
        })
    })
}

fn publish(v5: bool) -> impl Strategy<Value = Packet> {
    let props = v5_only(
        v5,
        (
            (
                of(0..=1u8),
                of(any::<u32>()),
                of(1..=u16::MAX),
                of(topic_name()),
            ),
            (
                of(binary()),
                user_properties(),
                vec(1..=VARINT_MAX, 0..3),
                of(text()),
            ),
        )
            .prop_map(|((pf, e, ta, rt), (cd, up, si, ct))| PublishProperties {
                payload_format_indicator: pf,
                message_expiry_interval: e,
                topic_alias: ta,
                response_topic: rt,
                correlation_data: cd,
                user_properties: up,
                subscription_identifiers: si,
                content_type: ct,
            }),
    );
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        packet_id(),
        binary(),
        props,
        any::<bool>(),
    )
        .prop_map(
            |(dup, qos, retain, mut topic, id, payload, properties, drop_topic)| {
                // Under MQTT 5 a topic alias may stand in for the name.
                if drop_topic && properties.topic_alias.is_some() {
                    topic.clear();
                }
                let qos0 = qos == QoS::AtMostOnce;
                Packet::Publish(Publish {
                    dup: dup && !qos0,
                    qos,
                    retain,
                    topic,
                    packet_id: (!qos0).then_some(id),
                    payload,
                    properties,
                })
            },
        )
}

type MakeAck = fn(PubAck) -> Packet;

fn pub_ack(v5: bool) -> impl Strategy<Value = Packet> {
    let kinds: Vec<(&'static str, MakeAck)> = vec![
        ("PUBACK", Packet::PubAck),
        ("PUBREC", Packet::PubRec),
        ("PUBREL", Packet::PubRel),
        ("PUBCOMP", Packet::PubComp),
    ];
    select(kinds).prop_flat_map(move |(name, make)| {
        let code = if v5 {
            reason(name).boxed()
        } else {
            Just(ReasonCode::SUCCESS).boxed()
        };
        (packet_id(), code, ack_properties(v5)).prop_map(
            move |(packet_id, reason_code, properties)| {
                make(PubAck {
                    packet_id,
                    reason_code,
                    properties,
                })
            },
        )
    })
}

fn subscription(v5: bool) -> impl Strategy<Value = Subscription> {
    let rh = select(vec![
        RetainHandling::SendAtSubscribe,
        RetainHandling::SendIfNew,
        RetainHandling::DoNotSend,
    ]);
    (topic_filter(), qos(), any::<bool>(), any::<bool>(), rh).prop_map(
        move |(filter, qos, nl, rap, rh)| {
            let options = if v5 {
                SubscriptionOptions {
                    qos,
                    no_local: nl,
                    retain_as_published: rap,
                    retain_handling: rh,
                }
            } else {
                SubscriptionOptions {
                    qos,
                    ..Default::default()
                }
            };
            Subscription { filter, options }
        },
    )
}

fn subscribe(v5: bool) -> impl Strategy<Value = Packet> {
    let props = v5_only(
        v5,
        (of(1..=VARINT_MAX), user_properties()).prop_map(
            |(subscription_identifier, user_properties)| SubscribeProperties {
                subscription_identifier,
                user_properties,
            },
        ),
    );
    (packet_id(), vec(subscription(v5), 1..4), props).prop_map(
        |(packet_id, subscriptions, properties)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                subscriptions,
                properties,
            })
        },
    )
}

fn suback(v5: bool) -> impl Strategy<Value = Packet> {
    let code = if v5 {
        reason("SUBACK").boxed()
    } else {
        select(vec![0, 1, 2, 0x80]).prop_map(ReasonCode).boxed()
    };
    (packet_id(), vec(code, 1..4), ack_properties(v5)).prop_map(
        |(packet_id, reason_codes, properties)| {
            Packet::SubAck(SubAck {
                packet_id,
                reason_codes,
                properties,
            })
        },
    )
}

fn unsubscribe(v5: bool) -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        vec(topic_filter(), 1..4),
        v5_only(v5, user_properties()),
    )
        .prop_map(|(packet_id, filters, user_properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                user_properties,
            })
        })
}

fn unsuback(v5: bool) -> impl Strategy<Value = Packet> {
    let codes = v5_only(v5, vec(reason("UNSUBACK"), 1..4));
    (packet_id(), codes, ack_properties(v5)).prop_map(|(packet_id, reason_codes, properties)| {
        Packet::UnsubAck(UnsubAck {
            packet_id,
            reason_codes,
            properties,
        })
    })
}

fn disconnect(v5: bool) -> impl Strategy<Value = Packet> {
    let code = if v5 {
        reason("DISCONNECT").boxed()
    } else {
        Just(ReasonCode::SUCCESS).boxed()
    };
    let props = v5_only(
        v5,
        (of(any::<u32>()), of(text()), user_properties(), of(text())).prop_map(
            |(se, rs, up, sr)| DisconnectProperties {
                session_expiry_interval: se,
                reason_string: rs,
                user_properties: up,
                server_reference: sr,
            },
        ),
    );
    (code, props).prop_map(|(reason_code, properties)| {
        Packet::Disconnect(Disconnect {
            reason_code,
            properties,
        })
    })
}

fn auth() -> impl Strategy<Value = Packet> {
    let props =
        (of(text()), of(binary()), of(text()), user_properties()).prop_map(|(am, ad, rs, up)| {
            AuthProperties {
                authentication_method: am,
                authentication_data: ad,
                reason_string: rs,
                user_properties: up,
            }
        });
    (reason("AUTH"), props).prop_map(|(reason_code, properties)| {
        Packet::Auth(Auth {
            reason_code,
            properties,
        })
    })
}

/// Any valid packet for a peer speaking `protocol`.
pub fn packet(protocol: Protocol) -> BoxedStrategy<Packet> {
    let v5 = protocol == Protocol::V5;
    let mut all = vec![
        connect(v5).boxed(),
        connack(v5).boxed(),
        publish(v5).boxed(),
        pub_ack(v5).boxed(),
        subscribe(v5).boxed(),
        suback(v5).boxed(),
        unsubscribe(v5).boxed(),
        unsuback(v5).boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect(v5).boxed(),
    ];
    if v5 {
        all.push(auth().boxed());
    }
    proptest::strategy::Union::new(all).boxed()
}

pub fn any_protocol() -> impl Strategy<Value = Protocol> {
    select(vec![Protocol::V311, Protocol::V5])
}
