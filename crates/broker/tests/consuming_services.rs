//! A topic service that consumes its messages (AWS Basic Ingest): the
//! service alone gets them — no subscriber, observer or retained store —
//! and the publisher is acknowledged with success.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use civitas_broker::{MessageObserver, ServiceReply, ServiceRequest, TopicService};
use civitas_mqtt::{Packet, QoS, ReasonCode};
use civitas_store::StoredMessage;
use civitas_testkit::{ServiceFactory, TestBroker, TestBrokerOptions, wait_for};
use common::raw::{RawClient, publish_packet};
use parking_lot::Mutex;

/// Topic, payload, client id and user properties of a request.
type Taken = (String, Bytes, String, Vec<(String, String)>);

#[derive(Debug, Default)]
struct Ingest(Mutex<Vec<Taken>>);

impl TopicService for Ingest {
    fn handles(&self, topic: &str) -> bool {
        topic.starts_with("$aws/rules/")
    }
    fn consumes(&self) -> bool {
        true
    }
    fn handle(&self, request: ServiceRequest) -> Vec<ServiceReply> {
        self.0.lock().push((
            request.topic,
            request.payload,
            request.client_id.to_string(),
            request.user_properties,
        ));
        Vec::new()
    }
}

#[derive(Debug, Default)]
struct Seen(Mutex<Vec<String>>);

impl MessageObserver for Seen {
    fn observe(&self, message: &Arc<StoredMessage>, _: Option<&str>) {
        self.0.lock().push(message.topic.clone());
    }
}

#[tokio::test]
async fn consumed_messages_reach_the_service_alone() -> anyhow::Result<()> {
    let ingest = Arc::new(Ingest::default());
    let service: Arc<dyn TopicService> = ingest.clone();
    let factory: ServiceFactory = Arc::new(move |_| service.clone());
    let seen = Arc::new(Seen::default());
    let broker = TestBroker::start_observed_with_services(
        TestBrokerOptions::with_anonymous(),
        vec![factory],
        vec![seen.clone() as Arc<dyn MessageObserver>],
    )
    .await?;
    let addr = broker.addr_of("anon");
    let mut watcher = RawClient::v5(addr, "watcher").await?;
    watcher.subscribe("$aws/rules/#", QoS::AtLeastOnce).await?;
    watcher.subscribe("marker", QoS::AtLeastOnce).await?;

    let mut lamp = RawClient::v5(addr, "lamp-1").await?;
    let mut p = publish_packet(
        "$aws/rules/lamp_power/city/a",
        QoS::AtLeastOnce,
        None,
        "{\"w\":1}",
    );
    p.retain = true;
    // The service gets the PUBLISH's user properties (a signature, say).
    let properties = vec![
        (
            "civitas-signature".to_string(),
            "eyJhbGciOiJFUzI1NiJ9..c2ln".to_string(),
        ),
        ("site".to_string(), "north".to_string()),
    ];
    p.properties.user_properties = properties.clone();
    // Success, not "no matching subscribers": the message was taken.
    assert_eq!(lamp.publish(p).await?, ReasonCode::SUCCESS);
    let q2 = publish_packet("$aws/rules/lamp_power", QoS::ExactlyOnce, None, "2");
    assert_eq!(lamp.publish(q2).await?, ReasonCode::SUCCESS);
    wait_for("the service to get both", common::TIMEOUT, || {
        ingest.0.lock().len() == 2
    })
    .await?;
    assert_eq!(
        ingest.0.lock()[0],
        (
            "$aws/rules/lamp_power/city/a".to_string(),
            Bytes::from_static(b"{\"w\":1}"),
            "lamp-1".to_string(),
            properties,
        )
    );
    assert!(ingest.0.lock()[1].3.is_empty());

    // The watcher gets the marker and nothing before it; a new subscriber
    // finds nothing retained; the observer saw the marker, not them.
    lamp.publish(publish_packet("marker", QoS::AtLeastOnce, None, "m"))
        .await?;
    let first = watcher.recv_publish().await?;
    assert_eq!(first.topic, "marker");
    let mut late = RawClient::v5(addr, "late").await?;
    late.subscribe("$aws/rules/#", QoS::AtLeastOnce).await?;
    let retained: Vec<_> = late
        .drain()
        .await?
        .into_iter()
        .filter(|p| matches!(p, Packet::Publish(_)))
        .collect();
    assert!(retained.is_empty(), "retained: {retained:?}");
    let observed = seen.0.lock().clone();
    assert!(observed.contains(&"marker".to_string()), "{observed:?}");
    assert!(
        !observed.iter().any(|t| t.starts_with("$aws/rules/")),
        "{observed:?}"
    );
    Ok(())
}
