//! A whole broker on port 0 over a temp data dir, in this process. It can
//! be stopped and started again over the same data (same ports), to test
//! what survives a restart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use civitas_broker::{
    AuthMode, Authority, Authorization, Broker, BrokerConfig, BrokerHandle, BrokerTls, Credentials,
    ListenerConfig, MessageObserver, Permissions, SecurityLog, Stats, SystemClock, TopicService,
    Transport,
};
use civitas_pki::ReloadingServerConfig;
use civitas_store::{Store, StoreOptions};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::pki::{DeviceFiles, TestPki};

#[derive(Default)]
pub struct TestBrokerOptions {
    /// Listeners' bind addresses are replaced by 127.0.0.1:0.
    pub config: BrokerConfig,
}

impl TestBrokerOptions {
    /// The default mutual-TLS listener plus an anonymous plaintext one on
    /// loopback (named "anon") that may do anything.
    pub fn with_anonymous() -> Self {
        let mut config = BrokerConfig::default();
        config.listeners.push(ListenerConfig {
            name: "anon".into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            auth: AuthMode::Anonymous,
            transport: Transport::Mqtt,
            tls: false,
            plaintext_acknowledged: true,
            client_id_must_match_identity: false,
            authorization: None,
            permissions: Permissions::allow_all(),
        });
        TestBrokerOptions { config }
    }
}

/// Builds a topic service over the broker's store (services such as device
/// shadows keep their state there); called again at every restart.
pub type ServiceFactory = Arc<dyn Fn(&Store) -> Arc<dyn TopicService> + Send + Sync>;

pub struct TestBroker {
    pub pki: TestPki,
    pub data_dir: tempfile::TempDir,
    config: BrokerConfig,
    services: Vec<ServiceFactory>,
    authority: Option<Arc<dyn Authority>>,
    pub(crate) assembly: Option<crate::assembly::AssemblyFactory>,
    observers: Vec<Arc<dyn MessageObserver>>,
    security_log: Option<Arc<dyn SecurityLog>>,
    handle: BrokerHandle,
    addrs: HashMap<String, SocketAddr>,
    running: Option<Running>,
}

struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    stats: Arc<Stats>,
    credentials: Option<Arc<Credentials>>,
    tls: BrokerTls,
}

impl TestBroker {
    pub async fn start() -> anyhow::Result<TestBroker> {
        Self::start_with(TestBrokerOptions::default()).await
    }

    pub async fn start_with(options: TestBrokerOptions) -> anyhow::Result<TestBroker> {
        Self::start_with_services(options, Vec::new()).await
    }

    /// Start with topic services (shadows, provisioning) built over the
    /// broker's store.
    pub async fn start_with_services(
        options: TestBrokerOptions,
        services: Vec<ServiceFactory>,
    ) -> anyhow::Result<TestBroker> {
        Self::start_full(options, services, None).await
    }

    /// Start with an observer of every routed message.
    pub async fn start_observed(
        options: TestBrokerOptions,
        observer: Arc<dyn MessageObserver>,
    ) -> anyhow::Result<TestBroker> {
        crate::init();
        let mut broker = Self::prepare(options, Vec::new(), None)?;
        broker.observers.push(observer);
        broker.launch().await?;
        Ok(broker)
    }

    /// Start with topic services and observers of every routed message
    /// (the rules engine is both).
    pub async fn start_observed_with_services(
        options: TestBrokerOptions,
        services: Vec<ServiceFactory>,
        observers: Vec<Arc<dyn MessageObserver>>,
    ) -> anyhow::Result<TestBroker> {
        crate::init();
        let mut broker = Self::prepare(options, services, None)?;
        broker.observers = observers;
        broker.launch().await?;
        Ok(broker)
    }

    /// Start with a log of the broker's security events.
    pub async fn start_with_security_log(
        options: TestBrokerOptions,
        log: Arc<dyn SecurityLog>,
    ) -> anyhow::Result<TestBroker> {
        crate::init();
        let mut broker = Self::prepare(options, Vec::new(), None)?;
        broker.security_log = Some(log);
        broker.launch().await?;
        Ok(broker)
    }

    /// Re-read the TLS files (server certificate, CA bundle, CRL) now, as
    /// the running server's file watch would. True when something changed.
    pub fn reload_tls(&self) -> anyhow::Result<bool> {
        let Some(r) = &self.running else {
            anyhow::bail!("the broker is not running");
        };
        let mut changed = r.tls.mutual.reload()?;
        if let Some(server_only) = &r.tls.server_only {
            changed |= server_only.reload()?;
        }
        Ok(changed)
    }

    /// A handle that publishes into the running broker.
    pub fn handle(&self) -> BrokerHandle {
        self.handle.clone()
    }

    /// Start with an authority (the device registry, or a test double):
    /// mutual-TLS listeners are then authorized by its policies. Without
    /// one, every listener uses its permission table.
    pub async fn start_full(
        options: TestBrokerOptions,
        services: Vec<ServiceFactory>,
        authority: Option<Arc<dyn Authority>>,
    ) -> anyhow::Result<TestBroker> {
        crate::init();
        let mut broker = Self::prepare(options, services, authority)?;
        broker.launch().await?;
        Ok(broker)
    }

