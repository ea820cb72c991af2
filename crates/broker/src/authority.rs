//! Authorization by AWS IoT policies kept in the device registry.
//!
//! The broker does not read the registry itself: an [`Authority`] (the
//! registry, in the civitas binary) answers which policies apply to a
//! certificate and client id, and with what variables. The broker resolves
//! them once per connection into a [`PolicyAuthorizer`], whose checks cost
//! a few pattern matches and do not grow with the number of devices. When
//! the authority's generation moves (a policy, attachment, thing or
//! certificate changed), every connection resolves again — and one whose
//! certificate is no longer active is disconnected.

use civitas_policy::{Action, Context, NamedPolicy, ResolvedPolicies};

use crate::authz::Authorizer;

/// Why a connection is not allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// The source of policies for certificate-authenticated connections.
pub trait Authority: Send + Sync + std::fmt::Debug + 'static {
    /// The policies that apply to a connection with this certificate
    /// (lower-case hex serial) and client id, and the context their
    /// variables resolve in. Refused when the registry does not know the
    /// certificate or it is not active.
    fn connection_policies(
        &self,
        certificate_serial: &str,
        client_id: &str,
    ) -> Result<(Vec<NamedPolicy>, Context), Refusal>;

    /// Changes whenever a decision of `connection_policies` could change.
    fn generation(&self) -> u64;

    /// The thing this certificate is attached to, if any. A listener that
    /// wants the client id to match the identity then wants the thing's
    /// name rather than the common name: a certificate made by fleet
    /// provisioning is named before its thing exists.
    fn certificate_thing(&self, certificate_serial: &str) -> Option<String> {
        let _ = certificate_serial;
        None
    }
}

/// A connection's resolved policies.
#[derive(Debug)]
pub struct PolicyAuthorizer {
    resolved: ResolvedPolicies,
}

impl PolicyAuthorizer {
    /// Resolve for one connection; refused unless `iot:Connect` is allowed
    /// on the client id.
    pub fn connect(
        authority: &dyn Authority,
        certificate_serial: &str,
        client_id: &str,
    ) -> Result<PolicyAuthorizer, Refusal> {
        let (policies, context) = authority.connection_policies(certificate_serial, client_id)?;
        let resolved = ResolvedPolicies::resolve(&policies, &context);
        let decision = resolved.check(Action::Connect, client_id);
        if !decision.allowed {
            return Err(Refusal(format!("iot:Connect: {decision}")));
        }
        Ok(PolicyAuthorizer { resolved })
    }
}

impl Authorizer for PolicyAuthorizer {
    fn may_publish(&self, topic: &str) -> bool {
        self.resolved.allows(Action::Publish, topic)
    }
    fn may_retain(&self, topic: &str) -> bool {
        self.resolved.allows(Action::RetainPublish, topic)
    }
    fn may_subscribe(&self, filter: &str) -> bool {
        self.resolved.allows(Action::Subscribe, filter)
    }
    fn may_receive(&self, topic: &str) -> bool {
        self.resolved.allows(Action::Receive, topic)
    }
}
