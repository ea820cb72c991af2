//! Fleet provisioning and certificate renewal over MQTT, with real
//! clients over mutual TLS against a broker that the registry authorizes:
//! a claim provisions a device whose certificate works, and can do
//! nothing else; ownership tokens work once and expire; an enrollment
//! token works once; a device renews its certificate and both work
//! during the overlap.

mod fleet;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use civitas_registry::{
    CREATE_FROM_CSR_TOPIC, CREATE_KEYS_TOPIC, DevicePolicy, NewDevice, NewThing, RegistryError,
    provision_topic, renew_topic,
};
use fleet::{OVERLAP, fleet, key_and_csr, text};
use serde_json::json;

const TEMPLATE: &str = r#"{"thingNameParameter":"SerialNumber","thingNamePrefix":"lamp-",
    "attributes":{"model":"Model"}}"#;

async fn claim_client(f: &fleet::Fleet) -> anyhow::Result<fleet::Client> {
    f.registry
        .create_provisioning_template(&f.actor, "streetlights", TEMPLATE)?;
    let claim = f
        .registry
        .create_claim(&f.actor, "factory-claim", "streetlights", None)?;
    assert_eq!(claim.policy, "civitas-claim-streetlights");
    let files = f.issued_files("claim", &claim.certificate)?;
    // The claim policy allows any client id, as in AWS; the default
    // listener still wants the certificate's common name.
    f.connect("factory-claim", &files).await
}

