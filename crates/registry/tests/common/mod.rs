//! A registry over a temporary store and CA, with a manual clock and an
//! in-memory event sink.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use civitas_pki::CertificateAuthority;
use civitas_registry::{
    Actor, ManualClock, MemorySink, NewThing, NewThingGroup, Registry, RegistrySettings,
};
use civitas_store::{Store, StoreOptions};
use tempfile::TempDir;
use time::OffsetDateTime;

pub struct Fixture {
    pub dir: TempDir,
    pub registry: Arc<Registry>,
    pub clock: Arc<ManualClock>,
    pub events: Arc<MemorySink>,
    pub actor: Actor,
}

pub fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("valid time")
}

pub fn fixture() -> Fixture {
    fixture_with(RegistrySettings::default())
}

pub fn fixture_with(settings: RegistrySettings) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::new(start()));
    let ca =
        CertificateAuthority::create(&dir.path().join("ca"), "civitas test", start()).expect("CA");
    let store =
        Store::open(&dir.path().join("civitas.redb"), StoreOptions::default()).expect("store");
    let events = Arc::new(MemorySink::new());
    let registry = Arc::new(Registry::new(
        store,
        ca,
        clock.clone(),
        events.clone(),
        settings,
    ));
    Fixture {
        dir,
        registry,
        clock,
        events,
        actor: Actor::new("test-operator"),
    }
}

impl Fixture {
    pub fn thing(&self, name: &str, groups: &[&str]) {
        self.registry
            .create_thing(
                &self.actor,
                NewThing {
                    name: name.into(),
                    groups: groups.iter().map(|g| g.to_string()).collect(),
                    ..NewThing::default()
                },
            )
            .expect("create thing");
    }

    pub fn group(&self, name: &str, parent: Option<&str>) {
        self.registry
            .create_thing_group(
                &self.actor,
                NewThingGroup {
                    name: name.into(),
                    parent: parent.map(Into::into),
                    ..NewThingGroup::default()
                },
            )
            .expect("create group");
    }

    pub fn crl_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca").join("crl.pem")).expect("crl")
    }
}

/// A PEM CSR for a fresh P-256 key.
pub fn csr() -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    rcgen::CertificateParams::default()
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem")
}

pub fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A policy allowing `action` on one topic ARN resource.
pub fn allow(action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}]}}"#
    )
}

pub fn deny(action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"{action}","Resource":"{resource}"}}]}}"#
    )
}
