//! The rules engine in civitas: started by `civitas up` over the store's
//! rules with the broker, shadows and monitor as its actions' targets,
//! and served on the admin socket as the `rules` service. Device
//! signatures on stored telemetry are verified against the keys of the
//! things' active certificates in the registry ([`RegistryDeviceKeys`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use civitas_monitor::Monitor;
use civitas_registry::{
    Actor, AdminService, CertificateStatus, EventSink, Outcome, Problem, Registry, RegistryError,
    SecurityEvent,
};
use civitas_rules_runtime::{
    ActionDeps, DeviceKeys, RuleCatalog, RuleRequest, RuleResponse, RulesEngine, RuntimeOptions,
    ShadowAccess, SignatureRefusal, TelemetrySink, TelemetryStoreSink,
};
use civitas_shadow::ShadowService;
use civitas_store::Store;
use civitas_telemetry::TelemetryStore;
use civitas_telemetry::signature::DevicePublicKey;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Loads the rules from `store` and starts the enabled ones. The broker
/// is attached once it exists (`RulesEngine::attach_broker`). Signed
/// readings are verified with the keys `registry` holds; refusals go to
/// `events`.
pub fn start(
    store: &Store,
    shadows: &ShadowService,
    monitor: &Monitor,
    telemetry: TelemetryStore,
    registry: Arc<Registry>,
    events: Arc<dyn EventSink>,
) -> anyhow::Result<RulesEngine> {
    let catalog = RuleCatalog::open(store.clone()).context("loading the rules")?;
    let mut deps = deps(shadows, monitor);
    deps.telemetry = Some(Arc::new(TelemetryStoreSink(telemetry)) as Arc<dyn TelemetrySink>);
    deps.device_keys = Some(Arc::new(RegistryDeviceKeys { registry, events }));
    let engine = RulesEngine::start(catalog, deps, RuntimeOptions::default());
    let live = engine.live_rules();
    if !live.is_empty() {
        tracing::info!(rules = ?live, "rules engine started");
    }
    Ok(engine)
}

/// What actions act on, but the telemetry store (`start` adds it; a rule
/// test runs without one).
pub fn deps(shadows: &ShadowService, monitor: &Monitor) -> ActionDeps {
    ActionDeps {
        shadows: Some(Arc::new(shadows.clone()) as Arc<dyn ShadowAccess>),
        monitor: monitor.clone(),
        ..ActionDeps::default()
    }
}

/// The engine's administration on the admin socket.
pub struct RulesAdmin(pub RulesEngine);

impl AdminService for RulesAdmin {
    fn execute(
        &self,
        _actor: &Actor,
        request: serde_json::Value,
    ) -> Result<serde_json::Value, Problem> {
        let request: RuleRequest = serde_json::from_value(request)
            .map_err(|e| Problem::new("bad_request", e.to_string()))?;
        match self.0.execute(request) {
            RuleResponse::Error { code, message } => Err(Problem::new(&code, message)),
            answer => {
                serde_json::to_value(answer).map_err(|e| Problem::new("internal", e.to_string()))
            }
        }
    }
}

/// The keys devices sign telemetry with: those of the active, currently
/// valid certificates of the thing named by the client id (the name a
/// device connects as).
pub struct RegistryDeviceKeys {
    pub registry: Arc<Registry>,
    pub events: Arc<dyn EventSink>,
}

impl std::fmt::Debug for RegistryDeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryDeviceKeys")
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The public key of a PEM certificate; `None` for one that is not a
/// P-256 certificate (it cannot have signed).
pub fn certificate_key(pem: &str) -> Option<DevicePublicKey> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    DevicePublicKey::from_certificate_der(&der).ok()
}

impl DeviceKeys for RegistryDeviceKeys {
    fn public_keys(&self, client_id: &str) -> Vec<DevicePublicKey> {
        let thing = match self.registry.describe_thing(client_id) {
            Ok(thing) => thing,
            Err(RegistryError::NotFound { .. }) => return Vec::new(),
            Err(e) => {
                tracing::error!(client_id, error = %e, "device keys: registry lookup failed");
                return Vec::new();
            }
        };
        let now = now_ms();
        thing
            .certificates
            .iter()
            .filter(|c| {
                c.status == CertificateStatus::Active
                    && c.not_before_ms <= now
                    && now <= c.not_after_ms
            })
            .filter_map(|c| certificate_key(&c.certificate_pem))
            .collect()
    }

    fn signature_refused(&self, refusal: &SignatureRefusal) {
        let actor = match &refusal.client_id {
            Some(client_id) => Actor::device(client_id),
            None => Actor::system(),
        };
        let details = BTreeMap::from([
            ("rule".to_owned(), refusal.rule.clone()),
            ("topic".to_owned(), refusal.topic.clone()),
            // `reason` is the precise error (the outcome's); this is the
            // counter's short label.
            ("code".to_owned(), refusal.reason.to_owned()),
        ]);
        self.events.record(SecurityEvent {
            at_ms: now_ms(),
            actor: actor.as_str().to_owned(),
            action: "VerifyTelemetrySignature".into(),
            target: format!("thing:{}", refusal.thing),
            outcome: Outcome::Failure {
                reason: refusal.error.clone(),
            },
            details,
        });
    }
}

#[cfg(test)]
mod tests {
    use civitas_telemetry::signature::{DeviceSigner, verify_detached};
    use rustls::pki_types::PrivateKeyDer;

    use super::*;

    #[test]
    fn a_device_certificate_yields_the_key_its_device_signs_with() {
        let pki = civitas_testkit::TestPki::new().unwrap();
        let device = pki.device("lamp-1").unwrap();
        let cert_pem = std::fs::read_to_string(&device.cert).unwrap();
        let key = PrivateKeyDer::from_pem_file(&device.key).unwrap();
        let signer = DeviceSigner::from_pkcs8(key.secret_der()).unwrap();
        let jws = signer.sign_detached(b"{\"lux\":3}").unwrap();

        let public = certificate_key(&cert_pem).expect("a P-256 certificate");
        verify_detached(b"{\"lux\":3}", &jws, &public).unwrap();
        assert!(verify_detached(b"{\"lux\":4}", &jws, &public).is_err());
        assert!(certificate_key("not a certificate").is_none());
    }
}
