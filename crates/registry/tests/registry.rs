//! Things, groups and policies: validation, nesting without cycles, the
//! policies that reach a connection through certificate, thing and nested
//! groups, the authorization generation, certificates' life cycle and the
//! events every change leaves.

mod common;

use std::time::Duration;

use civitas_policy::{Action, evaluate};
use civitas_registry::{
    CertificateStatus, DevicePolicy, NewDevice, NewThing, Outcome, PolicyTarget, RegistryError,
    STANDARD_DEVICE_POLICY,
};
use common::*;

#[test]
fn things_are_validated_and_need_existing_types_and_groups() {
    let f = fixture();
    let r = &f.registry;
    let err = r
        .create_thing(
            &f.actor,
            NewThing {
                name: "bad name".into(),
                ..NewThing::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "invalid");
    assert!(err.to_string().contains("invalid thing name"), "{err}");

    let missing_group = r
        .create_thing(
            &f.actor,
            NewThing {
                name: "lamp-1".into(),
                groups: vec!["north".into()],
                ..NewThing::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        missing_group.to_string(),
        "thing group \"north\" does not exist"
    );

    r.create_thing_type(&f.actor, "streetlight", Some("LED lamps"))
        .unwrap();
    f.group("north", None);
    let thing = r
        .create_thing(
            &f.actor,
            NewThing {
                name: "lamp-1".into(),
                thing_type: Some("streetlight".into()),
                attributes: attrs(&[("district", "north")]),
                groups: vec!["north".into(), "north".into()],
            },
        )
        .unwrap();
    assert_eq!(thing.groups, ["north"]);
    assert_eq!(thing.version, 1);
    assert!(matches!(
        r.create_thing(
            &f.actor,
            NewThing {
                name: "lamp-1".into(),
                ..NewThing::default()
            }
        ),
        Err(RegistryError::AlreadyExists { .. })
    ));

    // A type in use cannot go; a deprecated type takes no new things.
    assert_eq!(
        r.delete_thing_type(&f.actor, "streetlight")
            .unwrap_err()
            .code(),
        "conflict"
    );
    r.deprecate_thing_type(&f.actor, "streetlight", true)
        .unwrap();
    let deprecated = r
        .create_thing(
            &f.actor,
            NewThing {
                name: "lamp-2".into(),
                thing_type: Some("streetlight".into()),
                ..NewThing::default()
            },
        )
        .unwrap_err();
    assert!(
        deprecated.to_string().contains("deprecated"),
        "{deprecated}"
    );

    assert_eq!(r.list_things().unwrap().len(), 1);
    let described = r.describe_thing("lamp-1").unwrap();
    assert_eq!(described.thing.attributes, attrs(&[("district", "north")]));
}

#[test]
fn groups_nest_without_cycles_or_excess_depth() {
    let f = fixture();
    let r = &f.registry;
    f.group("city", None);
    f.group("north", Some("city"));
    f.group("north-a", Some("north"));

    let d = r.describe_thing_group("north-a").unwrap();
    assert_eq!(d.ancestors, ["north", "city"]);
    assert_eq!(r.describe_thing_group("city").unwrap().children, ["north"]);

    for (group, parent) in [("city", "north-a"), ("city", "city"), ("north", "north-a")] {
        let err = r
            .set_thing_group_parent(&f.actor, group, Some(parent))
            .unwrap_err();
        assert_eq!(err.code(), "conflict", "{group} under {parent}: {err}");
    }
    assert!(
        r.set_thing_group_parent(&f.actor, "city", Some("north-a"))
            .unwrap_err()
            .to_string()
            .contains("cycle")
    );

    // Seven levels at most.
    let mut parent = "north-a".to_string();
    for level in 4..=7 {
        let name = format!("level-{level}");
        f.group(&name, Some(&parent));
        parent = name;
    }
    let too_deep = r
        .create_thing_group(
            &f.actor,
            civitas_registry::NewThingGroup {
                name: "level-8".into(),
                parent: Some(parent.clone()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(too_deep.to_string().contains("at most 7"), "{too_deep}");
    // Moving a subtree counts its height too.
    f.group("other", None);
    f.group("other-child", Some("other"));
    assert_eq!(
        r.set_thing_group_parent(&f.actor, "other", Some("level-6"))
            .unwrap_err()
            .code(),
        "conflict"
    );
    r.set_thing_group_parent(&f.actor, "other", Some("north"))
        .unwrap();
    assert_eq!(
        r.describe_thing_group("other-child").unwrap().ancestors,
        ["other", "north", "city"]
    );

    // A group with children cannot go; a leaf can, and its members leave it.
    assert_eq!(
        r.delete_thing_group(&f.actor, "other").unwrap_err().code(),
        "conflict"
    );
    f.thing("lamp-1", &["other-child"]);
    r.delete_thing_group(&f.actor, "other-child").unwrap();
    assert!(r.describe_thing("lamp-1").unwrap().thing.groups.is_empty());
}

#[test]
fn policies_reach_a_connection_through_cert_thing_and_nested_groups() {
    let f = fixture();
    let r = &f.registry;
    f.group("city", None);
    f.group("north", Some("city"));
    r.create_thing_type(&f.actor, "streetlight", None).unwrap();
    r.create_thing(
        &f.actor,
        NewThing {
            name: "lamp-1".into(),
            thing_type: Some("streetlight".into()),
            attributes: attrs(&[("district", "north")]),
            groups: vec!["north".into()],
        },
    )
    .unwrap();
    let cert = r
        .issue_certificate_for(&f.actor, "lamp-1", None, None)
        .unwrap();
    assert!(cert.private_key_pem.is_some());

    let topic = |t: &str| format!("arn:aws:iot:*:*:topic/{t}");
    for (name, target, resource) in [
        (
            "on-cert",
            PolicyTarget::Certificate(cert.serial.to_uppercase()),
            "a",
        ),
        ("on-thing", PolicyTarget::Thing("lamp-1".into()), "b"),
        ("on-group", PolicyTarget::Group("north".into()), "c"),
        ("on-root", PolicyTarget::Group("city".into()), "d"),
    ] {
        r.create_policy(&f.actor, name, &allow("iot:Publish", &topic(resource)))
            .unwrap();
        assert!(r.attach_policy(&f.actor, name, &target).unwrap());
    }
    r.create_policy(
        &f.actor,
        "vars",
        &allow(
            "iot:Publish",
            &topic("${iot:Connection.Thing.ThingTypeName}/${iot:Connection.Thing.Attributes[district]}"),
        ),
    )
    .unwrap();
    r.attach_policy(&f.actor, "vars", &PolicyTarget::Group("city".into()))
        .unwrap();

    let (policies, ctx) = r.policies_for_connection(&cert.serial, "lamp-1").unwrap();
    let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["on-cert", "on-thing", "on-group", "on-root", "vars"]
    );
    assert_eq!(ctx.thing_name.as_deref(), Some("lamp-1"));
    assert_eq!(ctx.thing_type.as_deref(), Some("streetlight"));
    assert!(ctx.is_attached);
    assert_eq!(ctx.cert_common_name.as_deref(), Some("lamp-1"));
    assert_eq!(
        ctx.cert_serial_number.as_deref(),
        Some(cert.serial.as_str())
    );
    for t in ["a", "b", "c", "d", "streetlight/north"] {
        assert!(evaluate(&policies, &ctx, Action::Publish, t).allowed, "{t}");
    }
    assert!(!evaluate(&policies, &ctx, Action::Publish, "e").allowed);

    // Another client id with the same certificate is not bound to the
    // thing: only the certificate's own policies apply.
    let (policies, ctx) = r.policies_for_connection(&cert.serial, "other").unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(ctx.thing_name, None);
    assert!(!ctx.is_attached);

    // An explicit Deny on the root group beats the Allow on the cert.
    r.create_policy(&f.actor, "deny-a", &deny("iot:Publish", &topic("a")))
        .unwrap();
    r.attach_policy(&f.actor, "deny-a", &PolicyTarget::Group("city".into()))
        .unwrap();
    let test = r.test_policy("lamp-1", "iot:Publish", "a", None).unwrap();
    assert!(!test.allowed);
    assert_eq!(test.effect, "ExplicitDeny");
    assert_eq!(test.statement.unwrap().policy, "deny-a");
    let test = r
        .test_policy(
            "lamp-1",
            "iot:publish",
            &topic("b").replace('*', "eu-west-1"),
            None,
        )
        .unwrap();
    assert!(test.allowed, "{test:?}");
    assert_eq!(test.statement.as_ref().unwrap().policy, "on-thing");
    assert!(
        test.explanation
            .starts_with("allowed by policy \"on-thing\"")
    );
    assert_eq!(
        r.test_policy("lamp-1", "iot:Fly", "a", None)
            .unwrap_err()
            .code(),
        "invalid"
    );

    // Deleting is refused while attached, and names where.
    let err = r.delete_policy(&f.actor, "on-root").unwrap_err();
    assert_eq!(
        err.to_string(),
        "policy \"on-root\" is attached to group:city; detach it first"
    );
    assert!(
        r.detach_policy(&f.actor, "on-root", &PolicyTarget::Group("city".into()))
            .unwrap()
    );
    r.delete_policy(&f.actor, "on-root").unwrap();

    // Attachments need existing targets.
    assert_eq!(
        r.attach_policy(&f.actor, "vars", &PolicyTarget::Thing("ghost".into()))
            .unwrap_err()
            .to_string(),
        "thing \"ghost\" does not exist"
    );
}

#[test]
fn policy_documents_are_refused_precisely_and_versioned() {
    let f = fixture();
    let r = &f.registry;
    let bad = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"iot:Publish","Resource":"*"},
        {"Effect":"Allow","Action":["iot Publish"],"Resource":"*"}]}"#;
    let err = r.create_policy(&f.actor, "city-lights", bad).unwrap_err();
    assert_eq!(err.code(), "invalid");
    assert!(
        err.to_string().starts_with("Statement[1].Action[0]: "),
        "{err}"
    );
    assert!(
        r.create_policy(&f.actor, "bad name", &allow("iot:*", "*"))
            .is_err()
    );

    let p = r
        .create_policy(
            &f.actor,
            "p",
            &allow("iot:Publish", "arn:aws:iot:*:*:topic/a"),
        )
        .unwrap();
    assert_eq!(p.default_version, 1);
    let p = r
        .create_policy_version(
            &f.actor,
            "p",
            &allow("iot:Publish", "arn:aws:iot:*:*:topic/b"),
            false,
        )
        .unwrap();
    assert_eq!((p.default_version, p.versions.len()), (1, 2));
    let p = r.set_default_policy_version(&f.actor, "p", 2).unwrap();
    assert_eq!(p.default_version, 2);
    assert_eq!(
        r.delete_policy_version(&f.actor, "p", 2)
            .unwrap_err()
            .code(),
        "conflict"
    );
    for _ in 0..3 {
        r.create_policy_version(&f.actor, "p", &allow("iot:*", "*"), false)
            .unwrap();
    }
    assert!(
        r.create_policy_version(&f.actor, "p", &allow("iot:*", "*"), false)
            .unwrap_err()
            .to_string()
            .contains("has 5 versions")
    );
    let p = r.delete_policy_version(&f.actor, "p", 1).unwrap();
    let versions: Vec<u32> = p.versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, [2, 3, 4, 5]);
    // Versions are never reused.
    let p = r
        .create_policy_version(&f.actor, "p", &allow("iot:*", "*"), false)
        .unwrap();
    assert_eq!(p.versions.last().unwrap().version, 6);

    let warned = r
        .create_policy(
            &f.actor,
            "w",
            &allow("iot:Publish", "arn:aws:iot:*:*:topic/${aws:SourceIp}"),
        )
        .unwrap();
    assert_eq!(warned.warnings.len(), 1);
}

