//! Topic services: a handler for reserved topics answers each request in
//! order, as the broker's own messages.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use civitas_broker::{ServiceReply, ServiceRequest, TopicService};
use civitas_testkit::{ServiceFactory, TestBroker, TestBrokerOptions};
use common::V4Client;
use rumqttc::QoS;

/// Echoes a counter per request so the test can see order and identity.
#[derive(Debug, Default)]
struct Echo(std::sync::atomic::AtomicU64);

impl TopicService for Echo {
    fn handles(&self, topic: &str) -> bool {
        topic.starts_with("$aws/things/") && topic.ends_with("/echo")
    }
    fn handle(&self, request: ServiceRequest) -> Vec<ServiceReply> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Slow down early requests: order must hold anyway.
        if n < 3 {
            std::thread::sleep(std::time::Duration::from_millis(30 - 10 * n));
        }
        vec![ServiceReply {
            topic: format!("{}/accepted", request.topic),
            payload: Bytes::from(format!(
                "{n} {} {}",
                request.client_id,
                String::from_utf8_lossy(&request.payload)
            )),
            qos: civitas_mqtt::QoS::AtLeastOnce,
        }]
    }
}

#[tokio::test]
async fn requests_are_answered_in_order() -> anyhow::Result<()> {
    let echo: Arc<dyn TopicService> = Arc::new(Echo::default());
    let factory: ServiceFactory = Arc::new(move |_| echo.clone());
    let broker =
        TestBroker::start_with_services(TestBrokerOptions::default(), vec![factory]).await?;
    let lamp = broker.device("lamp-1")?;
    let mut c = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    c.client
        .subscribe("$aws/things/lamp-1/echo/accepted", QoS::AtLeastOnce)
        .await?;
    c.suback().await?;
    for i in 0..5 {
        c.client
            .publish(
                "$aws/things/lamp-1/echo",
                QoS::AtLeastOnce,
                false,
                format!("req{i}"),
            )
            .await?;
    }
    for i in 0..5 {
        let p = c.next_publish().await?;
        assert_eq!(p.topic, "$aws/things/lamp-1/echo/accepted");
        assert_eq!(p.payload, Bytes::from(format!("{i} lamp-1 req{i}")));
    }
    Ok(())
}
