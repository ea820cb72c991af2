//! What the broker asks on CONNECT: the policies that apply to a
//! certificate and client id, with the variable context they resolve in;
//! and `test_policy`, the same evaluation for an operator's question.
//!
//! AWS IoT semantics: policies attached to the certificate always apply.
//! The connection is bound to a thing — and the thing's own policies, its
//! groups' and their ancestors' apply, and the `iot:Connection.Thing.*`
//! variables resolve — only when the client id equals the name of the
//! thing the certificate is attached to.

use std::collections::BTreeSet;

use civitas_policy::{Action, Context, DecisionKind, NamedPolicy, PolicyDocument, evaluate};
use civitas_store::{CertificateStatus, PolicyTarget, RegistryView};
use serde::{Deserialize, Serialize};

use crate::certificates::{require_certificate, usable};
use crate::error::RegistryError;
use crate::groups::ancestors;
use crate::names;
use crate::service::Registry;

/// The statement that decided a policy test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidingStatement {
    pub policy: String,
    pub version: u32,
    /// Index in the policy's `Statement` list.
    pub index: usize,
    pub sid: Option<String>,
}

/// The answer to "may this client do this?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyTest {
    pub client_id: String,
    /// The certificate the connection was assumed to use.
    pub certificate: String,
    /// Set when the connection is bound to a thing.
    pub thing: Option<String>,
    pub action: String,
    pub resource: String,
    pub allowed: bool,
    /// `Allow`, `ExplicitDeny` or `ImplicitDeny`.
    pub effect: String,
    pub statement: Option<DecidingStatement>,
    /// One sentence: `allowed by policy "p" version 1 Statement[0] …`.
    pub explanation: String,
    /// The policies evaluated, as `name@version`, in evaluation order.
    pub policies: Vec<String>,
}

impl Registry {
    /// The policies that apply to a connection authenticated with the
    /// certificate `cert_serial` (any hex spelling) that asked for
    /// `client_id`, and the [`Context`] their variables resolve in.
    ///
    /// Errors: [`RegistryError::NotFound`] for a certificate the registry
    /// does not know, [`RegistryError::CertificateNotActive`] for one that
    /// is inactive, revoked or past its renewal overlap. Cache the result
    /// per connection together with [`Self::generation`].
    pub fn policies_for_connection(
        &self,
        cert_serial: &str,
        client_id: &str,
    ) -> Result<(Vec<NamedPolicy>, Context), RegistryError> {
        let serial = names::serial(cert_serial)?;
        let now = self.now_ms();
        let read = self.store.registry_read()?;
        let cert = require_certificate(&read, &serial)?;
        if !usable(&cert, now) {
            let status = match cert.status {
                CertificateStatus::Active => CertificateStatus::Inactive,
                other => other,
            };
            return Err(RegistryError::CertificateNotActive { serial, status });
        }
        let mut ctx = Context {
            region: self.settings.region.clone(),
            account: self.settings.account.clone(),
            client_id: client_id.to_owned(),
            cert_common_name: Some(cert.common_name.clone()),
            cert_serial_number: Some(serial.clone()),
            ..Context::default()
        };
        let mut targets = vec![PolicyTarget::Certificate(serial.clone())];
        let thing = match cert.thing.as_deref() {
            Some(name) if name == client_id => read.thing(name)?,
            _ => None,
        };
        if let Some(thing) = thing {
            targets.push(PolicyTarget::Thing(thing.name.clone()));
            for group in &thing.groups {
                targets.push(PolicyTarget::Group(group.clone()));
                for ancestor in ancestors(&read, group)? {
                    targets.push(PolicyTarget::Group(ancestor));
                }
            }
            ctx.thing_name = Some(thing.name);
            ctx.thing_type = thing.thing_type;
            ctx.attributes = thing.attributes;
            ctx.is_attached = true;
        }
        let mut seen = BTreeSet::new();
        let mut policies = Vec::new();
        for target in &targets {
            for name in read.target_policies(target)? {
                if !seen.insert(name.clone()) {
                    continue;
                }
                let Some(record) = read.policy(&name)? else {
                    continue;
                };
                let version = record.default_version;
                let text = record
                    .versions
                    .get(&version)
                    .map(|v| v.document.as_str())
                    .unwrap_or_default();
                let document = PolicyDocument::parse(text).map_err(|e| {
                    RegistryError::Corrupt(format!(
                        "stored policy {name:?} version {version} no longer parses: {e}"
                    ))
                })?;
                policies.push(NamedPolicy {
                    name,
                    version,
                    document,
                });
            }
        }
        Ok((policies, ctx))
    }

