//! The device registry as the broker's policy authority, its MQTT
//! provisioning service and certificate-expiry watch, and the example
//! identities `civitas up` creates on first run.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use civitas_broker::{Authority, Refusal, TopicService};
use civitas_policy::{Context as PolicyContext, NamedPolicy};
use civitas_registry::{
    Actor, DevicePolicy, EXPIRY_WARNING_WINDOW, ExpiryWatch, MqttProvisioning,
    MqttProvisioningSettings, NewDevice, NewThing, Registry, RegistryError,
};
use tokio_util::sync::CancellationToken;

/// The registry answers the broker's policy questions.
#[derive(Debug)]
pub struct RegistryAuthority(pub Arc<Registry>);

impl Authority for RegistryAuthority {
    fn connection_policies(
        &self,
        certificate_serial: &str,
        client_id: &str,
    ) -> Result<(Vec<NamedPolicy>, PolicyContext), Refusal> {
        self.0
            .policies_for_connection(certificate_serial, client_id)
            .map_err(|e| Refusal(e.to_string()))
    }

    fn generation(&self) -> u64 {
        self.0.generation()
    }

    fn certificate_thing(&self, certificate_serial: &str) -> Option<String> {
        Authority::certificate_thing(&*self.0, certificate_serial)
    }
}

/// Fleet provisioning (claims, AWS MQTT API) and certificate renewal over
/// MQTT, answered by the registry.
pub fn provisioning_service(registry: &Arc<Registry>) -> Arc<dyn TopicService> {
    Arc::new(MqttProvisioning::new(
        registry.clone(),
        MqttProvisioningSettings::default(),
    ))
}

/// Warns about certificates that expire within 30 days, now and daily;
/// the returned watch holds the latest count for monitoring.
pub fn watch_expiry(registry: &Arc<Registry>, shutdown: &CancellationToken) -> Arc<ExpiryWatch> {
    let watch = Arc::new(ExpiryWatch::new());
    tokio::spawn(civitas_registry::watch_certificate_expiry(
        registry.clone(),
        watch.clone(),
        EXPIRY_WARNING_WINDOW,
        Duration::from_secs(86400),
        shutdown.clone(),
    ));
    watch
}

/// The operators' control center: watches the whole city and sends
/// commands to devices, nothing else.
pub const OPERATOR_POLICY: &str = "civitas-operator";

const OPERATOR_POLICY_DOCUMENT: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
    {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": ["arn:aws:iot:*:*:topicfilter/city/#", "arn:aws:iot:*:*:topicfilter/$aws/events/presence/#"]},
    {"Effect": "Allow", "Action": "iot:Receive", "Resource": ["arn:aws:iot:*:*:topic/city/*", "arn:aws:iot:*:*:topic/$aws/events/presence/*"]},
    {"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/city/*/things/*/cmd/*"}
  ]
}"#;

/// Make sure `name` is a registered device with a certificate bundle in
/// `dir`: created (thing, certificate, policy) when missing.
pub fn ensure_device(
    registry: &Registry,
    dir: &Path,
    name: &str,
    policy: DevicePolicy,
) -> anyhow::Result<()> {
    let bundle_complete = ["pem", "key"]
        .iter()
        .all(|ext| dir.join(format!("{name}.{ext}")).exists())
        && dir.join("ca.pem").exists();
    if bundle_complete && registry.describe_thing(name).is_ok() {
        return Ok(());
    }
    if let DevicePolicy::Named(policy) = &policy
        && policy == OPERATOR_POLICY
    {
        match registry.create_policy(&Actor::system(), OPERATOR_POLICY, OPERATOR_POLICY_DOCUMENT) {
            Ok(_) | Err(RegistryError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e).context("creating the operator policy"),
        }
    }
    if registry.describe_thing(name).is_ok() {
        anyhow::bail!(
            "device {name} is registered but its bundle in {} is incomplete; \
             remove the device (civitas device delete {name}) to have it created again",
            dir.display()
        );
    }
    let added = registry
        .add_device(
            &Actor::system(),
            NewDevice {
                thing: NewThing {
                    name: name.to_string(),
                    ..NewThing::default()
                },
                policy,
                ..NewDevice::default()
            },
        )
        .with_context(|| format!("registering {name}"))?;
    added
        .certificate
        .to_issued_cert()
        .write_bundle(dir, name)
        .with_context(|| format!("writing the bundle of {name}"))?;
    tracing::info!(device = name, dir = %dir.display(), "registered device and wrote its certificate bundle");
    Ok(())
}
