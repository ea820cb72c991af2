//! Authorization by AWS IoT policies: what a connection may do comes from
//! the policies an authority (the device registry in civitas) attaches to
//! its certificate, and changes there reach live connections at once.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use civitas_broker::{Authority, Refusal};
use civitas_policy::{Context, NamedPolicy, PolicyDocument, standard_device_policy};
use civitas_testkit::{TestBroker, TestBrokerOptions};
use common::{V4Client, connect_fails};
use parking_lot::Mutex;
use rumqttc::{QoS, SubscribeReasonCode};

/// A registry stand-in: certificates by serial, each with its policies.
#[derive(Debug, Default)]
struct Registry {
    certs: Mutex<HashMap<String, (String, Vec<NamedPolicy>)>>,
    generation: AtomicU64,
}

impl Registry {
    fn register(&self, serial: &str, thing: &str, policies: Vec<NamedPolicy>) {
        self.certs
            .lock()
            .insert(serial.to_string(), (thing.to_string(), policies));
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
    fn revoke(&self, serial: &str) {
        self.certs.lock().remove(serial);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Authority for Registry {
    fn connection_policies(
        &self,
        serial: &str,
        client_id: &str,
    ) -> Result<(Vec<NamedPolicy>, Context), Refusal> {
        let certs = self.certs.lock();
        let (thing, policies) = certs
            .get(serial)
            .ok_or_else(|| Refusal(format!("certificate {serial} is not active")))?;
        let attached = thing == client_id;
        let context = Context {
            region: "local".into(),
            account: "000000000000".into(),
            client_id: client_id.to_string(),
            thing_name: attached.then(|| thing.clone()),
            is_attached: attached,
            cert_common_name: Some(thing.clone()),
            cert_serial_number: Some(serial.to_string()),
            ..Context::default()
        };
        Ok((policies.clone(), context))
    }
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
    fn certificate_thing(&self, serial: &str) -> Option<String> {
        self.certs
            .lock()
            .get(serial)
            .map(|(thing, _)| thing.clone())
    }
}

fn standard() -> NamedPolicy {
    NamedPolicy {
        name: "standard".into(),
        version: 1,
        document: standard_device_policy(),
    }
}

fn operator() -> anyhow::Result<NamedPolicy> {
    let document = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
            {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/city/#"},
            {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:*:*:topic/city/*"}]}"#,
    )?;
    Ok(NamedPolicy {
        name: "operator".into(),
        version: 1,
        document,
    })
}

async fn start(registry: &Arc<Registry>) -> anyhow::Result<TestBroker> {
    let authority: Arc<dyn Authority> = registry.clone();
    TestBroker::start_full(TestBrokerOptions::default(), Vec::new(), Some(authority)).await
}

#[tokio::test]
async fn the_standard_policy_confines_a_device_to_its_own_topics() -> anyhow::Result<()> {
    let registry = Arc::new(Registry::default());
    let broker = start(&registry).await?;
    let lamp = broker.device("lamp-1")?;
    registry.register(&lamp.serial_hex, "lamp-1", vec![standard()]);
    let cc = broker.device("control-center")?;
    registry.register(&cc.serial_hex, "control-center", vec![operator()?]);

    let mut watcher = V4Client::connect(broker.mqtt_options(&cc).await?).await?;
    watcher.client.subscribe("city/#", QoS::AtLeastOnce).await?;
    assert_eq!(
        watcher.suback().await?.return_codes,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );

    let mut device = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    device.client.subscribe("city/#", QoS::AtLeastOnce).await?;
    assert_eq!(
        device.suback().await?.return_codes,
        vec![SubscribeReasonCode::Failure]
    );
    device
        .client
        .publish(
            "city/north/things/lamp-2/telemetry",
            QoS::AtLeastOnce,
            false,
            "forged",
        )
        .await?;
    device
        .client
        .publish(
            "city/north/things/lamp-1/telemetry",
            QoS::AtLeastOnce,
            false,
            "genuine",
        )
        .await?;
    let p = watcher.next_publish().await?;
    assert_eq!(p.topic, "city/north/things/lamp-1/telemetry");
    assert_eq!(&p.payload[..], b"genuine");
    assert_eq!(broker.stats().publish_denied.load(Ordering::Relaxed), 1);
    Ok(())
}

#[tokio::test]
async fn an_unregistered_certificate_is_refused_and_a_registered_one_connects() -> anyhow::Result<()>
{
    let registry = Arc::new(Registry::default());
    let broker = start(&registry).await?;
    let stranger = broker.device("lamp-3")?;
    let err = connect_fails(broker.mqtt_options(&stranger).await?).await?;
    assert!(err.contains("NotAuthorized"), "{err}");

    let lamp = broker.device("lamp-4")?;
    registry.register(&lamp.serial_hex, "lamp-4", vec![standard()]);
    V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    Ok(())
}

#[tokio::test]
async fn a_certificate_connects_as_its_thing_whatever_its_common_name() -> anyhow::Result<()> {
    let registry = Arc::new(Registry::default());
    let broker = start(&registry).await?;
    // Fleet provisioning names a certificate before its thing exists.
    let cert = broker.device("fleet-3f9a")?;
    registry.register(&cert.serial_hex, "lamp-6", vec![standard()]);
    let as_cn = broker
        .mqtt_options_with("fleet-3f9a", civitas_testkit::ClientTls::Device(&cert))
        .await?;
    let err = connect_fails(as_cn).await?;
    assert!(err.contains("BadClientId"), "{err}");
    let as_thing = broker
        .mqtt_options_with("lamp-6", civitas_testkit::ClientTls::Device(&cert))
        .await?;
    V4Client::connect(as_thing).await?;
    Ok(())
}

#[tokio::test]
async fn revocation_disconnects_the_live_session_within_a_second() -> anyhow::Result<()> {
    let registry = Arc::new(Registry::default());
    let broker = start(&registry).await?;
    let lamp = broker.device("lamp-5")?;
    registry.register(&lamp.serial_hex, "lamp-5", vec![standard()]);
    let mut device = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;

    let revoked_at = Instant::now();
    registry.revoke(&lamp.serial_hex);
    device.closed().await?;
    let took = revoked_at.elapsed();
    assert!(took < Duration::from_secs(1), "disconnected after {took:?}");
    let err = connect_fails(broker.mqtt_options(&lamp).await?).await?;
    assert!(err.contains("NotAuthorized"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_policy_change_applies_to_live_connections() -> anyhow::Result<()> {
    let registry = Arc::new(Registry::default());
    let broker = start(&registry).await?;
    let cc = broker.device("control-center")?;
    registry.register(&cc.serial_hex, "control-center", vec![standard()]);
    let mut c = V4Client::connect(broker.mqtt_options(&cc).await?).await?;
    c.client.subscribe("city/#", QoS::AtLeastOnce).await?;
    assert_eq!(
        c.suback().await?.return_codes,
        vec![SubscribeReasonCode::Failure]
    );

    registry.register(
        &cc.serial_hex,
        "control-center",
        vec![standard(), operator()?],
    );
    // The broker notices within its poll interval; retry until it has.
    wait_for_granted(&mut c).await
}

async fn wait_for_granted(c: &mut V4Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        c.client.subscribe("city/#", QoS::AtLeastOnce).await?;
        if c.suback().await?.return_codes == vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)] {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the new policy never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
