//! [`Registry::execute`]: one admin request to one registry call.

use std::time::Duration;

use civitas_store::PolicyTarget;

use crate::error::RegistryError;
use crate::events::Actor;
use crate::protocol::{AdminRequest, AdminResponse, Problem};
use crate::service::Registry;

fn target(text: &str) -> Result<PolicyTarget, RegistryError> {
    PolicyTarget::parse(text).ok_or_else(|| {
        RegistryError::invalid(
            format!("target {text:?}"),
            "expected cert:SERIAL, thing:NAME or group:NAME",
        )
    })
}

impl Registry {
    /// Runs one admin request on behalf of `actor`. Never fails: errors
    /// become [`AdminResponse::Error`]. Blocking (see [`Registry`]).
    pub fn execute(&self, actor: &Actor, request: AdminRequest) -> AdminResponse {
        self.dispatch(actor, request)
            .unwrap_or_else(|e| AdminResponse::Error(Problem::from(&e)))
    }

    fn dispatch(
        &self,
        actor: &Actor,
        request: AdminRequest,
    ) -> Result<AdminResponse, RegistryError> {
        use AdminRequest as R;
        use AdminResponse as A;
        Ok(match request {
            R::Ping => A::Done,
            R::AddDevice { device } => A::DeviceAdded(self.add_device(actor, device)?),
            R::CreateThing { thing } => A::Thing(self.create_thing(actor, thing)?),
            R::DescribeThing { name } => A::ThingDescription(self.describe_thing(&name)?),
            R::ListThings => A::Things(self.list_things()?),
            R::DeleteThing { name } => A::ThingDeleted(self.delete_thing(actor, &name)?),
            R::AddThingToGroup { thing, group } => {
                A::Thing(self.add_thing_to_group(actor, &thing, &group)?)
            }
            R::RemoveThingFromGroup { thing, group } => {
                A::Thing(self.remove_thing_from_group(actor, &thing, &group)?)
            }
            R::CreateThingType { name, description } => {
                A::ThingType(self.create_thing_type(actor, &name, description.as_deref())?)
            }
            R::DeprecateThingType { name, deprecated } => {
                A::ThingType(self.deprecate_thing_type(actor, &name, deprecated)?)
            }
            R::ListThingTypes => A::ThingTypes(self.list_thing_types()?),
            R::DeleteThingType { name } => {
                self.delete_thing_type(actor, &name)?;
                A::Done
            }
            R::CreateThingGroup { group } => A::ThingGroup(self.create_thing_group(actor, group)?),
            R::SetThingGroupParent { name, parent } => {
                A::ThingGroup(self.set_thing_group_parent(actor, &name, parent.as_deref())?)
            }
            R::DescribeThingGroup { name } => {
                A::ThingGroupDescription(self.describe_thing_group(&name)?)
            }
            R::ListThingGroups => A::ThingGroups(self.list_thing_groups()?),
            R::DeleteThingGroup { name } => {
                self.delete_thing_group(actor, &name)?;
                A::Done
            }
            R::IssueCertificate {
                thing,
                csr,
                validity_secs,
            } => A::Issued(self.issue_certificate_for(
                actor,
                &thing,
                csr.as_deref(),
                validity_secs.map(Duration::from_secs),
            )?),
            R::DescribeCertificate { serial } => {
                A::Certificate(self.describe_certificate(&serial)?)
            }
            R::ListCertificates => A::Certificates(self.list_certificates()?),
            R::SetCertificateStatus { serial, status } => {
                A::Certificate(self.set_certificate_status(actor, &serial, status)?)
            }
            R::RevokeCertificate { serial } => {
                A::Certificate(self.revoke_certificate(actor, &serial)?)
            }
            R::RenewCertificate {
                serial,
                csr,
                overlap_secs,
            } => A::Issued(self.renew_certificate(
                actor,
                &serial,
                csr.as_deref(),
                Duration::from_secs(overlap_secs),
            )?),
            R::RevokeThingCertificates { thing } => {
                A::Serials(self.revoke_thing_certificates(actor, &thing)?)
            }
            R::SetThingCertificatesStatus { thing, status } => {
                A::Serials(self.set_thing_certificates_status(actor, &thing, status)?)
            }
            R::CreatePolicy { name, document } => {
                A::Policy(self.create_policy(actor, &name, &document)?)
            }
            R::CreatePolicyVersion {
                name,
                document,
                set_default,
            } => A::Policy(self.create_policy_version(actor, &name, &document, set_default)?),
            R::SetDefaultPolicyVersion { name, version } => {
                A::Policy(self.set_default_policy_version(actor, &name, version)?)
            }
            R::DeletePolicyVersion { name, version } => {
                A::Policy(self.delete_policy_version(actor, &name, version)?)
            }
            R::GetPolicy { name } => A::Policy(self.get_policy(&name)?),
            R::ListPolicies => A::Policies(self.list_policies()?),
            R::DeletePolicy { name } => {
                self.delete_policy(actor, &name)?;
                A::Done
            }
            R::AttachPolicy { name, target: t } => {
                A::Changed(self.attach_policy(actor, &name, &target(&t)?)?)
            }
            R::DetachPolicy { name, target: t } => {
                A::Changed(self.detach_policy(actor, &name, &target(&t)?)?)
            }
            R::TestPolicy {
                client_id,
                action,
                resource,
                cert,
            } => {
                A::PolicyTest(self.test_policy(&client_id, &action, &resource, cert.as_deref())?)
            }
            R::CreateEnrollmentToken { thing, ttl_secs } => A::EnrollmentToken(
                self.create_enrollment_token(actor, &thing, Duration::from_secs(ttl_secs))?,
            ),
            R::RedeemEnrollmentToken { token, csr } => {
                A::Issued(self.redeem_enrollment_token(actor, &token, &csr)?)
            }
            R::CreateProvisioningTemplate { name, document } => {
                A::Template(self.create_provisioning_template(actor, &name, &document)?)
            }
            R::UpdateProvisioningTemplate { name, document } => {
                A::Template(self.update_provisioning_template(actor, &name, &document)?)
            }
            R::GetProvisioningTemplate { name } => {
                A::Template(self.get_provisioning_template(&name)?)
            }
            R::ListProvisioningTemplates => A::Templates(self.list_provisioning_templates()?),
            R::DeleteProvisioningTemplate { name } => {
                self.delete_provisioning_template(actor, &name)?;
                A::Done
            }
            R::CreateClaim {
                name,
                template,
                validity_secs,
            } => A::Claim(self.create_claim(
                actor,
                &name,
                &template,
                validity_secs.map(Duration::from_secs),
            )?),
            // Served by the admin socket's other services, never here.
            R::Service { service, .. } => {
                return Err(RegistryError::NotFound {
                    kind: "admin service",
                    name: service,
                });
            }
        })
    }
}
