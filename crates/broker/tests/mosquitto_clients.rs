//! Interoperability with the mosquitto command-line clients over mutual
//! TLS, in MQTT 3.1.1 and 5: delivery at each QoS, retained messages,
//! wills on abrupt death, persistent sessions across a broker restart,
//! shared subscriptions, MQTT 5 properties, and the refusal of bad client
//! certificates.
//!
//! A subscriber is known to be in place when it prints a retained
//! "ready" marker that the broker only sends after registering every
//! filter of the SUBSCRIBE (mosquitto_sub buffers its debug log, so the
//! SUBACK line cannot be awaited).

#[path = "mosquitto_clients/clients.rs"]
mod clients;

use civitas_broker::IdentityGrant;
use civitas_testkit::{TestBroker, TestBrokerOptions};
use clients::{FORMAT, Mq, Msg, Version, things};

/// Run a scenario once per protocol version, as `<scenario>::v311` and
/// `<scenario>::v5`.
macro_rules! for_both_versions {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn v311() -> anyhow::Result<()> {
                super::$scenario(super::Version::V311).await
            }
            #[tokio::test]
            async fn v5() -> anyhow::Result<()> {
                super::$scenario(super::Version::V5).await
            }
        }
    )*};
}

for_both_versions!(
    each_qos_is_delivered,
    retained_message_reaches_later_subscriber_until_cleared,
    will_is_published_when_the_client_is_killed,
    persistent_session_resumes_across_restart,
    bad_certificates_are_refused,
);

async fn each_qos_is_delivered(version: Version) -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let Some(mq) = Mq::new(&broker, version) else {
        return Ok(());
    };
    let lamp = broker.device("lamp-1")?;
    let cc = broker.device("control-center")?;
    let marker = things("lamp-1", "ready");
    mq.publish(&lamp, &marker, "ready", 1, true).await?;

    let mut sub = mq.subscribe(Some(&cc), &["city/+/things/lamp-1/#"], 2, &["-C", "4"])?;
    sub.ready(&marker).await?;
    for qos in 0..=2 {
        let topic = things("lamp-1", &format!("telemetry/{qos}"));
        mq.publish(&lamp, &topic, &format!("reading at qos {qos}"), qos, false)
            .await?;
    }
    let mut got = sub.messages().await?;
    // Separate publisher connections: arrival order is not guaranteed.
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    let want: Vec<Msg> = (0..=2)
        .map(|qos| Msg {
            qos,
            retain: false,
            topic: things("lamp-1", &format!("telemetry/{qos}")),
            payload: format!("reading at qos {qos}"),
        })
        .collect();
    assert_eq!(got, want);
    Ok(())
}

async fn retained_message_reaches_later_subscriber_until_cleared(
    version: Version,
) -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let Some(mq) = Mq::new(&broker, version) else {
        return Ok(());
    };
    let lamp = broker.device("lamp-2")?;
    let cc = broker.device("control-center")?;
    let state = things("lamp-2", "state");
    mq.publish(&lamp, &state, "on", 1, true).await?;

    let sub = mq.subscribe(Some(&cc), &[&state], 1, &["-C", "1"])?;
    let got = sub.messages().await?;
    assert_eq!(
        got,
        vec![Msg {
            qos: 1,
            retain: true,
            topic: state.clone(),
            payload: "on".into(),
        }]
    );

    // An empty retained payload clears it: a later subscriber to the whole
    // subtree gets only the marker, then live traffic.
    mq.publish_with(&lamp, &["-t", &state, "-q", "1", "-r", "-n"])
        .await?;
    let marker = things("lamp-2", "ready");
    mq.publish(&lamp, &marker, "ready", 1, true).await?;
    let mut sub = mq.subscribe(Some(&cc), &["city/+/things/lamp-2/#"], 1, &["-C", "2"])?;
    sub.ready(&marker).await?;
    mq.publish(&lamp, &state, "live", 1, false).await?;
    let got = sub.messages().await?;
    assert_eq!(
        got,
        vec![Msg {
            qos: 1,
            retain: false,
            topic: state,
            payload: "live".into(),
        }],
        "a cleared retained message must not be sent"
    );
    Ok(())
}

