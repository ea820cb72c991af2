//! Enrollment tokens (once only, until expiry), fleet provisioning from a
//! template, and the ownership-token flow with its one-hour default expiry,
//! all on a manual clock.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use civitas_registry::{
    CertificateStatus, PolicyTarget, ProvisionCertificate, RegistryError, RegistrySettings,
    STANDARD_DEVICE_POLICY,
};
use civitas_store::RegistryView;
use common::*;

fn refused(result: Result<impl std::fmt::Debug, RegistryError>, reason: &str) {
    match result {
        Err(RegistryError::TokenRefused { reason: r, .. }) => assert_eq!(r, reason),
        other => panic!("expected a refusal ({reason}), got {other:?}"),
    }
}

#[test]
fn an_enrollment_token_works_once_and_not_after_expiry() {
    let f = fixture();
    let r = &f.registry;
    let token = r
        .create_enrollment_token(&f.actor, "lamp-1", Duration::from_secs(3600))
        .unwrap();
    assert!(token.thing_created);
    assert!(token.token.starts_with("cve_"));
    // Only the hash is stored.
    let read = r.store().registry_read().unwrap();
    let stored = read.enrollment_tokens().unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].0, token.token);
    drop(read);

    // A bad CSR does not use the token up.
    assert_eq!(
        r.redeem_enrollment_token(&f.actor, &token.token, "junk")
            .unwrap_err()
            .code(),
        "invalid"
    );
    let cert = r
        .redeem_enrollment_token(&f.actor, &token.token, &csr())
        .unwrap();
    assert_eq!(cert.thing.as_deref(), Some("lamp-1"));
    assert!(cert.private_key_pem.is_none());
    let (policies, _) = r.policies_for_connection(&cert.serial, "lamp-1").unwrap();
    assert_eq!(policies[0].name, STANDARD_DEVICE_POLICY);
    refused(
        r.redeem_enrollment_token(&f.actor, &token.token, &csr()),
        "already used",
    );
    refused(
        r.redeem_enrollment_token(&f.actor, "cve_guessed", &csr()),
        "unknown",
    );

    let late = r
        .create_enrollment_token(&f.actor, "lamp-1", Duration::from_secs(60))
        .unwrap();
    assert!(!late.thing_created);
    f.clock.advance(Duration::from_secs(59));
    let still = r
        .create_enrollment_token(&f.actor, "lamp-1", Duration::from_secs(60))
        .unwrap();
    f.clock.advance(Duration::from_secs(1));
    refused(
        r.redeem_enrollment_token(&f.actor, &late.token, &csr()),
        "expired",
    );
    r.redeem_enrollment_token(&f.actor, &still.token, &csr())
        .unwrap();
    assert!(
        r.create_enrollment_token(&f.actor, "lamp-1", Duration::from_secs(31 * 86400))
            .is_err()
    );

    // Upkeep purges what has expired.
    f.clock.advance(Duration::from_secs(3600));
    assert_eq!(r.purge_expired_tokens().unwrap(), 3);
}

const TEMPLATE: &str = r#"{
    "thingNameParameter": "SerialNumber",
    "thingNamePrefix": "lamp-",
    "thingType": "streetlight",
    "groups": ["north"],
    "attributes": {"model": "Model"}
}"#;

fn params(serial: &str) -> BTreeMap<String, String> {
    attrs(&[("SerialNumber", serial), ("Model", "L7")])
}

