//! Device signatures: detached JWS (ES256, unencoded payload) verified
//! against the device certificate's key; only verified readings are stored
//! as verified.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use civitas_telemetry::signature::{
    DevicePublicKey, DeviceSigner, PROTECTED_HEADER, SIGNATURE_USER_PROPERTY, SignatureError,
    open_envelope, seal_envelope, signature_property, verify_detached, verify_message,
};
use civitas_telemetry::{NewReading, TelemetryError};
use common::*;

const MESSAGE: &[u8] = br#"{"temperature":21.5,"ts":1700000000000}"#;

/// A device key and its self-signed certificate, as the CA would issue.
fn device() -> (DeviceSigner, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["lamp-1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let signer = DeviceSigner::from_pkcs8(&key.serialize_der()).unwrap();
    (signer, cert.der().to_vec())
}

fn jws_with_header(header: &str, signer: &DeviceSigner, payload: &[u8]) -> String {
    // Re-sign under another header, to test the header checks alone.
    let good = signer.sign_detached(payload).unwrap();
    let sig = good.rsplit('.').next().unwrap();
    format!("{}..{sig}", URL_SAFE_NO_PAD.encode(header))
}

#[test]
fn a_signature_verifies_against_the_certificate_key() {
    let (signer, cert) = device();
    let key = DevicePublicKey::from_certificate_der(&cert).unwrap();
    let jws = signer.sign_detached(MESSAGE).unwrap();
    let header = jws.split('.').next().unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(header).unwrap(),
        PROTECTED_HEADER.as_bytes()
    );
    assert!(jws.contains(".."), "payload must be detached: {jws}");
    let verified = verify_detached(MESSAGE, &jws, &key).unwrap();
    assert_eq!(verified.jws(), jws);

    // The SPKI works as well as the certificate.
    let spki = DevicePublicKey::from_spki_der(&signer.public_key_spki_der().unwrap()).unwrap();
    verify_detached(MESSAGE, &jws, &spki).unwrap();
}