#[tokio::test]
async fn a_claim_provisions_a_device_whose_certificate_works() -> anyhow::Result<()> {
    let f = fleet().await?;
    let mut claim = claim_client(&f).await?;

    let (device_key, csr) = key_and_csr();
    let (ok, created) = claim
        .ask(
            CREATE_FROM_CSR_TOPIC,
            &json!({ "certificateSigningRequest": csr }),
        )
        .await?;
    assert!(ok, "{created}");
    let serial = text(&created, "certificateId").to_string();
    let token = text(&created, "certificateOwnershipToken").to_string();
    assert!(text(&created, "certificatePem").starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(created.get("privateKey").is_none());

    let provision = provision_topic("streetlights");
    let (ok, registered) = claim
        .ask(
            &provision,
            &json!({
                "certificateOwnershipToken": token,
                "parameters": { "SerialNumber": "0001", "Model": "LX-2" }
            }),
        )
        .await?;
    assert!(ok, "{registered}");
    assert_eq!(
        registered,
        json!({ "deviceConfiguration": {}, "thingName": "lamp-0001" })
    );
    let thing = f.registry.describe_thing("lamp-0001")?;
    assert_eq!(
        thing.thing.attributes.get("model").map(String::as_str),
        Some("LX-2")
    );

    // The same token a second time is refused, and provisions nothing.
    let (ok, reused) = claim
        .ask(
            &provision,
            &json!({
                "certificateOwnershipToken": token,
                "parameters": { "SerialNumber": "0002" }
            }),
        )
        .await?;
    assert!(!ok);
    assert_eq!(reused["statusCode"], 400);
    assert_eq!(reused["errorCode"], "InvalidCertificateOwnershipToken");
    assert!(f.registry.describe_thing("lamp-0002").is_err());

    // The device connects with the certificate (the leaf alone, as the
    // reply carried it) and uses its own topics.
    let files = f.files_for(
        "lamp-0001",
        &serial,
        text(&created, "certificatePem"),
        &device_key,
    )?;
    let mut device = f.connect("lamp-0001", &files).await?;
    device
        .round_trip("city/north/things/lamp-0001/telemetry")
        .await?;
    assert!(!device.subscribe("city/north/things/lamp-0002/#").await?);
    Ok(())
}

#[tokio::test]
async fn server_generated_keys_provision_too() -> anyhow::Result<()> {
    let f = fleet().await?;
    let mut claim = claim_client(&f).await?;
    let (ok, created) = claim.ask(CREATE_KEYS_TOPIC, &json!({})).await?;
    assert!(ok, "{created}");
    let key = text(&created, "privateKey").to_string();
    assert!(key.contains("PRIVATE KEY"));
    let (ok, registered) = claim
        .ask(
            &provision_topic("streetlights"),
            &json!({
                "certificateOwnershipToken": text(&created, "certificateOwnershipToken"),
                "parameters": { "SerialNumber": "0003" }
            }),
        )
        .await?;
    assert!(ok, "{registered}");
    let files = f.files_for(
        "lamp-0003",
        text(&created, "certificateId"),
        text(&created, "certificatePem"),
        &key,
    )?;
    let mut device = f.connect("lamp-0003", &files).await?;
    device
        .round_trip("city/south/things/lamp-0003/status")
        .await?;
    Ok(())
}

#[tokio::test]
async fn an_expired_ownership_token_is_refused() -> anyhow::Result<()> {
    let f = fleet().await?;
    let mut claim = claim_client(&f).await?;
    let (_, csr) = key_and_csr();
    let (ok, created) = claim
        .ask(
            CREATE_FROM_CSR_TOPIC,
            &json!({ "certificateSigningRequest": csr }),
        )
        .await?;
    assert!(ok, "{created}");
    // Ownership tokens live one hour.
    f.clock.advance(Duration::from_secs(3601));
    let (ok, refused) = claim
        .ask(
            &provision_topic("streetlights"),
            &json!({
                "certificateOwnershipToken": text(&created, "certificateOwnershipToken"),
                "parameters": { "SerialNumber": "0004" }
            }),
        )
        .await?;
    assert!(!ok);
    assert_eq!(refused["statusCode"], 400);
    assert_eq!(refused["errorCode"], "InvalidCertificateOwnershipToken");
    assert!(f.registry.describe_thing("lamp-0004").is_err());
    // The certificate made for it never became usable.
    let cert = f
        .registry
        .describe_certificate(text(&created, "certificateId"))?;
    assert_eq!(cert.status, civitas_registry::CertificateStatus::Inactive);
    assert!(cert.thing.is_none());
    Ok(())
}

#[tokio::test]
async fn bad_requests_are_rejected_in_the_aws_shape() -> anyhow::Result<()> {
    let f = fleet().await?;
    let mut claim = claim_client(&f).await?;
    let (ok, bad_csr) = claim
        .ask(
            CREATE_FROM_CSR_TOPIC,
            &json!({ "certificateSigningRequest": "not a CSR" }),
        )
        .await?;
    assert!(!ok);
    assert_eq!(bad_csr["statusCode"], 400);
    assert!(bad_csr["errorMessage"].is_string());
    let (ok, no_field) = claim.ask(CREATE_FROM_CSR_TOPIC, &json!({})).await?;
    assert!(!ok);
    assert_eq!(no_field["errorCode"], "InvalidPayload");
    Ok(())
}

#[tokio::test]
async fn a_claim_can_do_nothing_but_provision() -> anyhow::Result<()> {
    let f = fleet().await?;
    let mut claim = claim_client(&f).await?;
    let stats = f.broker.stats();

    assert!(
        claim
            .subscribe("$aws/certificates/create/json/accepted")
            .await?
    );
    for filter in [
        "city/#",
        "city/north/things/lamp-0001/cmd",
        "$aws/things/lamp-0001/shadow/get/accepted",
        "$aws/provisioning-templates/other/provision/json/accepted",
        "#",
    ] {
        assert!(!claim.subscribe(filter).await?, "subscribed to {filter}");
    }

    let denied_before = stats.publish_denied.load(Ordering::Relaxed);
    for topic in [
        "city/north/things/lamp-0001/telemetry",
        "$aws/things/lamp-0001/shadow/update",
        // A claim must not forge replies to other claimants.
        "$aws/certificates/create/json/accepted",
        "$aws/provisioning-templates/other/provision/json",
        &renew_topic("lamp-0001"),
    ] {
        claim.publish(topic, "{}").await?;
    }
    assert_eq!(
        stats.publish_denied.load(Ordering::Relaxed) - denied_before,
        5
    );

    // And it cannot renew itself into a longer-lived identity.
    let claim_serial = f
        .registry
        .list_certificates()?
        .into_iter()
        .find(|c| c.common_name == "factory-claim")
        .map(|c| c.serial)
        .expect("the claim's certificate");
    let (_, csr) = key_and_csr();
    match f
        .registry
        .renew_own_certificate(&f.actor, &claim_serial, &csr, OVERLAP)
    {
        Err(RegistryError::Conflict(_)) => {}
        other => panic!("a claim was renewed: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn an_enrollment_token_works_once() -> anyhow::Result<()> {
    let f = fleet().await?;
    let token =
        f.registry
            .create_enrollment_token(&f.actor, "lamp-e1", Duration::from_secs(600))?;
    let (key, csr) = key_and_csr();
    let cert = f.registry.redeem_enrollment_token(
        &civitas_registry::Actor::device("lamp-e1"),
        &token.token,
        &csr,
    )?;
    let files = f.files_for("lamp-e1", &cert.serial, &cert.certificate_pem, &key)?;
    let mut device = f.connect("lamp-e1", &files).await?;
    device
        .round_trip("city/east/things/lamp-e1/telemetry")
        .await?;

    let (_, again) = key_and_csr();
    match f.registry.redeem_enrollment_token(
        &civitas_registry::Actor::device("lamp-e1"),
        &token.token,
        &again,
    ) {
        Err(RegistryError::TokenRefused { reason, .. }) => assert_eq!(reason, "already used"),
        other => panic!("redeemed twice: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn renewal_over_mqtt_overlaps_the_old_certificate() -> anyhow::Result<()> {
    let f = fleet().await?;
    let added = f.registry.add_device(
        &f.actor,
        NewDevice {
            thing: NewThing {
                name: "lamp-r1".into(),
                ..NewThing::default()
            },
            policy: DevicePolicy::Default,
            ..NewDevice::default()
        },
    )?;
    let old = f.issued_files("lamp-r1-old", &added.certificate)?;
    let mut device = f.connect("lamp-r1", &old).await?;

    let topic = renew_topic("lamp-r1");
    let (new_key, csr) = key_and_csr();
    let (ok, renewed) = device
        .ask(&topic, &json!({ "certificateSigningRequest": csr }))
        .await?;
    assert!(ok, "{renewed}");
    assert_eq!(
        text(&renewed, "previousCertificateId"),
        added.certificate.serial
    );
    let new_serial = text(&renewed, "certificateId").to_string();
    assert_ne!(new_serial, added.certificate.serial);
    let until = renewed["previousCertificateValidUntil"]
        .as_u64()
        .expect("overlap end");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    assert!(until >= now + OVERLAP.as_secs() - 60, "{until} vs {now}");

    // Same thing, same policies.
    let described = f.registry.describe_certificate(&new_serial)?;
    assert_eq!(described.thing.as_deref(), Some("lamp-r1"));
    assert_eq!(
        described.policies,
        f.registry
            .describe_certificate(&added.certificate.serial)?
            .policies
    );

    // The old certificate cannot be renewed a second time.
    let (_, csr) = key_and_csr();
    let (ok, again) = device
        .ask(&topic, &json!({ "certificateSigningRequest": csr }))
        .await?;
    assert!(!ok);
    assert_eq!(again["statusCode"], 409);
    drop(device);

    // Both certificates work during the overlap.
    let new = f.files_for(
        "lamp-r1-new",
        &new_serial,
        text(&renewed, "certificatePem"),
        &new_key,
    )?;
    f.connect("lamp-r1", &new)
        .await?
        .round_trip("city/west/things/lamp-r1/telemetry")
        .await?;
    f.connect("lamp-r1", &old)
        .await?
        .round_trip("city/west/things/lamp-r1/telemetry")
        .await?;

    // After it, only the new one does.
    f.clock.advance(OVERLAP + Duration::from_secs(1));
    let err = f.refused("lamp-r1", &old).await?;
    assert!(err.contains("NotAuthorized"), "{err}");
    f.connect("lamp-r1", &new)
        .await?
        .round_trip("city/west/things/lamp-r1/telemetry")
        .await?;
    Ok(())
}

#[tokio::test]
async fn renewal_is_only_for_the_own_thing() -> anyhow::Result<()> {
    let f = fleet().await?;
    let mut issued = BTreeMap::new();
    for name in ["lamp-a", "lamp-b"] {
        let added = f.registry.add_device(
            &f.actor,
            NewDevice {
                thing: NewThing {
                    name: name.into(),
                    ..NewThing::default()
                },
                ..NewDevice::default()
            },
        )?;
        issued.insert(name, added.certificate);
    }
    let files = f.issued_files("lamp-a", &issued["lamp-a"])?;
    let mut a = f.connect("lamp-a", &files).await?;
    // The standard policy does not let lamp-a even ask for lamp-b.
    assert!(
        !a.subscribe(&format!("{}/accepted", renew_topic("lamp-b")))
            .await?
    );
    let denied = f.broker.stats().publish_denied.load(Ordering::Relaxed);
    let (_, csr) = key_and_csr();
    a.publish(
        &renew_topic("lamp-b"),
        json!({ "certificateSigningRequest": csr }).to_string(),
    )
    .await?;
    assert_eq!(
        f.broker.stats().publish_denied.load(Ordering::Relaxed),
        denied + 1
    );
    assert!(
        f.registry
            .describe_certificate(&issued["lamp-b"].serial)?
            .replaced_by
            .is_none()
    );
    Ok(())
}
