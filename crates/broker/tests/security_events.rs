//! The broker reports security events — connections accepted and refused,
//! refused TLS handshakes, denied publishes, disconnections — for the
//! audit log.

mod common;

use std::sync::Arc;
use std::time::Duration;

use civitas_broker::{SecurityEvent, SecurityLog, SecurityOutcome};
use civitas_testkit::{TestBroker, TestBrokerOptions, wait_for};
use common::{V4Client, connect_fails};
use parking_lot::Mutex;
use rumqttc::QoS;

#[derive(Debug, Default)]
struct Recorded(Mutex<Vec<SecurityEvent>>);

impl SecurityLog for Recorded {
    fn record(&self, event: SecurityEvent) {
        self.0.lock().push(event);
    }
}

impl Recorded {
    fn has(&self, actor: &str, action: &str, outcome: SecurityOutcome) -> bool {
        self.0
            .lock()
            .iter()
            .any(|e| e.actor.starts_with(actor) && e.action == action && e.outcome == outcome)
    }
}

#[tokio::test]
async fn connections_refusals_and_denials_are_reported() -> anyhow::Result<()> {
    let log = Arc::new(Recorded::default());
    let sink: Arc<dyn SecurityLog> = log.clone();
    let broker = TestBroker::start_with_security_log(TestBrokerOptions::default(), sink).await?;
    let t = Duration::from_secs(10);

    let lamp = broker.device("lamp-1")?;
    let device = V4Client::connect(broker.mqtt_options(&lamp).await?).await?;
    assert!(log.has("device:lamp-1", "device.connect", SecurityOutcome::Success));
    let connect = log
        .0
        .lock()
        .iter()
        .find(|e| e.action == "device.connect")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no connect event"))?;
    assert!(
        connect
            .details
            .contains(&("certificate", lamp.serial_hex.clone()))
    );

    device
        .client
        .publish(
            "city/a/things/lamp-2/telemetry",
            QoS::AtLeastOnce,
            false,
            "x",
        )
        .await?;
    wait_for("denied publish reported", t, || {
        log.has("device:lamp-1", "device.publish", SecurityOutcome::Denied)
    })
    .await?;

    let mut spoof = broker.mqtt_options(&lamp).await?;
    spoof.set_client_id("lamp-9".to_string());
    connect_fails(spoof).await?;
    assert!(log.has("device:lamp-9", "device.connect", SecurityOutcome::Denied));

    let foreign = broker.pki.foreign_device("lamp-3")?;
    connect_fails(broker.mqtt_options(&foreign).await?).await?;
    wait_for("refused handshake reported", t, || {
        log.has("peer:", "tls.handshake", SecurityOutcome::Failure)
    })
    .await?;

    device.client.disconnect().await?;
    wait_for("disconnect reported", t, || {
        log.has(
            "device:lamp-1",
            "device.disconnect",
            SecurityOutcome::Success,
        )
    })
    .await?;
    Ok(())
}