#[test]
fn provisioning_from_a_template_creates_new_things_only() {
    let f = fixture();
    let r = &f.registry;
    r.create_thing_type(&f.actor, "streetlight", None).unwrap();
    f.group("north", None);
    assert!(
        r.create_provisioning_template(
            &f.actor,
            "fleet",
            r#"{"thingNameParameter":"S","bogus":1}"#
        )
        .unwrap_err()
        .to_string()
        .contains("unknown field")
    );
    let template = r
        .create_provisioning_template(&f.actor, "fleet", TEMPLATE)
        .unwrap();
    assert!(template.enabled);

    let outcome = r
        .provision_from_template(
            &f.actor,
            "fleet",
            &params("0001"),
            ProvisionCertificate::Generate,
        )
        .unwrap();
    assert_eq!(outcome.thing_name, "lamp-0001");
    assert_eq!(outcome.groups, ["north"]);
    assert_eq!(outcome.policy.as_deref(), Some(STANDARD_DEVICE_POLICY));
    assert!(outcome.certificate.private_key_pem.is_some());
    let thing = r.describe_thing("lamp-0001").unwrap();
    assert_eq!(thing.thing.attributes, attrs(&[("model", "L7")]));
    assert_eq!(thing.thing.thing_type.as_deref(), Some("streetlight"));
    assert!(
        r.policies_for_connection(&outcome.certificate.serial, "lamp-0001")
            .is_ok()
    );

    // The same name again is refused: a device cannot take over a thing.
    assert_eq!(
        r.provision_from_template(
            &f.actor,
            "fleet",
            &params("0001"),
            ProvisionCertificate::Csr(csr())
        )
        .unwrap_err()
        .code(),
        "already_exists"
    );
    assert_eq!(
        r.provision_from_template(
            &f.actor,
            "fleet",
            &attrs(&[("Model", "L7")]),
            ProvisionCertificate::Generate
        )
        .unwrap_err()
        .code(),
        "invalid"
    );
    let disabled = TEMPLATE.replace("\"groups\"", "\"enabled\": false, \"groups\"");
    r.update_provisioning_template(&f.actor, "fleet", &disabled)
        .unwrap();
    assert_eq!(
        r.provision_from_template(
            &f.actor,
            "fleet",
            &params("0002"),
            ProvisionCertificate::Generate
        )
        .unwrap_err()
        .code(),
        "conflict"
    );
    assert_eq!(r.list_provisioning_templates().unwrap().len(), 1);
    r.delete_provisioning_template(&f.actor, "fleet").unwrap();
    assert!(r.get_provisioning_template("fleet").is_err());
}

#[test]
fn ownership_tokens_register_once_and_expire_after_an_hour() {
    let f = fixture_with(RegistrySettings::default());
    let r = &f.registry;
    r.create_thing_type(&f.actor, "streetlight", None).unwrap();
    f.group("north", None);
    r.create_provisioning_template(&f.actor, "fleet", TEMPLATE)
        .unwrap();

    let (cert, token) = r.create_certificate_from_csr(&f.actor, &csr()).unwrap();
    assert!(cert.common_name.starts_with("fleet-"));
    assert!(token.starts_with("cvo_"));
    // Until registered the certificate cannot be used.
    assert!(matches!(
        r.policies_for_connection(&cert.serial, "lamp-0003"),
        Err(RegistryError::CertificateNotActive {
            status: CertificateStatus::Inactive,
            ..
        })
    ));
    // A refused registration (unknown template) keeps the token usable.
    assert!(
        r.register_with_ownership_token(&f.actor, &token, "nope", &params("0003"))
            .is_err()
    );
    let outcome = r
        .register_with_ownership_token(&f.actor, &token, "fleet", &params("0003"))
        .unwrap();
    assert_eq!(outcome.certificate.serial, cert.serial);
    assert_eq!(outcome.thing_name, "lamp-0003");
    let (policies, ctx) = r
        .policies_for_connection(&cert.serial, "lamp-0003")
        .unwrap();
    assert_eq!(policies[0].name, STANDARD_DEVICE_POLICY);
    assert!(ctx.is_attached);
    refused(
        r.register_with_ownership_token(&f.actor, &token, "fleet", &params("0004")),
        "unknown or already used",
    );

    let (_, late) = r.create_certificate_from_csr(&f.actor, &csr()).unwrap();
    f.clock.advance(Duration::from_secs(3599));
    let (_, on_time) = r.create_certificate_from_csr(&f.actor, &csr()).unwrap();
    f.clock.advance(Duration::from_secs(1));
    refused(
        r.register_with_ownership_token(&f.actor, &late, "fleet", &params("0005")),
        "expired",
    );
    r.register_with_ownership_token(&f.actor, &on_time, "fleet", &params("0005"))
        .unwrap();
    assert_eq!(
        r.store()
            .registry_read()
            .unwrap()
            .target_policies(&PolicyTarget::Certificate(outcome.certificate.serial))
            .unwrap(),
        [STANDARD_DEVICE_POLICY]
    );
}
