//! Fleet provisioning and certificate renewal over MQTT: the AWS IoT
//! fleet-provisioning MQTT API, and a civitas topic with which a device
//! renews its own certificate before it expires. A
//! [`civitas_broker::TopicService`] over the [`Registry`].
//!
//! | request topic | payload | `/accepted` |
//! |---|---|---|
//! | `$aws/certificates/create-from-csr/json` | `{"certificateSigningRequest":PEM}` | `{"certificateId","certificatePem","certificateOwnershipToken"}` |
//! | `$aws/certificates/create/json` | `{}` | the same plus `"privateKey"` |
//! | `$aws/provisioning-templates/{template}/provision/json` | `{"certificateOwnershipToken","parameters":{…}}` | `{"deviceConfiguration":{},"thingName"}` |
//! | `civitas/things/{thing}/certificates/renew/json` | `{"certificateSigningRequest":PEM}` | `{"certificateId","certificatePem","notAfter","previousCertificateId","previousCertificateValidUntil"}` |
//!
//! A refusal goes to `…/rejected` as `{"statusCode","errorCode","errorMessage"}`.
//! Every reply goes to the requesting connection alone, as in AWS IoT
//! (they carry certificates, keys and tokens). civitas speaks the `json`
//! payload format only, and a `certificateId` is the certificate's serial
//! (lower-case hex), the name the registry knows it by.
//!
//! Renewal answers only a connection bound to the thing in the topic
//! (client id = thing name) by mutual TLS with an active certificate of
//! that thing that has not been renewed before; the new certificate gets
//! the old one's policies and the old one keeps working for the
//! configured overlap.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use civitas_broker::{ServiceReply, ServiceRequest, TopicService};
use civitas_pki::PkiError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::RegistryError;
use crate::events::Actor;
use crate::service::Registry;

/// AWS `CreateCertificateFromCsr`.
pub const CREATE_FROM_CSR_TOPIC: &str = "$aws/certificates/create-from-csr/json";
/// AWS `CreateKeysAndCertificate`.
pub const CREATE_KEYS_TOPIC: &str = "$aws/certificates/create/json";
const TEMPLATES_PREFIX: &str = "$aws/provisioning-templates/";
const PROVISION_SUFFIX: &str = "/provision/json";
const RENEW_PREFIX: &str = "civitas/things/";
const RENEW_SUFFIX: &str = "/certificates/renew/json";

/// AWS `RegisterThing` for `template`.
pub fn provision_topic(template: &str) -> String {
    format!("{TEMPLATES_PREFIX}{template}{PROVISION_SUFFIX}")
}

/// Where the device `thing` asks for a successor of its certificate.
pub fn renew_topic(thing: &str) -> String {
    format!("{RENEW_PREFIX}{thing}{RENEW_SUFFIX}")
}

/// How the MQTT provisioning service behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttProvisioningSettings {
    /// How long a certificate renewed over MQTT keeps working beside its
    /// successor, so that a device can store the new one and reconnect.
    pub renewal_overlap: Duration,
}

impl Default for MqttProvisioningSettings {
    fn default() -> MqttProvisioningSettings {
        MqttProvisioningSettings {
            renewal_overlap: Duration::from_secs(7 * 86400),
        }
    }
}

/// The fleet-provisioning and renewal topic service.
#[derive(Debug)]
pub struct MqttProvisioning {
    registry: Arc<Registry>,
    settings: MqttProvisioningSettings,
}

/// A request, by topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation<'a> {
    CreateFromCsr,
    CreateKeys,
    Provision { template: &'a str },
    Renew { thing: &'a str },
}

fn operation(topic: &str) -> Option<Operation<'_>> {
    if topic == CREATE_FROM_CSR_TOPIC {
        return Some(Operation::CreateFromCsr);
    }
    if topic == CREATE_KEYS_TOPIC {
        return Some(Operation::CreateKeys);
    }
    if let Some(template) = one_level(topic, TEMPLATES_PREFIX, PROVISION_SUFFIX) {
        return Some(Operation::Provision { template });
    }
    one_level(topic, RENEW_PREFIX, RENEW_SUFFIX).map(|thing| Operation::Renew { thing })
}