#[test]
fn a_signature_that_does_not_match_is_refused_precisely() {
    let (signer, cert) = device();
    let key = DevicePublicKey::from_certificate_der(&cert).unwrap();
    let jws = signer.sign_detached(MESSAGE).unwrap();

    let mut altered = MESSAGE.to_vec();
    altered[16] ^= 1;
    assert_eq!(
        verify_detached(&altered, &jws, &key),
        Err(SignatureError::Invalid)
    );
    let (_, other_cert) = device();
    let other = DevicePublicKey::from_certificate_der(&other_cert).unwrap();
    assert_eq!(
        verify_detached(MESSAGE, &jws, &other),
        Err(SignatureError::Invalid)
    );

    // A flipped bit in the signature itself.
    let (head, sig) = jws.split_once("..").unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[10] ^= 1;
    let flipped = format!("{head}..{}", URL_SAFE_NO_PAD.encode(&raw));
    assert_eq!(
        verify_detached(MESSAGE, &flipped, &key),
        Err(SignatureError::Invalid)
    );

    // Outside the profile.
    let cases = [
        (r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#, "alg"),
        (r#"{"alg":"none","b64":false,"crit":["b64"]}"#, "alg"),
        (r#"{"alg":"ES256"}"#, "b64"),
        (r#"{"alg":"ES256","b64":true,"crit":["b64"]}"#, "b64"),
        (r#"{"alg":"ES256","b64":false}"#, "crit"),
        (r#"{"alg":"ES256","b64":false,"crit":["b64","exp"]}"#, "exp"),
        ("[1]", "object"),
    ];
    for (header, what) in cases {
        let err =
            verify_detached(MESSAGE, &jws_with_header(header, &signer, MESSAGE), &key).unwrap_err();
        assert!(
            matches!(
                err,
                SignatureError::BadHeader(_) | SignatureError::UnsupportedAlgorithm(_)
            ),
            "{header}: {err:?}"
        );
        assert!(
            err.to_string().contains(what) || what == "alg",
            "{err} / {what}"
        );
    }
    let attached = jws.replacen("..", &format!(".{}.", URL_SAFE_NO_PAD.encode(MESSAGE)), 1);
    assert!(matches!(
        verify_detached(MESSAGE, &attached, &key),
        Err(SignatureError::Malformed(_))
    ));
    for garbage in ["", "a.b", "a..b..c", "!!..!!", &format!("{head}..AAAA")] {
        assert!(
            matches!(
                verify_detached(MESSAGE, garbage, &key),
                Err(SignatureError::Malformed(_))
            ),
            "{garbage}"
        );
    }
    assert!(matches!(
        DevicePublicKey::from_certificate_der(b"not a certificate"),
        Err(SignatureError::BadPublicKey(_))
    ));
}

#[test]
fn missing_and_duplicated_signatures() {
    let (signer, cert) = device();
    let key = DevicePublicKey::from_certificate_der(&cert).unwrap();
    assert_eq!(
        verify_message(MESSAGE, None, &key),
        Err(SignatureError::Missing)
    );

    let jws = signer.sign_detached(MESSAGE).unwrap();
    let props = vec![
        ("unit".to_owned(), "C".to_owned()),
        (SIGNATURE_USER_PROPERTY.to_owned(), jws.clone()),
    ];
    let found = signature_property(&props).unwrap();
    assert_eq!(found, Some(jws.as_str()));
    verify_message(MESSAGE, found, &key).unwrap();
    assert_eq!(signature_property(&props[..1]), Ok(None));
    let mut twice = props.clone();
    twice.push((SIGNATURE_USER_PROPERTY.to_owned(), jws));
    assert_eq!(
        signature_property(&twice),
        Err(SignatureError::Ambiguous(2))
    );
}

#[test]
fn mqtt_3_envelopes_carry_the_exact_bytes() {
    let (signer, cert) = device();
    let key = DevicePublicKey::from_certificate_der(&cert).unwrap();
    let binary = [0u8, 159, 146, 150, b'{', b'"'];
    for payload in [MESSAGE, &binary[..]] {
        let wire = seal_envelope(payload, &signer.sign_detached(payload).unwrap());
        let env = open_envelope(&wire).unwrap();
        assert_eq!(env.payload, payload);
        verify_detached(&env.payload, &env.signature, &key).unwrap();
    }
    for bad in [
        &br#"{"payload":"e30","signature":"x","extra":1}"#[..],
        br#"{"payload":"e30="}"#,
        br#"{"payload":"e30=","signature":"x"}"#,
        br#"{"payload":1,"signature":"x"}"#,
        b"not json",
    ] {
        assert!(matches!(
            open_envelope(bad),
            Err(SignatureError::BadEnvelope(_))
        ));
    }
}

#[tokio::test]
async fn only_verified_readings_are_stored_as_verified() {
    let (signer, cert) = device();
    let key = DevicePublicKey::from_certificate_der(&cert).unwrap();
    let jws = signer.sign_detached(MESSAGE).unwrap();
    let verified = verify_detached(MESSAGE, &jws, &key).unwrap();

    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    f.telemetry
        .append(vec![
            NewReading::new("lamp-1", "temperature", T0, 21.5)
                .with_raw(MESSAGE)
                .with_signature(verified.clone()),
            NewReading::new("lamp-1", "temperature", T0 + 1, 22.0),
        ])
        .await
        .unwrap();
    let (got, _) = f.all("lamp-1").await;
    assert!(got[0].verified);
    assert_eq!(got[0].signature.as_deref(), Some(jws.as_str()));
    assert_eq!(got[0].raw.as_deref(), Some(MESSAGE));
    // What was stored can be checked again later.
    verify_detached(got[0].raw.as_deref().unwrap(), &jws, &key).unwrap();
    assert!(!got[1].verified && got[1].signature.is_none());

    // A verified signature cannot vouch for another message.
    let wrong = NewReading::new("lamp-1", "temperature", T0 + 2, 0.0)
        .with_raw(&b"{}"[..])
        .with_signature(verified);
    assert!(matches!(
        f.telemetry.append(vec![wrong]).await,
        Err(TelemetryError::InvalidReading { .. })
    ));
}
