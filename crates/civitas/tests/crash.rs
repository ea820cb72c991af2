//! Acknowledged means durable: a QoS 1 stream is cut by SIGKILL of the
//! broker process, and after a restart every message that was PUBACKed
//! reaches the persistent subscriber.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use anyhow::{Context, bail};
use civitas_testkit::{ClientTls, client_config, mtls_tunnel};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use support::{Civitas, bundle};

const TOPIC: &str = "city/centre/things/streetlight-001/telemetry";

async fn options(
    civitas: &Civitas,
    data: &std::path::Path,
    name: &str,
) -> anyhow::Result<MqttOptions> {
    let files = bundle(data, name);
    let local = mtls_tunnel(civitas.addr, client_config(ClientTls::Device(&files))?).await?;
    let mut o = MqttOptions::new(name, "127.0.0.1", local.port());
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(false);
    o.set_inflight(20);
    Ok(o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_sigkill() -> anyhow::Result<()> {
    civitas_testkit::init();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let civitas = Civitas::start(&data)?;

    // A persistent subscriber registers, then goes away.
    {
        let (client, mut events) =
            AsyncClient::new(options(&civitas, &data, "control-center").await?, 10);
        client.subscribe("city/#", QoS::AtLeastOnce).await?;
        while !matches!(
            tokio::time::timeout(Duration::from_secs(10), events.poll()).await??,
            Event::Incoming(Packet::SubAck(_))
        ) {}
        client.disconnect().await?;
        while tokio::time::timeout(Duration::from_secs(5), events.poll())
            .await?
            .is_ok()
        {}
    }

    // Stream QoS 1 readings; record which were acknowledged.
    let (client, mut events) =
        AsyncClient::new(options(&civitas, &data, "streetlight-001").await?, 100);
    let publisher = tokio::spawn(async move {
        for seq in 0u32.. {
            if client
                .publish(TOPIC, QoS::AtLeastOnce, false, seq.to_string())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut sent_order: u32 = 0;
    let mut pkid_to_seq: HashMap<u16, u32> = HashMap::new();
    let mut acked: BTreeSet<u32> = BTreeSet::new();
    while acked.len() < 400 {
        match tokio::time::timeout(Duration::from_secs(10), events.poll()).await? {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                pkid_to_seq.insert(pkid, sent_order);
                sent_order += 1;
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let seq = pkid_to_seq
                    .remove(&ack.pkid)
                    .context("PUBACK for an unknown packet id")?;
                acked.insert(seq);
            }
            Ok(_) => {}
            Err(e) => bail!("publisher failed: {e}"),
        }
    }
    // Mid-stream: more PUBLISHes are in flight right now.
    civitas.kill()?;
    publisher.abort();
    drop(events);

    let civitas = Civitas::start(&data)?;
    let (client, mut events) =
        AsyncClient::new(options(&civitas, &data, "control-center").await?, 100);
    let mut received: BTreeSet<u32> = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !acked.is_subset(&received) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, events.poll()).await {
            Err(_) => {
                let missing: Vec<_> = acked.difference(&received).take(10).collect();
                bail!(
                    "after restart {} of {} acknowledged messages are missing, e.g. {missing:?}",
                    acked.difference(&received).count(),
                    acked.len()
                );
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                let seq: u32 = std::str::from_utf8(&p.payload)?.parse()?;
                received.insert(seq);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => bail!("subscriber failed: {e}"),
        }
    }
    drop(client);
    civitas.terminate()?;
    Ok(())
}
