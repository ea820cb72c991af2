//! `civitas up`: first-run bootstrap (data directory, CA, server
//! certificate, example bundles), then the broker until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use civitas_broker::password::FILE_NAME;
use civitas_broker::{AuthMode, Broker, BrokerTls, Credentials, SystemClock, Transport};
use civitas_pki::{CertificateAuthority, ReloadingServerConfig, TlsFiles};
use civitas_store::{Store, StoreOptions};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use civitas_registry::{DevicePolicy, Registry};
use civitas_shadow::{ShadowService, ShadowTopicService};
use civitas_web_device::DeviceApi;

use crate::config::{Config, TlsConfig};
use crate::registry_wiring::{
    OPERATOR_POLICY, RegistryAuthority, ensure_device, provisioning_service, watch_expiry,
};
use crate::security_wiring::AuditEvents;

/// The identity the quick start uses to watch the city.
const OPERATOR: &str = "control-center";

pub async fn up(config: Config) -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    init_logging(&config.log.level)?;

    let data_dir = std::path::absolute(&config.data_dir)
        .with_context(|| format!("data directory {}", config.data_dir.display()))?;
    create_private_dir(&data_dir)?;
    let now = OffsetDateTime::now_utc();
    let (ca, created) = CertificateAuthority::open_or_create(
        &data_dir.join("pki").join("ca"),
        &config.tls.organization,
        now,
    )
    .context("certificate authority")?;
    let (cert, key) =
        ensure_server_cert(&ca, &config.tls, &data_dir.join("pki").join("server"), now)?;
    let store = Store::open(&data_dir.join("civitas.redb"), StoreOptions::default())
        .with_context(|| format!("opening {}", data_dir.join("civitas.redb").display()))?;
    let ca_bundle = ca.ca_bundle_path();
    let mutual_files = ca.tls_files(&cert, &key);
    let (key_ring, audit) = crate::security_wiring::open(&data_dir)?;
    let events = Arc::new(AuditEvents(audit.sink()));
    let registry = Arc::new(Registry::new(
        store.clone(),
        ca,
        Arc::new(civitas_registry::SystemClock),
        events.clone(),
        crate::admin::settings(&config),
    ));
    let devices_dir = data_dir.join("devices");
    let device = bundle_paths(&devices_dir, &config.tls.example_device);
    ensure_device(
        &registry,
        &devices_dir.join(&device.name),
        &device.name,
        DevicePolicy::Default,
    )?;
    let operator = bundle_paths(&devices_dir, OPERATOR);
    ensure_device(
        &registry,
        &devices_dir.join(OPERATOR),
        OPERATOR,
        DevicePolicy::Named(OPERATOR_POLICY.to_string()),
    )?;

    let shutdown = CancellationToken::new();
    let shadows = ShadowService::new(store.clone(), civitas_shadow::SystemClock);
    let monitor = civitas_monitor::Monitor::new();
    // Readings the rules store, sealed per device under the device's own key.
    let telemetry = crate::telemetry_wiring::open(store.clone(), &key_ring).await?;
    telemetry.spawn_sealer(Duration::from_secs(60));
    {
        // Device keys are created as devices first report: their creation
        // goes on the audit record too.
        // Scheduled rotation is checked hourly; a rotation is recorded too.
        let (ring, events, shutdown) = (key_ring.clone(), events.clone(), shutdown.clone());
        let rotation = Duration::from_secs(u64::from(config.kms.rotation_days) * 86400);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            let mut rotation_check = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = rotation_check.tick() => match ring.rotate_due(rotation) {
                        Ok(keys) if !keys.is_empty() => tracing::info!(?keys, "rotated KMS keys"),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %format!("{e:#}"), "scheduled key rotation failed"),
                    },
                    _ = shutdown.cancelled() => return,
                }
                ring.audit_key_events(&events);
            }
        });
    }
    let rules = crate::rules_wiring::start(
        &store,
        &shadows,
        &monitor,
        telemetry.clone(),
        registry.clone(),
        events.clone(),
    )?;
    let rules_admin: Arc<dyn civitas_registry::AdminService> =
        Arc::new(crate::rules_wiring::RulesAdmin(rules.clone()));
    let telemetry_admin: Arc<dyn civitas_registry::AdminService> =
        Arc::new(crate::telemetry_wiring::TelemetryAdmin::new(telemetry));
    let monitor_admin: Arc<dyn civitas_registry::AdminService> =
        Arc::new(crate::monitor_wiring::MonitorAdmin(monitor.clone()));
    crate::admin::serve(
        &data_dir,
        &registry,
        vec![
            (civitas_rules_runtime::ADMIN_SERVICE, rules_admin),
            (crate::telemetry_wiring::ADMIN_SERVICE, telemetry_admin),
            (crate::monitor_wiring::ADMIN_SERVICE, monitor_admin),
        ],
        &shutdown,
    )?;
    // Kept for the monitor, which reports the expiring count.
    let _expiry = watch_expiry(&registry, &shutdown);
    let mutual = Arc::new(ReloadingServerConfig::new(mutual_files, &[])?);
    let server_only = Arc::new(ReloadingServerConfig::new(
        TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: None,
            crl: None,
        },
        &[],
    )?);
    let interval = Duration::from_secs(config.tls.reload_interval_secs.max(1));
    tokio::spawn(mutual.clone().watch(interval, shutdown.clone()));
    tokio::spawn(server_only.clone().watch(interval, shutdown.clone()));

    Broker::validate_listeners(&config.broker, true)?;
    let listeners = Broker::bind(&config.broker).await?;
    let bound: Vec<Bound> = listeners
        .iter()
        .filter_map(|(l, t)| {
            Some(Bound {
                name: l.name.clone(),
                auth: l.auth,
                transport: l.transport,
                tls: l.tls,
                addr: t.local_addr().ok()?,
            })
        })
        .collect();
    let mut broker = Broker::new(
        config.broker.clone(),
        store,
        Some(BrokerTls {
            mutual: mutual.clone(),
            server_only: Some(server_only),
        }),
        Arc::new(SystemClock),
        shutdown.clone(),
    )?
    .with_authority(Arc::new(RegistryAuthority(registry.clone())))
    .with_security_log(events.clone())
    .with_service(Arc::new(ShadowTopicService::new(shadows.clone())))
    .with_service(provisioning_service(&registry))
    .with_service(rules.basic_ingest())
    .with_observer(rules.observer())
    .with_observer(Arc::new(crate::command_audit::CommandAudit(
        (*events).clone(),
    )));
    rules.attach_broker(broker.handle());
    if bound.iter().any(|b| b.auth == AuthMode::Password) {
        let path = data_dir.join(FILE_NAME);
        let credentials = Arc::new(Credentials::open(&path).context("password credentials")?);
        if credentials.is_empty() {
            tracing::warn!(path = %path.display(), "a password listener is on but no password has been issued: civitas password set USERNAME");
        }
        tokio::spawn(credentials.clone().watch(interval, shutdown.clone()));
        broker = broker.with_passwords(credentials);
    }
    // The HTTPS device API: same mutual TLS, policies and shadows as MQTT.
    let mut api_addr = None;
    let device_api = if config.device_api.enabled {
        let listener = DeviceApi::bind(config.device_api.bind).await?;
        api_addr = listener.local_addr().ok();
        let authority = Arc::new(RegistryAuthority(registry.clone()));
        let api = DeviceApi::new(mutual.clone(), authority, broker.handle())
            .with_shadows(shadows)
            .with_limits(config.device_api.limits());
        Some(tokio::spawn(api.serve(listener, shutdown.clone())))
    } else {
        None
    };
    print_quick_start(
        &data_dir, created, &ca_bundle, &bound, api_addr, &device, &operator,
    );

    tokio::spawn(wait_for_signal(shutdown.clone()));
    broker.run(listeners).await?;
    audit.close().context("closing the audit log")?;
    if let Some(api) = device_api {
        api.await??;
    }
    Ok(())
}

