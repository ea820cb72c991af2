//! The CA on disk: creation, loading, issuance, revocation, file handling.

mod common;

use std::path::Path;

use civitas_pki::{
    CA_BUNDLE_FILE, CRL_FILE, CertificateAuthority, ISSUING_CERT_FILE, ISSUING_KEY_FILE, PkiError,
    REVOKED_FILE, ROOT_CERT_FILE, ROOT_KEY_FILE, TlsFiles, peer_identity, server_config,
};
use common::{DAY, client_with_cert, connect, fixture, now};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::prelude::*;

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn create_then_load_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let created = CertificateAuthority::create(&dir, "Acme", now()).unwrap();
    for name in [
        ROOT_CERT_FILE,
        ROOT_KEY_FILE,
        ISSUING_CERT_FILE,
        ISSUING_KEY_FILE,
        CA_BUNDLE_FILE,
        REVOKED_FILE,
        CRL_FILE,
    ] {
        assert!(dir.join(name).is_file(), "{name} not written");
    }
    assert_eq!(created.dir(), dir);
    assert_eq!(created.ca_bundle_path(), dir.join(CA_BUNDLE_FILE));

    let loaded = CertificateAuthority::load(&dir).unwrap();
    assert_eq!(loaded.root_cert_pem(), created.root_cert_pem());
    assert_eq!(loaded.issuing_cert_pem(), created.issuing_cert_pem());
    assert_eq!(loaded.ca_bundle_pem(), created.ca_bundle_pem());
    assert_eq!(loaded.issuing_not_after(), created.issuing_not_after());
    assert!(loaded.has_root_key());

    // The bundle is issuing CA then root, and the tiers are as specified.
    let bundle: Vec<_> = CertificateDer::pem_slice_iter(loaded.ca_bundle_pem().as_bytes())
        .map(Result::unwrap)
        .collect();
    assert_eq!(bundle.len(), 2);
    assert_eq!(bundle[0].to_vec(), der(loaded.issuing_cert_pem()));
    assert_eq!(bundle[1].to_vec(), der(loaded.root_cert_pem()));
    let (_, root) = parse_x509_certificate(&bundle[1]).unwrap();
    let (_, issuing) = parse_x509_certificate(&bundle[0]).unwrap();
    assert!(root.is_ca() && issuing.is_ca());
    assert_eq!(issuing.issuer(), root.subject());
    issuing.verify_signature(Some(root.public_key())).unwrap();
    let years = |c: &X509Certificate| {
        (c.validity().not_after.to_datetime() - c.validity().not_before.to_datetime()).whole_days()
            / 365
    };
    assert_eq!(years(&root), 10);
    assert_eq!(years(&issuing), 5);
    assert!(root.subject().to_string().contains("O=Acme"));
}

#[test]
fn open_or_create_creates_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let (first, created) = CertificateAuthority::open_or_create(&dir, "Acme", now()).unwrap();
    assert!(created);
    let (second, created) = CertificateAuthority::open_or_create(&dir, "Acme", now()).unwrap();
    assert!(!created);
    assert_eq!(first.root_cert_pem(), second.root_cert_pem());
}

#[test]
fn create_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let ca = CertificateAuthority::create(&dir, "Acme", now()).unwrap();
    let err = CertificateAuthority::create(&dir, "Acme", now()).unwrap_err();
    assert!(matches!(err, PkiError::AlreadyExists { .. }), "{err}");
    // Even a lone leftover file counts.
    let dir2 = tmp.path().join("ca2");
    std::fs::create_dir(&dir2).unwrap();
    std::fs::write(dir2.join(ISSUING_KEY_FILE), "x").unwrap();
    let err = CertificateAuthority::create(&dir2, "Acme", now()).unwrap_err();
    assert!(err.to_string().contains(ISSUING_KEY_FILE), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join(ROOT_CERT_FILE)).unwrap(),
        ca.root_cert_pem()
    );
}