    /// The broker before its first launch.
    pub(crate) fn prepare(
        options: TestBrokerOptions,
        services: Vec<ServiceFactory>,
        authority: Option<Arc<dyn Authority>>,
    ) -> anyhow::Result<TestBroker> {
        let mut config = options.config;
        for l in &mut config.listeners {
            l.bind = SocketAddr::from(([127, 0, 0, 1], 0));
            if authority.is_none() && l.authorization.is_none() {
                l.authorization = Some(Authorization::Permissions);
            }
        }
        Ok(TestBroker {
            pki: TestPki::new()?,
            data_dir: tempfile::tempdir()?,
            config,
            services,
            authority,
            assembly: None,
            observers: Vec::new(),
            security_log: None,
            handle: BrokerHandle::default(),
            addrs: HashMap::new(),
            running: None,
        })
    }

    pub(crate) async fn launch(&mut self) -> anyhow::Result<()> {
        let store = Store::open(
            &self.data_dir.path().join("civitas.redb"),
            StoreOptions::default(),
        )?;
        let tls = BrokerTls {
            mutual: Arc::new(ReloadingServerConfig::new(
                self.pki.mutual_tls_files(),
                &[],
            )?),
            server_only: Some(Arc::new(ReloadingServerConfig::new(
                self.pki.server_tls_files(),
                &[],
            )?)),
        };
        let tls_handle = tls.clone();
        let shutdown = CancellationToken::new();
        let mut credentials = None;
        let mut services: Vec<Arc<dyn TopicService>> =
            self.services.iter().map(|make| make(&store)).collect();
        let mut authority = self.authority.clone();
        if let Some(assemble) = &self.assembly {
            let parts = assemble(&store, &self.pki)?;
            services.extend(parts.services);
            authority = parts.authority.or(authority);
        }
        let mut broker = Broker::new(
            self.config.clone(),
            store,
            Some(tls),
            Arc::new(SystemClock),
            shutdown.clone(),
        )?;
        for service in services {
            broker = broker.with_service(service);
        }
        if let Some(authority) = authority {
            broker = broker.with_authority(authority);
        }
        for observer in &self.observers {
            broker = broker.with_observer(observer.clone());
        }
        if let Some(log) = &self.security_log {
            broker = broker.with_security_log(log.clone());
        }
        self.handle = broker.handle();
        if self
            .config
            .listeners
            .iter()
            .any(|l| l.auth == AuthMode::Password)
        {
            let c = Arc::new(Credentials::open(self.password_file().path())?);
            // Polled often, so tests see an edit take effect quickly.
            tokio::spawn(c.clone().watch(Duration::from_millis(20), shutdown.clone()));
            broker = broker.with_passwords(c.clone());
            credentials = Some(c);
        }
        let mut listeners = Vec::new();
        for l in &self.config.listeners {
            // After a restart, bind the same ports again so clients can
            // reconnect with unchanged options.
            let addr = self.addrs.get(&l.name).copied().unwrap_or(l.bind);
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            self.addrs.insert(l.name.clone(), listener.local_addr()?);
            listeners.push((l.clone(), listener));
        }
        let stats = broker.stats();
        let task = tokio::spawn(async move { broker.run(listeners).await.map_err(Into::into) });
        self.running = Some(Running {
            shutdown,
            task,
            stats,
            credentials,
            tls: tls_handle,
        });
        Ok(())
    }

    /// The address of the listener named `name` ("mqtts" is the default
    /// mutual-TLS one).
    pub fn addr_of(&self, name: &str) -> SocketAddr {
        self.addrs[name]
    }

    /// The default mutual-TLS listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr_of("mqtts")
    }

    pub fn stats(&self) -> Arc<Stats> {
        match &self.running {
            Some(r) => r.stats.clone(),
            None => Arc::new(Stats::default()),
        }
    }

    /// The credentials the running broker's password listeners check.
    pub(crate) fn credentials(&self) -> Option<Arc<Credentials>> {
        self.running.as_ref().and_then(|r| r.credentials.clone())
    }

    pub fn device(&self, name: &str) -> anyhow::Result<DeviceFiles> {
        self.pki.device(name)
    }

    /// Graceful stop: clients are disconnected, the store is flushed.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(r) = self.running.take() {
            r.shutdown.cancel();
            tokio::time::timeout(Duration::from_secs(15), r.task)
                .await
                .context("broker did not stop within 15 s")???;
        }
        Ok(())
    }

    /// Stop and start again over the same data dir and ports.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.launch().await
    }

    /// rumqttc (MQTT 3.1.1) options for a device over mutual TLS.
    pub async fn mqtt_options(&self, device: &DeviceFiles) -> anyhow::Result<rumqttc::MqttOptions> {
        self.mqtt_options_with(&device.name, crate::ClientTls::Device(device))
            .await
    }

    /// rumqttc (MQTT 3.1.1) options with any client TLS setup.
    pub async fn mqtt_options_with(
        &self,
        client_id: &str,
        tls: crate::ClientTls<'_>,
    ) -> anyhow::Result<rumqttc::MqttOptions> {
        let local = crate::mtls_tunnel(self.addr(), crate::client_config(tls)?).await?;
        let mut o = rumqttc::MqttOptions::new(client_id, "127.0.0.1", local.port());
        o.set_keep_alive(Duration::from_secs(30));
        Ok(o)
    }

    /// rumqttc MQTT 5 options for a device over mutual TLS.
    pub async fn mqtt5_options(
        &self,
        device: &DeviceFiles,
    ) -> anyhow::Result<rumqttc::v5::MqttOptions> {
        let tls = crate::client_config(crate::ClientTls::Device(device))?;
        let local = crate::mtls_tunnel(self.addr(), tls).await?;
        let mut o = rumqttc::v5::MqttOptions::new(&device.name, "127.0.0.1", local.port());
        o.set_keep_alive(Duration::from_secs(30));
        Ok(o)
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            r.shutdown.cancel();
        }
    }
}
