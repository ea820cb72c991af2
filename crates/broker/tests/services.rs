//! Topic services: a handler for reserved topics answers each request in
//! order, as the broker's own messages.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use civitas_broker::{Audience, ServiceReply, ServiceRequest, Ticket, TopicService};
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
            audience: Audience::Subscribers,
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

/// Admits two requests in flight; handling waits until the test opens the
/// gate, so the third and fourth arrive while two are counted.
#[derive(Debug, Default)]
struct Gated {
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

/// Releases one in-flight request when the broker drops the ticket.
struct Counted(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Gated {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl TopicService for Gated {
    fn handles(&self, topic: &str) -> bool {
        topic.starts_with("$aws/things/") && topic.ends_with("/gated")
    }
    fn admit(&self, request: &ServiceRequest) -> Result<Ticket, Vec<ServiceReply>> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.in_flight.fetch_add(1, SeqCst) >= 2 {
            self.in_flight.fetch_sub(1, SeqCst);
            return Err(vec![ServiceReply {
                topic: format!("{}/rejected", request.topic),
                payload: request.payload.clone(),
                qos: civitas_mqtt::QoS::AtLeastOnce,
                audience: Audience::Subscribers,
            }]);
        }
        Ok(Ticket::new(Counted(self.in_flight.clone())))
    }
    fn handle(&self, request: ServiceRequest) -> Vec<ServiceReply> {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        vec![ServiceReply {
            topic: format!("{}/accepted", request.topic),
            payload: request.payload,
            qos: civitas_mqtt::QoS::AtLeastOnce,
            audience: Audience::Subscribers,
        }]
    }
}

#[tokio::test]
async fn admission_refuses_at_once_and_tickets_last_until_handled() -> anyhow::Result<()> {
    let gated = Arc::new(Gated::default());
    let service: Arc<dyn TopicService> = gated.clone();
    let factory: ServiceFactory = Arc::new(move |_| service.clone());
    let broker =
        TestBroker::start_with_services(TestBrokerOptions::default(), vec![factory]).await?;
    let lamp = broker.device("lamp-1")?;
    let mut c = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    c.client
        .subscribe("$aws/things/lamp-1/gated/+", QoS::AtLeastOnce)
        .await?;
    c.suback().await?;
    for i in 0..4 {
        c.client
            .publish(
                "$aws/things/lamp-1/gated",
                QoS::AtLeastOnce,
                false,
                format!("req{i}"),
            )
            .await?;
    }
    // Refusals come while the admitted requests are still blocked.
    for i in 2..4 {
        let p = c.next_publish().await?;
        assert_eq!(p.topic, "$aws/things/lamp-1/gated/rejected");
        assert_eq!(p.payload, Bytes::from(format!("req{i}")));
    }
    assert_eq!(gated.in_flight.load(std::sync::atomic::Ordering::SeqCst), 2);
    gated.open();
    for i in 0..2 {
        let p = c.next_publish().await?;
        assert_eq!(p.topic, "$aws/things/lamp-1/gated/accepted");
        assert_eq!(p.payload, Bytes::from(format!("req{i}")));
    }
    civitas_testkit::wait_for("tickets released", common::TIMEOUT, || {
        gated.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0
    })
    .await?;
    Ok(())
}

/// Answers each request three times: privately, privately on a topic the
/// requester may not receive, and to every subscriber.
#[derive(Debug)]
struct Private;

impl TopicService for Private {
    fn handles(&self, topic: &str) -> bool {
        topic == "svc/request"
    }
    fn handle(&self, request: ServiceRequest) -> Vec<ServiceReply> {
        let qos = civitas_mqtt::QoS::AtLeastOnce;
        let secret = format!(
            "{} {}",
            request.client_id,
            request.certificate_serial.unwrap_or_default()
        );
        vec![
            ServiceReply::to_requester("svc/private", secret.clone(), qos),
            ServiceReply::to_requester("svc/denied/private", secret, qos),
            ServiceReply::to_subscribers("svc/public", "news", qos),
        ]
    }
}

#[tokio::test]
async fn requester_replies_reach_only_the_requesting_connection() -> anyhow::Result<()> {
    let service: Arc<dyn TopicService> = Arc::new(Private);
    let factory: ServiceFactory = Arc::new(move |_| service.clone());
    let mut options = TestBrokerOptions::default();
    options.config.listeners[0].permissions = civitas_broker::Permissions {
        publish: vec!["svc/#".into()],
        subscribe: vec!["svc/#".into()],
        deny_subscribe: vec!["svc/denied/#".into()],
        ..civitas_broker::Permissions::default()
    };
    let broker = TestBroker::start_with_services(options, vec![factory]).await?;
    let lamp_a = broker.device("lamp-a")?;
    let lamp_b = broker.device("lamp-b")?;
    let mut a = V4Client::connect(broker.mqtt_options(&lamp_a).await?).await?;
    let mut b = V4Client::connect(broker.mqtt_options(&lamp_b).await?).await?;
    for c in [&mut a, &mut b] {
        c.client.subscribe("svc/#", QoS::AtLeastOnce).await?;
        c.suback().await?;
    }
    a.client
        .publish("svc/request", QoS::AtLeastOnce, false, "hello")
        .await?;

    // Each session receives in order, so what comes before the public
    // reply is everything the service sent it.
    let mut seen_by_a = Vec::new();
    loop {
        let p = a.next_publish().await?;
        seen_by_a.push((p.topic.clone(), p.payload.clone()));
        if p.topic == "svc/public" {
            break;
        }
    }
    assert_eq!(
        seen_by_a,
        vec![
            ("svc/request".to_string(), Bytes::from("hello")),
            (
                "svc/private".to_string(),
                Bytes::from(format!("lamp-a {}", lamp_a.serial_hex))
            ),
            ("svc/public".to_string(), Bytes::from("news")),
        ]
    );
    let mut seen_by_b = Vec::new();
    loop {
        let p = b.next_publish().await?;
        seen_by_b.push(p.topic.clone());
        if p.topic == "svc/public" {
            break;
        }
    }
    assert_eq!(seen_by_b, vec!["svc/request", "svc/public"]);
    Ok(())
}
