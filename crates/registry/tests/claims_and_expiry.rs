//! Provisioning claims (certificate plus a claim policy for one template)
//! and the list of certificates close to expiry, on a manual clock.

mod common;

use std::time::Duration;

use civitas_policy::{Action, ResolvedPolicies};
use civitas_registry::{
    AdminRequest, AdminResponse, EXPIRY_WARNING_WINDOW, ExpiryWatch, claim_policy_name,
};
use common::*;

const DAY: Duration = Duration::from_secs(86400);

#[test]
fn a_claim_may_only_provision_through_its_template() {
    let f = fixture();
    let r = &f.registry;
    assert_eq!(
        r.create_claim(&f.actor, "claim-1", "missing", None)
            .unwrap_err()
            .code(),
        "not_found"
    );
    r.create_provisioning_template(&f.actor, "lamps", r#"{"thingNameParameter":"Serial"}"#)
        .unwrap();
    let claim = r.create_claim(&f.actor, "claim-1", "lamps", None).unwrap();
    assert!(claim.certificate.private_key_pem.is_some());
    assert_eq!(claim.certificate.thing, None);
    // A second claim for the template shares its policy.
    let other = r.create_claim(&f.actor, "claim-2", "lamps", None).unwrap();
    assert_eq!(claim.policy, other.policy);
    assert_eq!(
        r.get_policy(&claim_policy_name("lamps"))
            .unwrap()
            .targets
            .len(),
        2
    );

    let (policies, ctx) = r
        .policies_for_connection(&claim.certificate.serial, "claim-1")
        .unwrap();
    assert_eq!(ctx.thing_name, None);
    let resolved = ResolvedPolicies::resolve(&policies, &ctx);
    for (action, resource, allowed) in [
        (Action::Connect, "claim-1", true),
        (
            Action::Publish,
            "$aws/certificates/create-from-csr/json",
            true,
        ),
        (Action::Publish, "$aws/certificates/create/json", true),
        (
            Action::Publish,
            "$aws/provisioning-templates/lamps/provision/json",
            true,
        ),
        (
            Action::Publish,
            "$aws/provisioning-templates/other/provision/json",
            false,
        ),
        (
            Action::Publish,
            "$aws/certificates/create/json/accepted",
            false,
        ),
        (
            Action::Receive,
            "$aws/certificates/create/json/accepted",
            true,
        ),
        (
            Action::Receive,
            "$aws/provisioning-templates/lamps/provision/json/rejected",
            true,
        ),
        (
            Action::Subscribe,
            "$aws/certificates/create-from-csr/json/accepted",
            true,
        ),
        (Action::Subscribe, "$aws/certificates/#", false),
        (
            Action::Publish,
            "city/north/things/claim-1/telemetry",
            false,
        ),
        (Action::Subscribe, "#", false),
    ] {
        assert_eq!(
            resolved.allows(action, resource),
            allowed,
            "{action:?} {resource}"
        );
    }
}

#[test]
fn claims_are_created_over_the_admin_protocol() {
    let f = fixture();
    let r = &f.registry;
    r.create_provisioning_template(&f.actor, "lamps", r#"{"thingNameParameter":"Serial"}"#)
        .unwrap();
    let request: AdminRequest = serde_json::from_str(
        r#"{"op":"create_claim","name":"claim-9","template":"lamps","validity_secs":86400}"#,
    )
    .unwrap();
    match r.execute(&f.actor, request) {
        AdminResponse::Claim(claim) => {
            assert_eq!(claim.template, "lamps");
            let start_ms = start().unix_timestamp() as u64 * 1000;
            assert_eq!(claim.certificate.not_after_ms, start_ms + 86_400_000);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn certificates_close_to_expiry_are_listed_and_counted() {
    let f = fixture();
    let r = &f.registry;
    f.thing("lamp-soon", &[]);
    f.thing("lamp-later", &[]);
    let soon = r
        .issue_certificate_for(&f.actor, "lamp-soon", None, Some(10 * DAY))
        .unwrap();
    r.issue_certificate_for(&f.actor, "lamp-later", None, Some(100 * DAY))
        .unwrap();

    let watch = ExpiryWatch::new();
    assert_eq!(watch.check(r, EXPIRY_WARNING_WINDOW).unwrap(), 1);
    assert_eq!(watch.expiring(), 1);
    assert_eq!(watch.checks(), 1);
    let listed = watch.latest();
    assert_eq!(listed[0].serial, soon.serial);
    assert_eq!(listed[0].thing.as_deref(), Some("lamp-soon"));
    assert!(!listed[0].expired);

    f.clock.advance(11 * DAY);
    let listed = r
        .certificates_expiring_within(EXPIRY_WARNING_WINDOW)
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].expired);

    // A renewed certificate is not reported, and its successor is fresh.
    r.renew_certificate(&f.actor, &soon.serial, None, DAY)
        .unwrap();
    assert!(
        r.certificates_expiring_within(EXPIRY_WARNING_WINDOW)
            .unwrap()
            .is_empty()
    );
    f.clock.advance(64 * DAY);
    let listed = r
        .certificates_expiring_within(EXPIRY_WARNING_WINDOW)
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].thing.as_deref(), Some("lamp-later"));
}