#[test]
fn the_generation_moves_with_every_change_that_can_alter_a_decision() {
    let f = fixture();
    let r = &f.registry;
    let mut last = r.generation();
    let mut bumped = |what: &str| {
        let now = r.generation();
        assert!(now > last, "{what} did not bump the generation");
        last = now;
    };
    f.group("city", None);
    f.group("north", None);
    f.thing("lamp-1", &[]);
    bumped("create thing");
    let cert = r
        .issue_certificate_for(&f.actor, "lamp-1", None, None)
        .unwrap();
    bumped("issue certificate");
    r.add_thing_to_group(&f.actor, "lamp-1", "north").unwrap();
    bumped("add to group");
    r.set_thing_group_parent(&f.actor, "north", Some("city"))
        .unwrap();
    bumped("re-parent group");
    r.create_policy(&f.actor, "p", &allow("iot:*", "*"))
        .unwrap();
    let target = PolicyTarget::Group("city".into());
    r.attach_policy(&f.actor, "p", &target).unwrap();
    bumped("attach");
    r.create_policy_version(&f.actor, "p", &allow("iot:Connect", "*"), true)
        .unwrap();
    bumped("new default version");
    r.set_default_policy_version(&f.actor, "p", 1).unwrap();
    bumped("set default version");
    r.detach_policy(&f.actor, "p", &target).unwrap();
    bumped("detach");
    r.set_certificate_status(&f.actor, &cert.serial, CertificateStatus::Inactive)
        .unwrap();
    bumped("deactivate");
    r.set_certificate_status(&f.actor, &cert.serial, CertificateStatus::Active)
        .unwrap();
    bumped("activate");
    r.renew_certificate(&f.actor, &cert.serial, None, Duration::from_secs(60))
        .unwrap();
    bumped("renew");
    r.remove_thing_from_group(&f.actor, "lamp-1", "north")
        .unwrap();
    bumped("remove from group");
    r.revoke_certificate(&f.actor, &cert.serial).unwrap();
    bumped("revoke");
    r.delete_thing_group(&f.actor, "north").unwrap();
    bumped("delete group");
    r.delete_thing(&f.actor, "lamp-1").unwrap();
    bumped("delete thing");

    // Reads and refused changes leave it alone.
    let before = r.generation();
    r.list_things().unwrap();
    assert!(
        r.attach_policy(&f.actor, "p", &PolicyTarget::Thing("x".into()))
            .is_err()
    );
    assert_eq!(r.generation(), before);
}

