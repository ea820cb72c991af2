//! MQTT 5 routing: shared subscriptions, subscription identifiers, No
//! Local, overlapping subscriptions, and the application properties a
//! message carries from publisher to subscriber unchanged (request and
//! response, user properties, content type, payload format).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use civitas_mqtt::{Packet, Publish, QoS, ReasonCode, SubscriptionOptions, Unsubscribe};
use civitas_testkit::{TestBroker, TestBrokerOptions, wait_for};
use common::TIMEOUT;
use common::raw::{RawClient, ack, options, publish_packet};
use common::v5::{V5Client, topic};
use rumqttc::v5::mqttbytes::QoS as RQoS;
use rumqttc::v5::mqttbytes::v5::PublishProperties as RProperties;

async fn anon_broker() -> anyhow::Result<TestBroker> {
    TestBroker::start_with(TestBrokerOptions::with_anonymous()).await
}

fn payloads(packets: &[Packet]) -> Vec<String> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(String::from_utf8_lossy(&p.payload).into_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn shared_subscription_gives_each_message_to_one_member_per_group() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut g1 = RawClient::v5(addr, "worker-g1").await?;
    g1.subscribe("$share/workers/jobs/+", QoS::AtMostOnce)
        .await?;
    let mut g2 = RawClient::v5(addr, "worker-g2").await?;
    g2.subscribe("$share/workers/jobs/+", QoS::AtMostOnce)
        .await?;
    let mut audit = RawClient::v5(addr, "auditor").await?;
    audit
        .subscribe("$share/audit/jobs/+", QoS::AtMostOnce)
        .await?;
    let mut plain = RawClient::v5(addr, "plain").await?;
    plain.subscribe("jobs/+", QoS::AtMostOnce).await?;

    let mut publisher = RawClient::v5(addr, "dispatcher").await?;
    let all: Vec<String> = (0..6).map(|i| format!("job-{i}")).collect();
    for p in &all {
        publisher
            .publish(publish_packet("jobs/new", QoS::AtLeastOnce, None, p))
            .await?;
    }
    let got1 = payloads(&g1.drain().await?);
    let got2 = payloads(&g2.drain().await?);
    // Round robin: three each, alternating.
    assert_eq!(got1.len(), 3, "{got1:?} / {got2:?}");
    assert_eq!(got2.len(), 3, "{got1:?} / {got2:?}");
    let mut union: Vec<String> = got1.iter().chain(&got2).cloned().collect();
    union.sort();
    assert_eq!(union, all, "each message exactly once in the group");
    assert_ne!(got1[0], got2[0]);
    // A group of one gets everything; so does a plain subscriber.
    assert_eq!(payloads(&audit.drain().await?), all);
    assert_eq!(payloads(&plain.drain().await?), all);

    // A member leaving leaves the others all the work.
    let active = || broker.stats().connections_active.load(Ordering::Relaxed);
    let before = active();
    drop(g2);
    wait_for("the member to leave", TIMEOUT, || active() < before).await?;
    publisher
        .publish(publish_packet("jobs/new", QoS::AtLeastOnce, None, "late"))
        .await?;
    let late = payloads(&g1.drain().await?);
    assert_eq!(late, vec!["late".to_string()]);
    Ok(())
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_once_with_every_identifier() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut c = RawClient::v5(addr, "dashboard").await?;
    c.subscribe_with(&[("plant/+/temp", options(QoS::AtMostOnce))], Some(11))
        .await?;
    c.subscribe_with(&[("plant/#", options(QoS::ExactlyOnce))], Some(22))
        .await?;
    c.subscribe_with(&[("plant/a/temp", options(QoS::AtLeastOnce))], None)
        .await?;

    let mut publisher = RawClient::v5(addr, "sensor").await?;
    publisher
        .publish(publish_packet(
            "plant/a/temp",
            QoS::ExactlyOnce,
            None,
            "21.5",
        ))
        .await?;
    publisher
        .publish(publish_packet(
            "plant/b/temp",
            QoS::AtLeastOnce,
            None,
            "19.0",
        ))
        .await?;
    publisher
        .publish(publish_packet("plant/a/hum", QoS::AtMostOnce, None, "40"))
        .await?;

    let p = c.recv_publish().await?;
    assert_eq!(p.topic, "plant/a/temp");
    assert_eq!(p.qos, QoS::ExactlyOnce, "the highest granted QoS");
    let mut ids = p.properties.subscription_identifiers.clone();
    ids.sort();
    assert_eq!(ids, vec![11, 22], "one PUBLISH carrying both identifiers");
    c.send(&Packet::PubRec(ack(p.packet_id.unwrap_or(0))))
        .await?;

    let mut rest = Vec::new();
    for packet in c.drain().await? {
        match packet {
            Packet::Publish(p) => rest.push(p),
            Packet::PubRel(r) => c.send(&Packet::PubComp(ack(r.packet_id))).await?,
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    let summary: Vec<(String, QoS, Vec<u32>)> = rest
        .iter()
        .map(|p| {
            let mut ids = p.properties.subscription_identifiers.clone();
            ids.sort();
            (p.topic.clone(), p.qos, ids)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("plant/b/temp".into(), QoS::AtLeastOnce, vec![11, 22]),
            ("plant/a/hum".into(), QoS::AtMostOnce, vec![22]),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn no_local_keeps_a_clients_own_messages_from_it() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut chat = RawClient::v5(addr, "alice").await?;
    let no_local = SubscriptionOptions {
        no_local: true,
        ..options(QoS::AtLeastOnce)
    };
    chat.subscribe_with(&[("room/1", no_local)], None).await?;
    let mut bob = RawClient::v5(addr, "bob").await?;
    bob.subscribe("room/1", QoS::AtLeastOnce).await?;

    chat.publish(publish_packet(
        "room/1",
        QoS::AtLeastOnce,
        None,
        "from alice",
    ))
    .await?;
    bob.publish(publish_packet("room/1", QoS::AtLeastOnce, None, "from bob"))
        .await?;
    let alice_got = payloads(&chat.drain().await?);
    assert_eq!(alice_got, vec!["from bob".to_string()]);
    let bob_got: Vec<String> = payloads(&bob.drain().await?);
    assert_eq!(
        bob_got,
        vec!["from alice".to_string(), "from bob".to_string()]
    );
    Ok(())
}

#[tokio::test]
async fn application_properties_pass_through_unchanged() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut sub = RawClient::v5(addr, "consumer").await?;
    sub.subscribe("data/#", QoS::AtLeastOnce).await?;
    let mut publisher = RawClient::v5(addr, "producer").await?;
    let mut p: Publish = publish_packet("data/1", QoS::AtLeastOnce, None, "{\"t\":1}");
    p.properties.payload_format_indicator = Some(1);
    p.properties.content_type = Some("application/json; charset=utf-8".into());
    p.properties.response_topic = Some("data/1/reply".into());
    p.properties.correlation_data = Some(Bytes::from_static(&[0, 0xff, 7]));
    p.properties.user_properties = vec![
        ("b".into(), "2".into()),
        ("a".into(), "1".into()),
        ("b".into(), "3".into()),
        ("".into(), "".into()),
    ];
    publisher.publish(p.clone()).await?;
    let got = sub.recv_publish().await?;
    assert_eq!(got.payload, p.payload);
    assert_eq!(got.properties, p.properties, "every property, in order");
    Ok(())
}

#[tokio::test]
async fn request_response_over_mutual_tls() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let cc = broker.device("control-center")?;
    let lamp = broker.device("lamp-60")?;
    let request_topic = "city/south/things/lamp-60/cmd/dim";
    let response_topic = "city/south/things/lamp-60/cmd/dim/reply";

    let mut device = V5Client::connect(broker.mqtt5_options(&lamp).await?).await?;
    device
        .client
        .subscribe(request_topic, RQoS::AtLeastOnce)
        .await?;
    device.suback().await?;
    let mut console = V5Client::connect(broker.mqtt5_options(&cc).await?).await?;
    console
        .client
        .subscribe(response_topic, RQoS::AtLeastOnce)
        .await?;
    console.suback().await?;

    let request_properties = RProperties {
        response_topic: Some(response_topic.into()),
        correlation_data: Some(Bytes::from_static(b"req-42")),
        user_properties: vec![("operator".into(), "night shift".into())],
        content_type: Some("text/plain".into()),
        payload_format_indicator: Some(1),
        ..Default::default()
    };
    console
        .client
        .publish_with_properties(
            request_topic,
            RQoS::AtLeastOnce,
            false,
            "30%",
            request_properties,
        )
        .await?;

    let request = device.next_publish().await?;
    assert_eq!(topic(&request), request_topic);
    let props = request.properties.clone().unwrap_or_default();
    assert_eq!(props.response_topic.as_deref(), Some(response_topic));
    assert_eq!(props.correlation_data.as_deref(), Some(&b"req-42"[..]));
    assert_eq!(
        props.user_properties,
        vec![("operator".to_string(), "night shift".to_string())]
    );
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    assert_eq!(props.payload_format_indicator, Some(1));

    // The device answers where it was told to, echoing the correlation.
    let reply_properties = RProperties {
        correlation_data: props.correlation_data.clone(),
        user_properties: vec![("status".into(), "ok".into())],
        ..Default::default()
    };
    device
        .client
        .publish_with_properties(
            props.response_topic.clone().unwrap_or_default(),
            RQoS::AtLeastOnce,
            false,
            "dimmed",
            reply_properties,
        )
        .await?;
    let reply = console.next_publish().await?;
    assert_eq!(topic(&reply), response_topic);
    assert_eq!(reply.payload, "dimmed");
    let props = reply.properties.unwrap_or_default();
    assert_eq!(props.correlation_data.as_deref(), Some(&b"req-42"[..]));
    let user: BTreeMap<String, String> = props.user_properties.into_iter().collect();
    assert_eq!(user.get("status").map(String::as_str), Some("ok"));
    Ok(())
}

#[tokio::test]
async fn unsubscribe_reports_each_filter_and_stops_delivery() -> anyhow::Result<()> {
    let broker = anon_broker().await?;
    let addr = broker.addr_of("anon");
    let mut c = RawClient::v5(addr, "reader").await?;
    c.subscribe("news/#", QoS::AtMostOnce).await?;
    c.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: 77,
        filters: vec!["news/#".into(), "sport/#".into()],
        user_properties: Vec::new(),
    }))
    .await?;
    match c.recv().await? {
        Packet::UnsubAck(a) => {
            assert_eq!(a.packet_id, 77);
            assert_eq!(
                a.reason_codes,
                vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]
            );
        }
        other => anyhow::bail!("expected UNSUBACK, got {other:?}"),
    }
    let mut publisher = RawClient::v5(addr, "press").await?;
    let code = publisher
        .publish(publish_packet("news/1", QoS::AtLeastOnce, None, "x"))
        .await?;
    assert_eq!(code, ReasonCode::NO_MATCHING_SUBSCRIBERS);
    assert!(c.drain().await?.is_empty());
    Ok(())
}
