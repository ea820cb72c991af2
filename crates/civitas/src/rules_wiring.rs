//! The rules engine in civitas: started by `civitas up` over the store's
//! rules with the broker, shadows and monitor as its actions' targets,
//! and served on the admin socket as the `rules` service.

use std::sync::Arc;

use anyhow::Context;
use civitas_monitor::Monitor;
use civitas_registry::{Actor, AdminService, Problem};
use civitas_rules_runtime::{
    ActionDeps, RuleCatalog, RuleRequest, RuleResponse, RulesEngine, RuntimeOptions, ShadowAccess,
    TelemetrySink, TelemetryStoreSink,
};
use civitas_shadow::ShadowService;
use civitas_store::Store;
use civitas_telemetry::TelemetryStore;

/// Loads the rules from `store` and starts the enabled ones. The broker
/// is attached once it exists (`RulesEngine::attach_broker`).
pub fn start(
    store: &Store,
    shadows: &ShadowService,
    monitor: &Monitor,
    telemetry: TelemetryStore,
) -> anyhow::Result<RulesEngine> {
    let catalog = RuleCatalog::open(store.clone()).context("loading the rules")?;
    let mut deps = deps(shadows, monitor);
    deps.telemetry = Some(Arc::new(TelemetryStoreSink(telemetry)) as Arc<dyn TelemetrySink>);
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