#[test]
fn certificates_deactivate_revoke_and_renew_with_overlap() {
    let f = fixture();
    let r = &f.registry;
    let added = r
        .add_device(
            &f.actor,
            NewDevice {
                thing: NewThing {
                    name: "lamp-1".into(),
                    ..NewThing::default()
                },
                ..NewDevice::default()
            },
        )
        .unwrap();
    assert_eq!(added.policy.as_deref(), Some(STANDARD_DEVICE_POLICY));
    let serial = added.certificate.serial.clone();
    let (policies, _) = r.policies_for_connection(&serial, "lamp-1").unwrap();
    assert_eq!(policies[0].name, STANDARD_DEVICE_POLICY);

    r.set_certificate_status(&f.actor, &serial, CertificateStatus::Inactive)
        .unwrap();
    assert!(matches!(
        r.policies_for_connection(&serial, "lamp-1"),
        Err(RegistryError::CertificateNotActive {
            status: CertificateStatus::Inactive,
            ..
        })
    ));
    r.set_certificate_status(&f.actor, &serial, CertificateStatus::Active)
        .unwrap();

    // Renewal: both work during the overlap, the new one after it.
    let renewed = r
        .renew_certificate(&f.actor, &serial, Some(&csr()), Duration::from_secs(600))
        .unwrap();
    assert!(renewed.private_key_pem.is_none());
    assert_eq!(renewed.thing.as_deref(), Some("lamp-1"));
    assert!(r.policies_for_connection(&serial, "lamp-1").is_ok());
    let (policies, _) = r
        .policies_for_connection(&renewed.serial, "lamp-1")
        .unwrap();
    assert_eq!(policies[0].name, STANDARD_DEVICE_POLICY);
    f.clock.advance(Duration::from_secs(601));
    assert!(r.policies_for_connection(&serial, "lamp-1").is_err());
    assert!(r.policies_for_connection(&renewed.serial, "lamp-1").is_ok());
    assert_eq!(
        r.retire_replaced_certificates(&civitas_registry::Actor::system())
            .unwrap(),
        [serial.as_str()]
    );
    assert_eq!(
        r.describe_certificate(&serial).unwrap().status,
        CertificateStatus::Inactive
    );
    // Reactivating the device does not bring the replaced one back.
    r.set_thing_certificates_status(&f.actor, "lamp-1", CertificateStatus::Inactive)
        .unwrap();
    let changed = r
        .set_thing_certificates_status(&f.actor, "lamp-1", CertificateStatus::Active)
        .unwrap();
    assert_eq!(changed, [renewed.serial.as_str()]);

    // Revocation reaches the CRL and is final.
    let revoked = r.revoke_thing_certificates(&f.actor, "lamp-1").unwrap();
    assert_eq!(revoked.len(), 2);
    assert!(
        r.describe_certificate(&renewed.serial)
            .unwrap()
            .policies
            .is_empty()
    );
    let ca = civitas_pki::CertificateAuthority::load(&f.dir.path().join("ca")).unwrap();
    assert!(ca.is_revoked(&renewed.serial) && ca.is_revoked(&serial));
    assert_eq!(
        r.set_certificate_status(&f.actor, &renewed.serial, CertificateStatus::Active)
            .unwrap_err()
            .code(),
        "conflict"
    );
    assert!(matches!(
        r.policies_for_connection(&renewed.serial, "lamp-1"),
        Err(RegistryError::CertificateNotActive {
            status: CertificateStatus::Revoked,
            ..
        })
    ));
    // The standard policy is no longer attached anywhere and can go.
    r.delete_policy(&f.actor, STANDARD_DEVICE_POLICY).unwrap();
}