fn init_logging(level: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .with_context(|| format!("log.level {level:?} is not a valid filter"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    shutdown.cancel();
}

pub(crate) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    Ok(())
}

/// The server certificate, issued when missing or within 30 days of
/// expiry.
fn ensure_server_cert(
    ca: &CertificateAuthority,
    tls: &TlsConfig,
    dir: &Path,
    now: OffsetDateTime,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    let fresh = std::fs::read(&cert)
        .ok()
        .and_then(|pem| first_cert_not_after(&pem))
        .is_some_and(|not_after| not_after - now > time::Duration::days(30));
    if !(fresh && key.exists()) {
        let issued = ca.issue_server(
            &tls.server_names,
            &tls.server_ips,
            Duration::from_secs(u64::from(tls.server_cert_days) * 86400),
            now,
        )?;
        issued.write_bundle(dir, "server")?;
        tracing::info!(path = %cert.display(), not_after = %issued.not_after, "issued server certificate");
    }
    Ok((cert, key))
}

fn first_cert_not_after(pem: &[u8]) -> Option<OffsetDateTime> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    civitas_pki::peer_identity(der.as_ref())
        .ok()
        .map(|id| id.not_after)
}

/// A listener as the quick start describes it.
struct Bound {
    name: String,
    auth: AuthMode,
    transport: Transport,
    tls: bool,
    addr: SocketAddr,
}

