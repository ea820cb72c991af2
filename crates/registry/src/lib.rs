//! The civitas device registry, in the role of the AWS IoT registry:
//! things, thing types and nested thing groups; certificates issued,
//! deactivated, revoked and renewed through the civitas CA; versioned AWS
//! IoT policies attached to certificates, things and groups; one-time
//! enrollment tokens; fleet-provisioning templates with AWS-style
//! ownership tokens and provisioning claims; the fleet-provisioning MQTT
//! API and certificate renewal over MQTT ([`MqttProvisioning`], a broker
//! topic service); warnings for certificates close to expiry.
//!
//! [`Registry`] is the service. The broker calls
//! [`Registry::policies_for_connection`] on CONNECT and caches the
//! resolved policies with [`Registry::generation`]. Operators reach it
//! through [`AdminRequest`]s run by [`Registry::execute`], either over the
//! running server's admin socket ([`AdminServer`], [`AdminClient`]) or on
//! a store the CLI opened itself. Every change, and every refused
//! attempt, becomes a [`SecurityEvent`] for the [`EventSink`].
//!
//! Registry data lives in the civitas store (`civitas_store` registry
//! tables); the logic never reads the system clock directly but a
//! [`Clock`].

mod admin_client;
mod admin_server;
mod certificates;
mod claims;
mod clock;
mod connection;
mod devices;
mod enrollment;
mod error;
mod events;
mod execute;
mod expiry;
mod groups;
mod maintenance;
mod mqtt_provisioning;
mod names;
mod policies;
mod protocol;
mod provisioning;
mod service;
mod things;
mod tokens;

pub use admin_client::{AdminClient, AdminError};
pub use admin_server::{
    ADMIN_SOCKET_FILE, AdminServer, AdminService, MAX_REQUEST_BYTES, PeerAccess, current_uid,
};
pub use certificates::{Certificate, IssuedCertificate};
pub use civitas_store::{CertificateStatus, PolicyTarget};
pub use claims::{Claim, claim_policy_document, claim_policy_name};
pub use clock::{Clock, ManualClock, SystemClock};
pub use connection::{DecidingStatement, PolicyTest};
pub use devices::{DeviceAdded, DevicePolicy, NewDevice};
pub use enrollment::{EnrollmentToken, MAX_ENROLLMENT_TTL};
pub use error::RegistryError;
pub use events::{Actor, EventSink, MemorySink, Outcome, SecurityEvent, TracingSink};
pub use expiry::{
    EXPIRY_WARNING_WINDOW, ExpiringCertificate, ExpiryWatch, watch_certificate_expiry,
};
pub use groups::{NewThingGroup, ThingGroup, ThingGroupDescription};
pub use maintenance::run_maintenance;
pub use mqtt_provisioning::{
    CREATE_FROM_CSR_TOPIC, CREATE_KEYS_TOPIC, MqttProvisioning, MqttProvisioningSettings,
    provision_topic, renew_topic,
};
pub use policies::{MAX_POLICY_VERSIONS, Policy, PolicyVersion};
pub use protocol::{AdminRequest, AdminResponse, Problem};
pub use provisioning::{
    ProvisionCertificate, ProvisionOutcome, ProvisioningTemplate, TemplateDocument,
};
pub use service::{Registry, RegistrySettings, STANDARD_DEVICE_POLICY};
pub use things::{AttachedPolicy, DeletedThing, NewThing, Thing, ThingDescription, ThingType};