#[test]
fn add_device_is_all_or_nothing_and_deleting_revokes() {
    let f = fixture();
    let r = &f.registry;
    let refused = r
        .add_device(
            &f.actor,
            NewDevice {
                thing: NewThing {
                    name: "lamp-1".into(),
                    groups: vec!["nowhere".into()],
                    ..NewThing::default()
                },
                ..NewDevice::default()
            },
        )
        .unwrap_err();
    assert_eq!(refused.code(), "not_found");
    let bad_csr = r
        .add_device(
            &f.actor,
            NewDevice {
                thing: NewThing {
                    name: "lamp-1".into(),
                    ..NewThing::default()
                },
                csr: Some("not a csr".into()),
                policy: DevicePolicy::Nothing,
                ..NewDevice::default()
            },
        )
        .unwrap_err();
    assert_eq!(bad_csr.code(), "invalid");
    assert!(r.list_things().unwrap().is_empty());
    assert!(r.list_certificates().unwrap().is_empty());

    let added = r
        .add_device(
            &f.actor,
            NewDevice {
                thing: NewThing {
                    name: "lamp-1".into(),
                    ..NewThing::default()
                },
                csr: Some(csr()),
                policy: DevicePolicy::Nothing,
                ..NewDevice::default()
            },
        )
        .unwrap();
    assert!(added.policy.is_none());
    let deleted = r.delete_thing(&f.actor, "lamp-1").unwrap();
    assert_eq!(deleted.revoked, [added.certificate.serial.as_str()]);
    let cert = r.describe_certificate(&added.certificate.serial).unwrap();
    assert_eq!(cert.status, CertificateStatus::Revoked);
    assert_eq!(cert.thing, None);
    assert!(r.describe_thing("lamp-1").is_err());
}

#[test]
fn every_change_and_refusal_is_an_event() {
    let f = fixture();
    let r = &f.registry;
    f.events.take();
    f.thing("lamp-1", &[]);
    let _ = r.create_policy(&f.actor, "p", "{}");
    let cert = r
        .issue_certificate_for(&f.actor, "lamp-1", None, None)
        .unwrap();
    let events = f.events.take();
    let summary: Vec<(&str, &str, bool)> = events
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.target.as_str(),
                e.outcome == Outcome::Success,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("CreateThing", "thing:lamp-1", true),
            ("CreatePolicy", "policy:p", false),
            ("CreateCertificate", "thing:lamp-1", true),
        ]
    );
    assert!(events.iter().all(|e| e.actor == "test-operator"));
    assert_eq!(events[2].details["serial"], cert.serial);
    assert_eq!(events[0].at_ms, 1_800_000_000_000);
}