/// The single, non-empty topic level between `prefix` and `suffix`.
fn one_level<'a>(topic: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let level = topic.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!level.is_empty() && !level.contains('/')).then_some(level)
}

/// A refusal, in AWS's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rejection {
    status: u16,
    code: &'static str,
    message: String,
}

impl Rejection {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Rejection {
        Rejection {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_payload(message: impl Into<String>) -> Rejection {
        Rejection::new(400, "InvalidPayload", message)
    }

    fn forbidden(message: impl Into<String>) -> Rejection {
        Rejection::new(403, "Forbidden", message)
    }

    fn to_json(&self) -> Value {
        json!({
            "statusCode": self.status,
            "errorCode": self.code,
            "errorMessage": self.message,
        })
    }
}

/// What a device is told when the registry refuses: enough to fix its own
/// request, nothing about anyone else's (internal errors and token
/// details stay in the security events and the log).
impl From<RegistryError> for Rejection {
    fn from(e: RegistryError) -> Rejection {
        match &e {
            RegistryError::TokenRefused { kind, .. } => Rejection::new(
                400,
                "InvalidCertificateOwnershipToken",
                format!("the {kind} token is unknown, expired or already used"),
            ),
            RegistryError::Pki(PkiError::InvalidCsr(_)) => {
                Rejection::new(400, "InvalidCsr", e.to_string())
            }
            RegistryError::CertificateNotActive { .. } => Rejection::forbidden(e.to_string()),
            RegistryError::NotFound { .. } => {
                Rejection::new(404, "ResourceNotFound", e.to_string())
            }
            RegistryError::AlreadyExists { .. } => {
                Rejection::new(409, "ResourceAlreadyExists", e.to_string())
            }
            RegistryError::Conflict(_) => Rejection::new(409, "Conflict", e.to_string()),
            _ if e.code() == "invalid" => Rejection::new(400, "InvalidParameters", e.to_string()),
            _ => {
                tracing::error!(error = %e, "provisioning over MQTT failed");
                Rejection::new(500, "InternalError", "internal error")
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CsrRequest {
    certificate_signing_request: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProvisionRequest {
    certificate_ownership_token: String,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

fn parse<'de, T: Deserialize<'de>>(payload: &'de [u8]) -> Result<T, Rejection> {
    serde_json::from_slice(payload).map_err(|e| Rejection::bad_payload(format!("payload: {e}")))
}

fn seconds(ms: u64) -> u64 {
    ms / 1000
}

impl MqttProvisioning {
    pub fn new(registry: Arc<Registry>, settings: MqttProvisioningSettings) -> MqttProvisioning {
        MqttProvisioning { registry, settings }
    }

    fn answer(&self, op: Operation<'_>, request: &ServiceRequest) -> Result<Value, Rejection> {
        let actor = Actor::device(&request.client_id);
        let registry = &self.registry;
        match op {
            Operation::CreateFromCsr => {
                let body: CsrRequest = parse(&request.payload)?;
                let (cert, token) = registry
                    .create_certificate_from_csr(&actor, &body.certificate_signing_request)?;
                Ok(json!({
                    "certificateId": cert.serial,
                    "certificatePem": cert.certificate_pem,
                    "certificateOwnershipToken": token,
                }))
            }
            Operation::CreateKeys => {
                // AWS devices send `{}`; an empty payload is as good.
                if !request.payload.is_empty() {
                    let _: serde_json::Map<String, Value> = parse(&request.payload)?;
                }
                let (cert, token) = registry.create_keys_and_certificate(&actor)?;
                let key = cert
                    .private_key_pem
                    .ok_or_else(|| RegistryError::Corrupt("a generated key is missing".into()))?;
                Ok(json!({
                    "certificateId": cert.serial,
                    "certificatePem": cert.certificate_pem,
                    "privateKey": key,
                    "certificateOwnershipToken": token,
                }))
            }
            Operation::Provision { template } => {
                let body: ProvisionRequest = parse(&request.payload)?;
                let outcome = registry.register_with_ownership_token(
                    &actor,
                    &body.certificate_ownership_token,
                    template,
                    &body.parameters,
                )?;
                Ok(json!({
                    "deviceConfiguration": {},
                    "thingName": outcome.thing_name,
                }))
            }
            Operation::Renew { thing } => self.renew(thing, request, &actor),
        }
    }

    fn renew(
        &self,
        thing: &str,
        request: &ServiceRequest,
        actor: &Actor,
    ) -> Result<Value, Rejection> {
        let Some(serial) = &request.certificate_serial else {
            return Err(Rejection::forbidden(
                "renewal needs a connection authenticated by its certificate",
            ));
        };
        if &*request.client_id != thing {
            return Err(Rejection::forbidden(
                "a device renews its own certificate: connect with the thing name as client id",
            ));
        }
        let body: CsrRequest = parse(&request.payload)?;
        let current = self.registry.describe_certificate(serial)?;
        if current.thing.as_deref() != Some(thing) {
            return Err(Rejection::forbidden(format!(
                "the connection's certificate does not belong to thing {thing:?}"
            )));
        }
        let overlap = self.settings.renewal_overlap;
        let issued = self.registry.renew_own_certificate(
            actor,
            serial,
            &body.certificate_signing_request,
            overlap,
        )?;
        let previous = self.registry.describe_certificate(serial)?;
        Ok(json!({
            "certificateId": issued.serial,
            "certificatePem": issued.certificate_pem,
            "notAfter": seconds(issued.not_after_ms),
            "previousCertificateId": serial,
            "previousCertificateValidUntil": previous.overlap_until_ms.map(seconds),
        }))
    }
}

impl TopicService for MqttProvisioning {
    fn handles(&self, topic: &str) -> bool {
        operation(topic).is_some()
    }

    fn handle(&self, request: ServiceRequest) -> Vec<ServiceReply> {
        let Some(op) = operation(&request.topic) else {
            return Vec::new();
        };
        let (suffix, body) = match self.answer(op, &request) {
            Ok(accepted) => ("accepted", accepted),
            Err(rejection) => ("rejected", rejection.to_json()),
        };
        vec![ServiceReply::to_requester(
            format!("{}/{suffix}", request.topic),
            body.to_string(),
            civitas_mqtt::QoS::AtLeastOnce,
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_their_operation() {
        assert_eq!(
            operation("$aws/certificates/create-from-csr/json"),
            Some(Operation::CreateFromCsr)
        );
        assert_eq!(
            operation("$aws/certificates/create/json"),
            Some(Operation::CreateKeys)
        );
        assert_eq!(
            operation(&provision_topic("lamps")),
            Some(Operation::Provision { template: "lamps" })
        );
        assert_eq!(
            operation(&renew_topic("lamp-1")),
            Some(Operation::Renew { thing: "lamp-1" })
        );
        for other in [
            "$aws/certificates/create/json/accepted",
            "$aws/certificates/create-from-csr/json/rejected",
            "$aws/provisioning-templates/lamps/provision/json/accepted",
            "$aws/provisioning-templates//provision/json",
            "$aws/provisioning-templates/a/b/provision/json",
            "$aws/certificates/create/cbor",
            "civitas/things/lamp-1/certificates/renew/json/accepted",
            "civitas/things//certificates/renew/json",
        ] {
            assert_eq!(operation(other), None, "{other}");
        }
    }

    #[test]
    fn rejections_have_the_aws_shape_and_hide_internals() {
        let r: Rejection = RegistryError::TokenRefused {
            kind: "ownership",
            reason: "expired",
        }
        .into();
        assert_eq!(r.status, 400);
        // The device learns that the token failed, not why.
        let used: Rejection = RegistryError::TokenRefused {
            kind: "ownership",
            reason: "already used",
        }
        .into();
        assert_eq!(r, used);
        let j = r.to_json();
        assert_eq!(j["statusCode"], 400);
        assert_eq!(j["errorCode"], "InvalidCertificateOwnershipToken");
        let internal: Rejection = RegistryError::Corrupt("secret detail".into()).into();
        assert_eq!(internal.status, 500);
        assert_eq!(internal.message, "internal error");
    }
}