#[test]
fn invalid_organization_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for org in ["", "  ", "a\nb", &"x".repeat(49)] {
        let err = CertificateAuthority::create(&tmp.path().join("ca"), org, now()).unwrap_err();
        assert!(
            matches!(err, PkiError::InvalidName { .. }),
            "{org:?}: {err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn private_keys_are_owner_only() {
    let f = fixture();
    let dir = f.ca.dir();
    assert_eq!(mode(&dir.join(ROOT_KEY_FILE)), 0o600);
    assert_eq!(mode(&dir.join(ISSUING_KEY_FILE)), 0o600);
    assert_eq!(mode(dir), 0o700);
    assert_eq!(mode(&f.tls_files.key), 0o600);
    assert_eq!(mode(&f.tls_files.cert), 0o644);
    assert_eq!(mode(&dir.join(CA_BUNDLE_FILE)), 0o644);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn root_key_can_be_taken_offline() {
    let f = fixture();
    let dir = f.ca.dir().to_path_buf();
    std::fs::remove_file(dir.join(ROOT_KEY_FILE)).unwrap();
    let mut ca = CertificateAuthority::load(&dir).unwrap();
    assert!(!ca.has_root_key());

    let device = ca.issue_device("sensor-9", DAY, now()).unwrap();
    let server = server_config(&f.tls_files, &[]).unwrap();
    let client = client_with_cert(&ca, &device, device.key_pem.as_ref().unwrap());
    connect(server, client).await.unwrap();

    // Revocation only needs the issuing key as well.
    ca.revoke(&device.serial_hex, now()).unwrap();
    assert!(ca.is_revoked(&device.serial_hex));
}

#[test]
fn corrupt_or_missing_files_are_named() {
    let f = fixture();
    let dir = f.ca.dir().to_path_buf();
    let cases: [(&str, &[u8]); 6] = [
        (ROOT_CERT_FILE, b"not a certificate"),
        (
            ROOT_KEY_FILE,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
        (
            ISSUING_CERT_FILE,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ),
        (ISSUING_KEY_FILE, b""),
        (CA_BUNDLE_FILE, b"garbage"),
        (REVOKED_FILE, b"{ not json"),
    ];
    for (name, garbage) in cases {
        let path = dir.join(name);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, garbage).unwrap();
        let err = CertificateAuthority::load(&dir).unwrap_err();
        assert!(matches!(err, PkiError::Corrupt { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{name}: {err}");

        std::fs::remove_file(&path).unwrap();
        if name != ROOT_KEY_FILE {
            let err = CertificateAuthority::load(&dir).unwrap_err();
            assert!(matches!(err, PkiError::Missing { .. }), "{name}: {err}");
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
        std::fs::write(&path, good).unwrap();
        CertificateAuthority::load(&dir).unwrap();
    }
}

#[test]
fn mismatched_keys_and_foreign_certificates_are_refused() {
    let f = fixture();
    let dir = f.ca.dir().to_path_buf();
    let other = CertificateAuthority::create(&f.tmp.path().join("other"), "Other", now()).unwrap();

    // The root key in place of the issuing key.
    let good_key = std::fs::read(dir.join(ISSUING_KEY_FILE)).unwrap();
    std::fs::copy(dir.join(ROOT_KEY_FILE), dir.join(ISSUING_KEY_FILE)).unwrap();
    let err = CertificateAuthority::load(&dir).unwrap_err();
    assert!(err.to_string().contains(ISSUING_KEY_FILE), "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");
    std::fs::write(dir.join(ISSUING_KEY_FILE), good_key).unwrap();

    // Another CA's root: the issuing CA is not signed by it.
    let good_root = std::fs::read(dir.join(ROOT_CERT_FILE)).unwrap();
    std::fs::remove_file(dir.join(ROOT_KEY_FILE)).unwrap();
    std::fs::write(dir.join(ROOT_CERT_FILE), other.root_cert_pem()).unwrap();
    let err = CertificateAuthority::load(&dir).unwrap_err();
    assert!(err.to_string().contains(ISSUING_CERT_FILE), "{err}");
    std::fs::write(dir.join(ROOT_CERT_FILE), good_root).unwrap();
    CertificateAuthority::load(&dir).unwrap();
}

#[test]
fn server_config_errors_name_the_file() {
    let f = fixture();
    let garbage = f.tmp.path().join("garbage.pem");
    std::fs::write(&garbage, "nothing here").unwrap();
    let missing = f.tmp.path().join("missing.pem");
    let variants = [
        TlsFiles {
            cert: garbage.clone(),
            ..f.tls_files.clone()
        },
        TlsFiles {
            key: garbage.clone(),
            ..f.tls_files.clone()
        },
        TlsFiles {
            client_ca: Some(garbage.clone()),
            ..f.tls_files.clone()
        },
        TlsFiles {
            crl: Some(garbage.clone()),
            ..f.tls_files.clone()
        },
        TlsFiles {
            key: missing.clone(),
            ..f.tls_files.clone()
        },
    ];
    for files in variants {
        let err = server_config(&files, &[]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("garbage.pem") || msg.contains("missing.pem"),
            "{msg}"
        );
    }
    // A key that does not belong to the certificate names both.
    let stranger = f.ca.issue_device("stranger", DAY, now()).unwrap();
    let stranger_key = f.tmp.path().join("stranger.key");
    std::fs::write(&stranger_key, stranger.key_pem.unwrap()).unwrap();
    let err = server_config(
        &TlsFiles {
            key: stranger_key,
            ..f.tls_files.clone()
        },
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("stranger.key"), "{err}");
}

#[test]
fn device_certificate_has_the_requested_shape() {
    let f = fixture();
    let t = now();
    let device = f.ca.issue_device("thermostat-42", 30 * DAY, t).unwrap();
    let cert_der = der(&device.cert_pem);
    let (_, cert) = parse_x509_certificate(&cert_der).unwrap();

    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "thermostat-42"
    );
    assert!(!cert.is_ca());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert_eq!(cert.raw_serial().len(), 16);
    assert!(cert.raw_serial()[0] < 0x80, "serial must be positive");
    assert_eq!(device.serial_hex.len(), 32);
    assert_eq!(cert.validity().not_after.to_datetime(), device.not_after);
    assert_eq!(cert.validity().not_before.to_datetime(), device.not_before);
    assert!(device.not_before <= t && device.not_after > t + ::time::Duration::days(29));

    // Signed by the issuing CA.
    let issuing_der = der(f.ca.issuing_cert_pem());
    let (_, issuing) = parse_x509_certificate(&issuing_der).unwrap();
    cert.verify_signature(Some(issuing.public_key())).unwrap();
    assert_eq!(device.chain_pem, f.ca.ca_bundle_pem());

    // Serials are unique.
    let again = f.ca.issue_device("thermostat-42", DAY, t).unwrap();
    assert_ne!(again.serial_hex, device.serial_hex);
}

#[test]
fn server_certificate_carries_sans_and_server_eku() {
    let f = fixture();
    let server =
        f.ca.issue_server(
            &["mqtt.example.com".into(), "localhost".into()],
            &["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
            DAY,
            now(),
        )
        .unwrap();
    let cert_der = der(&server.cert_pem);
    let (_, cert) = parse_x509_certificate(&cert_der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    let names: Vec<String> = san.general_names.iter().map(|n| n.to_string()).collect();
    assert!(
        names.iter().any(|n| n.contains("mqtt.example.com")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.contains("localhost")), "{names:?}");
    assert_eq!(names.len(), 4, "{names:?}");

    let err = f.ca.issue_server(&[], &[], DAY, now()).unwrap_err();
    assert!(matches!(err, PkiError::InvalidName { .. }), "{err}");
}

#[test]
fn validity_is_clipped_to_the_issuing_ca() {
    let f = fixture();
    let device =
        f.ca.issue_device(
            "sensor",
            std::time::Duration::from_secs(20 * 365 * 86_400),
            now(),
        )
        .unwrap();
    assert_eq!(device.not_after, f.ca.issuing_not_after());

    let err =
        f.ca.issue_device("sensor", std::time::Duration::ZERO, now())
            .unwrap_err();
    assert!(matches!(err, PkiError::InvalidValidity(_)), "{err}");
    let t = now();
    let err =
        f.ca.issue_device_with_validity_window("sensor", t, t - ::time::Duration::days(1))
            .unwrap_err();
    assert!(matches!(err, PkiError::InvalidValidity(_)), "{err}");
}

#[test]
fn thing_names_are_validated() {
    let f = fixture();
    for bad in [
        "",
        "has space",
        "slash/",
        "ünïcode",
        &"a".repeat(65),
        "new\nline",
    ] {
        let err = f.ca.issue_device(bad, DAY, now()).unwrap_err();
        assert!(
            matches!(err, PkiError::InvalidName { .. }),
            "{bad:?}: {err}"
        );
    }
    for good in ["a", "Sensor_1", "fleet:unit-7.b", &"a".repeat(64)] {
        f.ca.issue_device(good, DAY, now()).unwrap();
    }
}

#[test]
fn csr_issuance_uses_the_csr_key_and_replaces_the_subject() {
    let f = fixture();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "admin");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();

    let issued =
        f.ca.issue_device_from_csr(&csr, "sensor-7", DAY, now())
            .unwrap();
    assert!(issued.key_pem.is_none());
    let cert_der = der(&issued.cert_pem);
    let (_, cert) = parse_x509_certificate(&cert_der).unwrap();
    assert_eq!(
        cert.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw()
    );
    assert_eq!(cert.subject().to_string(), "CN=sensor-7");
    assert!(!cert.is_ca(), "requested extensions must be ignored");
    assert!(cert.subject_alternative_name().unwrap().is_none());
}

#[test]
fn csr_with_a_bad_signature_is_refused() {
    let f = fixture();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = rcgen::CertificateParams::new(vec![])
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    let mut der = csr.der().to_vec();
    // Flip a bit inside the signed request info (the public key), so the
    // structure still parses but the signature no longer matches.
    let spki_start = der
        .windows(key.public_key_raw().len())
        .position(|w| w == key.public_key_raw())
        .unwrap();
    der[spki_start + 10] ^= 0x01;
    let pem = pem_encode("CERTIFICATE REQUEST", &der);
    let err =
        f.ca.issue_device_from_csr(&pem, "sensor", DAY, now())
            .unwrap_err();
    assert!(matches!(err, PkiError::InvalidCsr(_)), "{err}");

    let err =
        f.ca.issue_device_from_csr("garbage", "sensor", DAY, now())
            .unwrap_err();
    assert!(matches!(err, PkiError::InvalidCsr(_)), "{err}");
}

#[test]
fn peer_identity_reads_cn_serial_and_expiry() {
    let f = fixture();
    let device = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    let id = peer_identity(&der(&device.cert_pem)).unwrap();
    assert_eq!(id.common_name, "sensor-1");
    assert_eq!(id.serial_hex, device.serial_hex);
    assert_eq!(id.not_after, device.not_after);
    assert!(matches!(
        peer_identity(b"junk"),
        Err(PkiError::InvalidCertificate(_))
    ));
}

#[test]
fn revocation_persists_and_is_in_the_signed_crl() {
    let mut f = fixture();
    let device = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    assert!(!f.ca.is_revoked(&device.serial_hex));
    f.ca.revoke(&device.serial_hex.to_uppercase(), now())
        .unwrap();
    f.ca.revoke(&device.serial_hex, now()).unwrap();
    assert_eq!(f.ca.revoked().len(), 1);
    assert!(matches!(
        f.ca.revoke("not-hex", now()),
        Err(PkiError::InvalidSerial { .. })
    ));

    let dir = f.ca.dir().to_path_buf();
    let reloaded = CertificateAuthority::load(&dir).unwrap();
    assert!(reloaded.is_revoked(&device.serial_hex));

    let issuing_der = der(f.ca.issuing_cert_pem());
    let (_, issuing) = parse_x509_certificate(&issuing_der).unwrap();
    let check = |crl_der: &[u8]| {
        let (_, crl) = parse_x509_crl(crl_der).unwrap();
        crl.verify_signature(issuing.public_key()).unwrap();
        assert_eq!(crl.issuer(), issuing.subject());
        let serials: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| r.raw_serial().iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        assert_eq!(serials, vec![device.serial_hex.clone()]);
        crl.crl_number().unwrap().clone()
    };
    let from_api = check(&reloaded.crl_der(now()).unwrap());
    let on_disk =
        rustls::pki_types::CertificateRevocationListDer::from_pem_file(dir.join(CRL_FILE)).unwrap();
    let on_disk_number = check(&on_disk);
    assert_eq!(from_api, on_disk_number);

    // A refresh re-signs with a higher CRL number and the same content.
    let mut reloaded = reloaded;
    reloaded.refresh_crl(now()).unwrap();
    let refreshed =
        rustls::pki_types::CertificateRevocationListDer::from_pem_file(dir.join(CRL_FILE)).unwrap();
    assert!(check(&refreshed) > on_disk_number);
}

#[test]
fn write_bundle_writes_cert_key_and_ca() {
    let f = fixture();
    let device = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    let out = f.tmp.path().join("out");
    let paths = device.write_bundle(&out, "sensor-1").unwrap();
    assert_eq!(paths.cert, out.join("sensor-1.pem"));
    assert_eq!(
        paths.key.as_deref(),
        Some(out.join("sensor-1.key").as_path())
    );
    assert_eq!(paths.ca, out.join("ca.pem"));
    let chain: Vec<_> = CertificateDer::pem_file_iter(&paths.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(chain.len(), 2, "leaf followed by the issuing CA");
    assert_eq!(chain[0].to_vec(), der(&device.cert_pem));
    assert_eq!(
        std::fs::read_to_string(&paths.ca).unwrap(),
        f.ca.ca_bundle_pem()
    );
    assert_eq!(
        std::fs::read_to_string(paths.key.unwrap()).unwrap(),
        device.key_pem.clone().unwrap()
    );
    assert!(device.write_bundle(&out, "../escape").is_err());
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}

#[test]
fn shared_types_are_thread_safe() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<CertificateAuthority>();
    assert_send_sync::<civitas_pki::ReloadingServerConfig>();
    assert_send_sync::<PkiError>();
    assert_send_sync::<civitas_pki::IssuedCert>();
}

#[test]
fn tls_files_point_at_the_bundle_and_crl() {
    let f = fixture();
    let files = f.ca.tls_files(&f.tls_files.cert, &f.tls_files.key);
    assert_eq!(files, f.tls_files);
}
