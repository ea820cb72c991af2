//! The device registry for operators: built from the configuration over
//! a store and CA (the CLI's own when no server runs), and served on the
//! admin socket of a running civitas with periodic maintenance.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use civitas_pki::CertificateAuthority;
use civitas_registry::{
    ADMIN_SOCKET_FILE, AdminServer, AdminService, Registry, RegistrySettings, SystemClock,
    run_maintenance,
};
use civitas_store::Store;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// How often replaced certificates are retired and expired tokens purged.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// Registry settings taken from the configuration.
pub fn settings(config: &Config) -> RegistrySettings {
    RegistrySettings {
        device_certificate_validity: Duration::from_secs(
            u64::from(config.tls.device_cert_days) * 86400,
        ),
        ..RegistrySettings::default()
    }
}

/// The CA directory under the data directory.
pub fn ca_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("pki").join("ca")
}

/// A registry over `store` and the CA in `data_dir`, its events written
/// to the audit log (returned: it must live as long as the registry).
pub fn registry(
    config: &Config,
    data_dir: &Path,
    store: Store,
) -> anyhow::Result<(Registry, civitas_audit::AuditLog)> {
    let ca = CertificateAuthority::load(&ca_dir(data_dir)).context("certificate authority")?;
    let (_ring, audit) = crate::security_wiring::open(data_dir)?;
    let events = Arc::new(crate::security_wiring::AuditEvents(audit.sink()));
    let registry = Registry::new(store, ca, Arc::new(SystemClock), events, settings(config));
    Ok((registry, audit))
}

/// Binds `DATA_DIR/admin.sock` and serves the server's registry on it,
/// with periodic maintenance, and the other subsystems' `services`, until
/// `shutdown`.
pub fn serve(
    data_dir: &Path,
    registry: &Arc<Registry>,
    services: Vec<(&str, Arc<dyn AdminService>)>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut server =
        AdminServer::bind(&data_dir.join(ADMIN_SOCKET_FILE)).context("admin endpoint")?;
    for (name, service) in services {
        server = server.with_service(name, service);
    }
    tokio::spawn(server.serve(registry.clone(), shutdown.clone()));
    tokio::spawn(run_maintenance(
        registry.clone(),
        MAINTENANCE_INTERVAL,
        shutdown.clone(),
    ));
    Ok(())
}
