//! Provisioning claims: a certificate that a manufacturer puts on every
//! device of a batch, good for one thing only — asking civitas, over MQTT,
//! for the device's own certificate and thing through one provisioning
//! template (AWS IoT "provisioning by claim").
//!
//! The claim's policy follows the AWS developer guide's claim policy, one
//! step tighter: a claim may publish only the three request topics, and
//! subscribe to and receive only their `/accepted` and `/rejected`
//! replies — never publish a reply, which would let one claimant hand
//! another a key of its choosing.

use std::time::Duration;

use civitas_store::{CertificateStatus, PolicyTarget, RegistryView};
use serde::{Deserialize, Serialize};

use crate::certificates::{IssuedCertificate, record_of};
use crate::error::RegistryError;
use crate::events::Actor;
use crate::names;
use crate::policies::put_new_policy;
use crate::service::Registry;

/// What [`Registry::create_claim`] made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The claim certificate (CN = the claim's name, attached to no
    /// thing), with its generated private key.
    pub certificate: IssuedCertificate,
    /// The policy attached to it: [`claim_policy_name`] of the template.
    pub policy: String,
    pub template: String,
}

/// The name of the claim policy for `template`.
pub fn claim_policy_name(template: &str) -> String {
    format!("civitas-claim-{template}")
}

/// The claim policy document for `template` (a valid template name: it
/// goes into resource ARNs unescaped).
pub fn claim_policy_document(template: &str) -> String {
    let arn = |kind: &str, rest: &str| format!("\"arn:aws:iot:*:*:{kind}/{rest}\"");
    let requests = [
        "$aws/certificates/create/json".to_owned(),
        "$aws/certificates/create-from-csr/json".to_owned(),
        format!("$aws/provisioning-templates/{template}/provision/json"),
    ];
    let publish: Vec<String> = requests.iter().map(|t| arn("topic", t)).collect();
    let receive: Vec<String> = requests
        .iter()
        .flat_map(|t| [format!("{t}/accepted"), format!("{t}/rejected")])
        .map(|t| arn("topic", &t))
        .collect();
    let subscribe: Vec<String> = requests
        .iter()
        .flat_map(|t| [format!("{t}/accepted"), format!("{t}/rejected")])
        .map(|t| arn("topicfilter", &t))
        .collect();
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{"Sid": "ConnectToProvision", "Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}},
    {{"Sid": "PublishProvisioningRequests", "Effect": "Allow", "Action": "iot:Publish", "Resource": [{}]}},
    {{"Sid": "ReceiveProvisioningReplies", "Effect": "Allow", "Action": "iot:Receive", "Resource": [{}]}},
    {{"Sid": "SubscribeToProvisioningReplies", "Effect": "Allow", "Action": "iot:Subscribe", "Resource": [{}]}}
  ]
}}
"#,
        publish.join(", "),
        receive.join(", "),
        subscribe.join(", "),
    )
}

impl Registry {
    /// Creates a provisioning claim for `template`: a certificate with a
    /// generated key (CN = `name`, ACTIVE, attached to no thing) and the
    /// template's claim policy, created on first use. The template must
    /// exist. `validity` defaults to the device certificate validity.
    pub fn create_claim(
        &self,
        actor: &Actor,
        name: &str,
        template: &str,
        validity: Option<Duration>,
    ) -> Result<Claim, RegistryError> {
        let now = self.now_ms();
        let policy = claim_policy_name(template);
        self.change(
            actor,
            "CreateProvisioningClaim",
            format!("template:{template}"),
            |ca, details| {
                names::template_name(template)?;
                names::thing_name(name)?;
                let read = self.store.registry_read()?;
                if read.provisioning_template(template)?.is_none() {
                    return Err(RegistryError::not_found("provisioning template", template));
                }
                drop(read);
                let issued = self.sign(ca, name, None, validity)?;
                details.insert("claim".into(), name.to_owned());
                details.insert("serial".into(), issued.serial_hex.clone());
                details.insert("policy".into(), policy.clone());
                self.commit_issued(ca, &issued, |w| {
                    if w.policy(&policy)?.is_none() {
                        put_new_policy(w, &policy, &claim_policy_document(template), now)?;
                    }
                    w.put_certificate(&record_of(
                        &issued,
                        None,
                        name,
                        CertificateStatus::Active,
                        now,
                    ))?;
                    w.attach(
                        &policy,
                        &PolicyTarget::Certificate(issued.serial_hex.clone()),
                    )?;
                    Ok(())
                })?;
                self.bump();
                Ok(Claim {
                    certificate: IssuedCertificate::new(&issued, None, name),
                    policy: policy.clone(),
                    template: template.to_owned(),
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use civitas_policy::PolicyDocument;

    use super::*;

    #[test]
    fn the_claim_policy_parses_and_names_its_template() {
        let text = claim_policy_document("streetlights");
        let doc = PolicyDocument::parse(&text).unwrap();
        assert_eq!(doc.statements().len(), 4);
        assert!(doc.unsupported_variables().is_empty());
        assert!(text.contains("$aws/provisioning-templates/streetlights/provision/json"));
        assert_eq!(
            claim_policy_name("streetlights"),
            "civitas-claim-streetlights"
        );
    }
}
