//! Connections per second over mutual TLS with authorization by policies
//! (resolved per connection from an authority, as the registry does) and
//! by the listener's permission table, in one run so that the ratio is
//! meaningful on a noisy machine.
//!
//! `cargo bench -p civitas-broker --bench connect_authz`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use civitas_broker::{Authority, Refusal};
use civitas_mqtt::{Connect, ConnectProperties, Packet, Protocol, decode, encode};
use civitas_policy::{Context, NamedPolicy, standard_device_policy};
use civitas_testkit::{ClientTls, DeviceFiles, TestBroker, TestBrokerOptions, client_config};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Certificates registered as things with the standard device policy.
#[derive(Debug, Default)]
struct Policies(parking_lot::Mutex<HashMap<String, String>>);

impl Authority for Policies {
    fn connection_policies(
        &self,
        serial: &str,
        client_id: &str,
    ) -> Result<(Vec<NamedPolicy>, Context), Refusal> {
        let thing = self
            .0
            .lock()
            .get(serial)
            .cloned()
            .ok_or_else(|| Refusal("unknown certificate".into()))?;
        let policy = NamedPolicy {
            name: "standard".into(),
            version: 1,
            document: standard_device_policy(),
        };
        let context = Context {
            region: "local".into(),
            account: "000000000000".into(),
            client_id: client_id.into(),
            thing_name: Some(thing.clone()),
            is_attached: true,
            cert_common_name: Some(thing.clone()),
            cert_serial_number: Some(serial.into()),
            ..Context::default()
        };
        Ok((vec![policy], context))
    }
    fn generation(&self) -> u64 {
        1
    }
}

/// Connect, send CONNECT, read CONNACK, disconnect; the whole exchange.
async fn one(
    broker: &TestBroker,
    device: &DeviceFiles,
    config: Arc<rustls::ClientConfig>,
) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpStream::connect(broker.addr()).await?;
    tcp.set_nodelay(true)?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let mut out = BytesMut::new();
    let connect = Connect {
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive: 30,
        client_id: device.name.clone(),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    };
    encode(&Packet::Connect(Box::new(connect)), Protocol::V5, &mut out)?;
    tls.write_all(&out).await?;
    let mut buf = BytesMut::new();
    loop {
        if let Some(packet) = decode(&mut buf, Some(Protocol::V5), 1 << 20)? {
            match packet {
                Packet::ConnAck(ack) if !ack.reason_code.is_error() => break,
                other => anyhow::bail!("unexpected {other:?}"),
            }
        }
        if tls.read_buf(&mut buf).await? == 0 {
            anyhow::bail!("closed before CONNACK");
        }
    }
    let _ = tls.shutdown().await;
    Ok(())
}

async fn rate(
    broker: &TestBroker,
    devices: &[(DeviceFiles, Arc<rustls::ClientConfig>)],
    rounds: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    for _ in 0..rounds {
        for (device, config) in devices {
            one(broker, device, config.clone()).await?;
        }
    }
    Ok((rounds * devices.len()) as f64 / start.elapsed().as_secs_f64())
}

async fn devices(
    broker: &TestBroker,
    n: usize,
    registry: Option<&Policies>,
) -> anyhow::Result<Vec<(DeviceFiles, Arc<rustls::ClientConfig>)>> {
    let mut out = Vec::new();
    for i in 0..n {
        let d = broker.device(&format!("lamp-{i}"))?;
        if let Some(r) = registry {
            r.0.lock().insert(d.serial_hex.clone(), d.name.clone());
        }
        let c = client_config(ClientTls::Device(&d))?;
        out.push((d, c));
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    // `cargo test --benches` runs this with `--test`: a smoke run.
    let quick = std::env::args().any(|a| a == "--test");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (n, rounds, reps) = if quick { (3, 1, 1) } else { (50, 4, 3) };
        let open = TestBroker::start().await?;
        let open_devices = devices(&open, n, None).await?;
        let registry = Arc::new(Policies::default());
        let authority: Arc<dyn Authority> = registry.clone();
        let guarded =
            TestBroker::start_full(TestBrokerOptions::default(), Vec::new(), Some(authority))
                .await?;
        let guarded_devices = devices(&guarded, n, Some(&registry)).await?;

        // Alternate, so that drift of a shared machine hits both.
        let (mut off, mut on) = (0.0f64, 0.0f64);
        for _ in 0..reps {
            off = off.max(rate(&open, &open_devices, rounds).await?);
            on = on.max(rate(&guarded, &guarded_devices, rounds).await?);
        }
        println!("connections/s over mutual TLS (CONNECT to CONNACK, best of {reps} runs of {} connections):", n * rounds);
        println!("  authorization by permissions table: {off:>8.0}");
        println!("  authorization by policies:          {on:>8.0}");
        println!("  ratio policies / permissions:        {:>8.2}", on / off);
        Ok::<_, anyhow::Error>(())
    })
}
