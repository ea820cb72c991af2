//! The admin protocol: one JSON [`AdminRequest`] per line in, one JSON
//! [`AdminResponse`] per line out. The same types drive
//! [`crate::Registry::execute`] whether the request came over the admin
//! socket or from a CLI that opened the store itself.
//!
//! Requests are tagged by `op` (`{"op":"describe_thing","name":"lamp-1"}`),
//! responses by `type` with the payload in `data`
//! (`{"type":"thing","data":{...}}`); a failure is
//! `{"type":"error","data":{"code":"not_found","message":"..."}}`.

use serde::{Deserialize, Serialize};

use crate::certificates::{Certificate, IssuedCertificate, status_text};
use crate::claims::Claim;
use crate::connection::PolicyTest;
use crate::devices::{DeviceAdded, NewDevice};
use crate::enrollment::EnrollmentToken;
use crate::error::RegistryError;
use crate::groups::{NewThingGroup, ThingGroup, ThingGroupDescription};
use crate::policies::Policy;
use crate::provisioning::ProvisioningTemplate;
use crate::things::{DeletedThing, NewThing, Thing, ThingDescription, ThingType};
use civitas_store::CertificateStatus;

/// One operator request. Durations are whole seconds; policy targets are
/// written `cert:SERIAL`, `thing:NAME` or `group:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AdminRequest {
    /// Answered with `Done`: lets a client check that a server is there.
    Ping,
    AddDevice {
        device: NewDevice,
    },
    CreateThing {
        thing: NewThing,
    },
    DescribeThing {
        name: String,
    },
    ListThings,
    DeleteThing {
        name: String,
    },
    AddThingToGroup {
        thing: String,
        group: String,
    },
    RemoveThingFromGroup {
        thing: String,
        group: String,
    },
    CreateThingType {
        name: String,
        #[serde(default)]
        description: Option<String>,
    },
    DeprecateThingType {
        name: String,
        deprecated: bool,
    },
    ListThingTypes,
    DeleteThingType {
        name: String,
    },
    CreateThingGroup {
        group: NewThingGroup,
    },
    SetThingGroupParent {
        name: String,
        #[serde(default)]
        parent: Option<String>,
    },
    DescribeThingGroup {
        name: String,
    },
    ListThingGroups,
    DeleteThingGroup {
        name: String,
    },
    IssueCertificate {
        thing: String,
        #[serde(default)]
        csr: Option<String>,
        #[serde(default)]
        validity_secs: Option<u64>,
    },
    DescribeCertificate {
        serial: String,
    },
    ListCertificates,
    SetCertificateStatus {
        serial: String,
        #[serde(with = "status_text")]
        status: CertificateStatus,
    },
    RevokeCertificate {
        serial: String,
    },
    RenewCertificate {
        serial: String,
        #[serde(default)]
        csr: Option<String>,
        overlap_secs: u64,
    },
    RevokeThingCertificates {
        thing: String,
    },
    SetThingCertificatesStatus {
        thing: String,
        #[serde(with = "status_text")]
        status: CertificateStatus,
    },
    CreatePolicy {
        name: String,
        document: String,
    },
    CreatePolicyVersion {
        name: String,
        document: String,
        set_default: bool,
    },
    SetDefaultPolicyVersion {
        name: String,
        version: u32,
    },
    DeletePolicyVersion {
        name: String,
        version: u32,
    },
    GetPolicy {
        name: String,
    },
    ListPolicies,
    DeletePolicy {
        name: String,
    },
    AttachPolicy {
        name: String,
        target: String,
    },
    DetachPolicy {
        name: String,
        target: String,
    },
    TestPolicy {
        client_id: String,
        action: String,
        resource: String,
        #[serde(default)]
        cert: Option<String>,
    },
    CreateEnrollmentToken {
        thing: String,
        ttl_secs: u64,
    },
    RedeemEnrollmentToken {
        token: String,
        csr: String,
    },
    CreateProvisioningTemplate {
        name: String,
        document: String,
    },
    UpdateProvisioningTemplate {
        name: String,
        document: String,
    },
    GetProvisioningTemplate {
        name: String,
    },
    ListProvisioningTemplates,
    DeleteProvisioningTemplate {
        name: String,
    },
    /// A provisioning claim certificate (with its generated key) for a
    /// template.
    CreateClaim {
        name: String,
        template: String,
        #[serde(default)]
        validity_secs: Option<u64>,
    },
    /// A request for another subsystem served on the same socket (the
    /// rules engine is `service = "rules"`), in that subsystem's own JSON;
    /// answered with [`AdminResponse::Service`] or an error.
    Service {
        service: String,
        request: serde_json::Value,
    },
}

/// A failure, problem-style: a stable `code` (see
/// [`RegistryError::code`], plus `bad_request` and `forbidden` from the
/// socket itself) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub code: String,
    pub message: String,
}

impl Problem {
    pub fn new(code: &str, message: impl Into<String>) -> Problem {
        Problem {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl From<&RegistryError> for Problem {
    fn from(e: &RegistryError) -> Problem {
        Problem::new(e.code(), e.to_string())
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The answer to one [`AdminRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum AdminResponse {
    Done,
    Thing(Thing),
    ThingDescription(ThingDescription),
    Things(Vec<Thing>),
    DeviceAdded(DeviceAdded),
    ThingDeleted(DeletedThing),
    ThingType(ThingType),
    ThingTypes(Vec<ThingType>),
    ThingGroup(ThingGroup),
    ThingGroupDescription(ThingGroupDescription),
    ThingGroups(Vec<ThingGroup>),
    Certificate(Certificate),
    Certificates(Vec<Certificate>),
    Issued(IssuedCertificate),
    /// Certificate serials a thing-wide operation changed.
    Serials(Vec<String>),
    Policy(Policy),
    Policies(Vec<Policy>),
    /// Whether an attach or detach changed anything.
    Changed(bool),
    PolicyTest(PolicyTest),
    EnrollmentToken(EnrollmentToken),
    Template(ProvisioningTemplate),
    Templates(Vec<ProvisioningTemplate>),
    Claim(Claim),
    /// A subsystem's own JSON answer to a [`AdminRequest::Service`].
    Service(serde_json::Value),
    Error(Problem),
}