async fn will_is_published_when_the_client_is_killed(version: Version) -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let Some(mq) = Mq::new(&broker, version) else {
        return Ok(());
    };
    let lamp = broker.device("lamp-3")?;
    let cc = broker.device("control-center")?;
    let marker = things("lamp-3", "ready");
    let status = things("lamp-3", "status");
    mq.publish(&lamp, &marker, "ready", 1, true).await?;

    let mut watcher = mq.subscribe(Some(&cc), &[&status, &marker], 1, &["-C", "2"])?;
    watcher.ready(&marker).await?;

    let will = [
        "--will-topic",
        status.as_str(),
        "--will-payload",
        "offline",
        "--will-qos",
        "1",
    ];
    let mut device = mq.subscribe(Some(&lamp), &[&marker], 1, &will)?;
    // Receiving the marker proves the device's CONNECT (and will) was
    // accepted.
    device.ready(&marker).await?;
    device.kill().await?;

    let got = watcher.messages().await?;
    assert_eq!(
        got,
        vec![Msg {
            qos: 1,
            retain: false,
            topic: status,
            payload: "offline".into(),
        }]
    );
    Ok(())
}

async fn persistent_session_resumes_across_restart(version: Version) -> anyhow::Result<()> {
    let mut broker = TestBroker::start().await?;
    let lamp = broker.device("lamp-4")?;
    let cc = broker.device("control-center")?;
    let telemetry = things("lamp-4", "telemetry");
    {
        let Some(mq) = Mq::new(&broker, version) else {
            return Ok(());
        };
        // -E: exit (with a normal DISCONNECT) once the SUBACK is in.
        let sub = mq.subscribe(Some(&cc), &["city/+/things/+/telemetry"], 1, &["-c", "-E"])?;
        assert_eq!(sub.messages().await?, vec![]);
        for i in 0..3 {
            mq.publish(&lamp, &telemetry, &format!("while away {i}"), 1, false)
                .await?;
        }
    }
    // Acknowledged QoS 1 messages are durable: they survive a restart.
    broker.restart().await?;
    let Some(mq) = Mq::new(&broker, version) else {
        return Ok(());
    };
    let sub = mq.subscribe(
        Some(&cc),
        &["city/+/things/+/telemetry"],
        1,
        &["-c", "-C", "3"],
    )?;
    let got = sub.messages().await?;
    let want: Vec<Msg> = (0..3)
        .map(|i| Msg {
            qos: 1,
            retain: false,
            topic: telemetry.clone(),
            payload: format!("while away {i}"),
        })
        .collect();
    assert_eq!(got, want);
    Ok(())
}

async fn bad_certificates_are_refused(version: Version) -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let Some(mq) = Mq::new(&broker, version) else {
        return Ok(());
    };
    let lamp = broker.device("lamp-6")?;
    let marker = things("lamp-6", "ready");
    mq.publish(&lamp, &marker, "ready", 1, true).await?;

    // Each would receive the retained marker at once if it were let in.
    let foreign = broker.pki.foreign_device("control-center")?;
    let expired = broker.pki.expired_device("control-center")?;
    let attempts = [
        ("foreign CA", Some(&foreign)),
        ("expired", Some(&expired)),
        ("no certificate", None),
    ];
    for (what, who) in attempts {
        let sub = mq.subscribe(who, &["city/#"], 1, &["-C", "1"])?;
        let (status, messages, stderr) = sub.finish().await?;
        assert!(
            !status.success(),
            "{what}: mosquitto_sub succeeded: {messages:?}"
        );
        assert_eq!(
            messages,
            vec![],
            "{what}: messages leaked; stderr: {stderr}"
        );
    }
    let failures = broker
        .stats()
        .tls_failures
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(failures >= 3, "{failures} TLS failures counted, expected 3");

    // The same subscription with a valid certificate gets the marker.
    let cc = broker.device("control-center")?;
    let sub = mq.subscribe(Some(&cc), &["city/#"], 1, &["-C", "1"])?;
    assert_eq!(sub.messages().await?.len(), 1);
    Ok(())
}