    /// Evaluates `action` on `resource` (a topic, topic filter, client id
    /// or thing name, or a full ARN) for `client_id`. Without `cert`, the
    /// newest usable certificate of the thing named `client_id` is assumed.
    pub fn test_policy(
        &self,
        client_id: &str,
        action: &str,
        resource: &str,
        cert: Option<&str>,
    ) -> Result<PolicyTest, RegistryError> {
        let action = Action::from_name(action).ok_or_else(|| {
            let known: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
            RegistryError::invalid(
                format!("action {action:?}"),
                format!("not one civitas evaluates ({})", known.join(", ")),
            )
        })?;
        let resource = resource_name(action, resource)?;
        let serial = match cert {
            Some(serial) => names::serial(serial)?,
            None => self.newest_usable_certificate(client_id)?,
        };
        let (policies, ctx) = self.policies_for_connection(&serial, client_id)?;
        let decision = evaluate(&policies, &ctx, action, &resource);
        Ok(PolicyTest {
            client_id: client_id.to_owned(),
            certificate: serial,
            thing: ctx.thing_name.clone(),
            action: action.name().to_owned(),
            resource,
            allowed: decision.allowed,
            effect: match decision.effect {
                DecisionKind::Allow => "Allow",
                DecisionKind::ExplicitDeny => "ExplicitDeny",
                DecisionKind::ImplicitDeny => "ImplicitDeny",
            }
            .to_owned(),
            explanation: decision.to_string(),
            statement: decision.statement.map(|s| DecidingStatement {
                policy: s.policy.to_string(),
                version: s.version,
                index: s.index,
                sid: s.sid.map(|sid| sid.to_string()),
            }),
            policies: policies
                .iter()
                .map(|p| format!("{}@{}", p.name, p.version))
                .collect(),
        })
    }

    fn newest_usable_certificate(&self, thing: &str) -> Result<String, RegistryError> {
        let now = self.now_ms();
        let read = self.store.registry_read()?;
        if read.thing(thing)?.is_none() {
            return Err(RegistryError::invalid(
                format!("client {thing:?}"),
                "is not a thing; name the certificate to test with",
            ));
        }
        read.certificates_of_thing(thing)?
            .into_iter()
            .filter(|c| usable(c, now))
            .max_by_key(|c| c.created_ms)
            .map(|c| c.serial_hex)
            .ok_or_else(|| {
                RegistryError::invalid(
                    format!("thing {thing:?}"),
                    "has no active certificate; name the certificate to test with",
                )
            })
    }
}

/// The registry is the broker's policy authority: a certificate it does
/// not know, or one that is not active, is refused.
impl civitas_broker::Authority for Registry {
    fn connection_policies(
        &self,
        certificate_serial: &str,
        client_id: &str,
    ) -> Result<(Vec<NamedPolicy>, Context), civitas_broker::Refusal> {
        self.policies_for_connection(certificate_serial, client_id)
            .map_err(|e| civitas_broker::Refusal(e.to_string()))
    }

    fn generation(&self) -> u64 {
        Registry::generation(self)
    }

    fn certificate_thing(&self, certificate_serial: &str) -> Option<String> {
        let serial = names::serial(certificate_serial).ok()?;
        self.store
            .registry_read()
            .ok()?
            .certificate(&serial)
            .ok()??
            .thing
    }
}

/// The resource name an action is checked against; a full ARN is reduced
/// to its name if its resource type fits the action.
fn resource_name(action: Action, resource: &str) -> Result<String, RegistryError> {
    if !resource.starts_with("arn:") {
        return Ok(resource.to_owned());
    }
    let rest = resource.splitn(6, ':').nth(5).unwrap_or_default();
    let expected = action.resource_type().as_str();
    match rest.split_once('/') {
        Some((kind, name)) if kind == expected => Ok(name.to_owned()),
        _ => Err(RegistryError::invalid(
            format!("resource {resource:?}"),
            format!(
                "{} is checked against {expected}/… resources",
                action.name()
            ),
        )),
    }
}