/// Paths of a certificate bundle.
struct Bundle {
    name: String,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

/// Where the bundle of device `name` lives.
fn bundle_paths(devices: &Path, name: &str) -> Bundle {
    let dir = devices.join(name);
    Bundle {
        name: name.to_string(),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
        ca: dir.join("ca.pem"),
    }
}

fn print_quick_start(
    data_dir: &Path,
    created: bool,
    ca_bundle: &Path,
    bound: &[Bound],
    api_addr: Option<SocketAddr>,
    device: &Bundle,
    operator: &Bundle,
) {
    let mut out = String::new();
    out.push_str(&format!("civitas {} is up.\n\n", env!("CARGO_PKG_VERSION")));
    if created {
        out.push_str("First run: created a certificate authority and example certificates.\n");
    }
    out.push_str(&format!(
        "  data directory         {}\n",
        data_dir.display()
    ));
    out.push_str(&format!(
        "  certificate authority  {}\n",
        ca_bundle.display()
    ));
    out.push_str(&format!(
        "  example device         {}\n",
        device
            .cert
            .parent()
            .map_or(String::new(), |p| p.display().to_string())
    ));
    out.push_str(&format!(
        "  operator console       {}\n\n",
        operator
            .cert
            .parent()
            .map_or(String::new(), |p| p.display().to_string())
    ));
    out.push_str("Listening:\n");
    for b in bound {
        let auth = match b.auth {
            AuthMode::Mtls => "mutual TLS",
            AuthMode::Anonymous => "anonymous",
            AuthMode::Password => "password",
        };
        let tls = if b.tls { "TLS" } else { "PLAINTEXT" };
        let transport = match b.transport {
            Transport::Mqtt => "",
            Transport::Wss | Transport::Ws => ", WebSocket",
        };
        out.push_str(&format!(
            "  {} ({auth}, {tls}{transport}) on {}\n",
            b.name, b.addr
        ));
    }
    if let Some(addr) = api_addr {
        out.push_str(&format!("  device API (HTTPS, mutual TLS) on {addr}\n"));
    }
    if bound.iter().any(|b| b.auth == AuthMode::Password) {
        out.push_str(
            "\nIssue a password for a gateway (printed once):\n  civitas password set gateway-01\n",
        );
    }
    if let Some(b) = bound
        .iter()
        .find(|b| b.auth == AuthMode::Mtls && b.transport == Transport::Mqtt)
    {
        let port = b.addr.port();
        let conn = |b: &Bundle| {
            format!(
                "-h localhost -p {port} -V mqttv5 --cafile {} --cert {} --key {} -i {}",
                b.ca.display(),
                b.cert.display(),
                b.key.display(),
                b.name
            )
        };
        out.push_str(&format!(
            "\nWatch the city as the control center (terminal 1):\n  mosquitto_sub {} -t 'city/#' -v\n",
            conn(operator)
        ));
        out.push_str(&format!(
            "\nReport a reading as {} (terminal 2):\n  mosquitto_pub {} -q 1 -t city/centre/things/{}/telemetry -m '{{\"power_w\":42}}'\n",
            device.name,
            conn(device),
            device.name
        ));
    }
    if let Some(addr) = api_addr {
        out.push_str(&format!(
            "\nOr over HTTPS, as a device without an MQTT connection would:\n  curl --cacert {} --cert {} --key {} --data '{{\"power_w\":42}}' 'https://localhost:{}/topics/city/centre/things/{}/telemetry?qos=1'\n",
            device.ca.display(),
            device.cert.display(),
            device.key.display(),
            addr.port(),
            device.name
        ));
    }
    print!("{out}");
}