/// Two MQTT 5 subscribers in one `$share` group: every message goes to
/// exactly one of them, and the broker spreads them over both.
#[tokio::test]
async fn shared_subscription_delivers_each_message_once_across_the_group() -> anyhow::Result<()> {
    let mut options = TestBrokerOptions::default();
    options.config.listeners[0]
        .permissions
        .identities
        .push(IdentityGrant {
            identities: vec!["dispatch".into()],
            publish: vec![],
            subscribe: vec!["city/#".into()],
        });
    let broker = TestBroker::start_with(options).await?;
    let Some(mq) = Mq::new(&broker, Version::V5) else {
        return Ok(());
    };
    let lamp = broker.device("lamp-5")?;
    let marker = things("lamp-5", "ready");
    let telemetry = things("lamp-5", "telemetry");
    mq.publish(&lamp, &marker, "ready", 1, true).await?;

    let shared = "$share/fleet/city/+/things/lamp-5/telemetry";
    let mut members = Vec::new();
    for name in ["control-center", "dispatch"] {
        let who = broker.device(name)?;
        let mut sub = mq.subscribe(Some(&who), &[shared, &marker], 1, &[])?;
        sub.ready(&marker).await?;
        members.push((name, sub));
    }

    let sent: Vec<String> = (0..20).map(|i| format!("reading {i}")).collect();
    mq.publish_lines(&lamp, &telemetry, 1, &sent).await?;
    // The end marker goes to both members (plain subscription) after all
    // readings from the same publisher, so it closes each one's stream.
    mq.publish(&lamp, &marker, "end", 1, false).await?;

    let mut received: Vec<String> = Vec::new();
    for (name, mut sub) in members {
        let mut mine = Vec::new();
        loop {
            let m = sub.next().await?;
            if m.topic == marker {
                assert_eq!(m.payload, "end", "{name}: unexpected {m:?}");
                break;
            }
            assert_eq!(m.topic, telemetry, "{name}: unexpected {m:?}");
            mine.push(m.payload);
        }
        assert!(!mine.is_empty(), "{name} received none of the readings");
        received.extend(mine);
        sub.kill().await?;
    }
    received.sort();
    let mut want = sent;
    want.sort();
    assert_eq!(received, want, "each reading exactly once across the group");
    Ok(())
}

#[test]
fn message_lines_are_parsed() {
    assert_eq!(
        Msg::parse("MSG\t1\t0\tcity/a/things/b/x\tpay\tload"),
        Some(Msg {
            qos: 1,
            retain: false,
            topic: "city/a/things/b/x".into(),
            payload: "pay\tload".into(),
        })
    );
    assert_eq!(Msg::parse("Client x received PUBLISH"), None);
}

/// MQTT 5 properties a device sets reach the subscriber unchanged, with
/// the subscription identifier added, and the delivery is downgraded to
/// the subscription's QoS.
#[tokio::test]
async fn v5_properties_are_forwarded() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let Some(mq) = Mq::new(&broker, Version::V5) else {
        return Ok(());
    };
    let lamp = broker.device("lamp-7")?;
    let cc = broker.device("control-center")?;
    let marker = things("lamp-7", "ready");
    mq.publish(&lamp, &marker, "ready", 1, true).await?;

    let format = format!(
        "{FORMAT} content-type=%C correlation=%D format=%F response=%R user=%P subscription=%S"
    );
    let extra = ["-C", "2", "-D", "subscribe", "subscription-identifier", "7"];
    let filters = ["city/+/things/lamp-7/#"];
    let mut sub = mq.subscribe_formatted(Some(&cc), &filters, 0, &format, &extra)?;
    sub.ready(&marker).await?;

    let response = things("lamp-7", "response");
    let topic = things("lamp-7", "report");
    #[rustfmt::skip]
    let args = [
        "-t", &topic, "-q", "2", "-m", "hi",
        "-D", "publish", "content-type", "text/plain",
        "-D", "publish", "correlation-data", "req-42",
        "-D", "publish", "payload-format-indicator", "1",
        "-D", "publish", "response-topic", &response,
        "-D", "publish", "user-property", "site", "north",
        "-D", "publish", "user-property", "unit", "lux",
    ];
    mq.publish_with(&lamp, &args).await?;
    let got = sub.messages().await?;
    let payload = format!(
        "hi content-type=text/plain correlation=req-42 format=1 response={response} \
         user=site:north unit:lux subscription=7"
    );
    assert_eq!(
        got,
        vec![Msg {
            qos: 0,
            retain: false,
            topic,
            payload,
        }]
    );
    Ok(())
}
