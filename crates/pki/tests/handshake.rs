//! Real TLS handshakes between a rustls client and `server_config` /
//! `ReloadingServerConfig`: who gets in, who does not, and what a reload
//! changes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use civitas_pki::{
    CertificateAuthority, ReloadingServerConfig, TlsFiles, peer_identity, server_config,
};
use common::{
    DAY, client_with_cert, client_with_cert_versions, client_with_provider, client_without_cert,
    connect, fixture, now,
};
use rustls::HandshakeKind;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn valid_device_certificate_handshakes_over_tls13_and_tls12() {
    let f = fixture();
    let device = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    let key = device.key_pem.clone().unwrap();
    let server = server_config(&f.tls_files, &[b"mqtt".to_vec()]).unwrap();

    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let client = client_with_cert_versions(&f.ca, &device, &key, &[version]);
        let session = connect(server.clone(), client).await.unwrap();
        let (_, conn) = session.server.get_ref();
        assert_eq!(conn.protocol_version(), Some(version.version));
        let peer = conn.peer_certificates().unwrap();
        let id = peer_identity(&peer[0]).unwrap();
        assert_eq!(id.common_name, "sensor-1");
        assert_eq!(id.serial_hex, device.serial_hex);
    }
}

#[tokio::test]
async fn the_server_picks_aes_128_gcm_first_and_chacha20_for_a_client_that_offers_only_it() {
    use rustls::CipherSuite as S;
    let f = fixture();
    let device = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    let key = device.key_pem.clone().unwrap();
    let server = server_config(&f.tls_files, &[]).unwrap();
    let cases = [
        (&rustls::version::TLS13, None, S::TLS13_AES_128_GCM_SHA256),
        (
            &rustls::version::TLS12,
            None,
            S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            &rustls::version::TLS13,
            Some(S::TLS13_CHACHA20_POLY1305_SHA256),
            S::TLS13_CHACHA20_POLY1305_SHA256,
        ),
    ];
    for (version, only, expected) in cases {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        // rustls offers AES-256-GCM first, as OpenSSL and mbedTLS do.
        assert_eq!(
            provider.cipher_suites[0].suite(),
            S::TLS13_AES_256_GCM_SHA384
        );
        if let Some(only) = only {
            provider.cipher_suites.retain(|s| s.suite() == only);
        }
        let client = client_with_provider(&f.ca, &device, &key, &[version], Arc::new(provider));
        let session = connect(server.clone(), client).await.unwrap();
        let (_, conn) = session.server.get_ref();
        assert_eq!(
            conn.negotiated_cipher_suite().map(|s| s.suite()),
            Some(expected),
            "{version:?} offering {:?}",
            only.map_or("rustls' default order".to_string(), |s| format!("{s:?}"))
        );
    }
}

#[tokio::test]
async fn alpn_is_negotiated() {
    let f = fixture();
    let device = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    let server = server_config(&f.tls_files, &[b"mqtt".to_vec()]).unwrap();
    let mut client = (*client_with_cert(&f.ca, &device, device.key_pem.as_ref().unwrap())).clone();
    client.alpn_protocols = vec![b"mqtt".to_vec()];
    let session = connect(server, Arc::new(client)).await.unwrap();
    assert_eq!(
        session.server.get_ref().1.alpn_protocol(),
        Some(&b"mqtt"[..])
    );
}

/// Makes `client` (with a certificate from another CA) trust `ca`'s
/// server, so that only its own certificate is foreign.
fn trust_our_server(client: &mut rustls::ClientConfig, ca: &CertificateAuthority) {
    client.dangerous().set_certificate_verifier(
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(bundle_roots(ca)),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()
        .unwrap(),
    );
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    let f = fixture();
    let other_dir = f.tmp.path().join("other-ca");
    let other = CertificateAuthority::create(&other_dir, "Someone Else", now()).unwrap();
    let device = other.issue_device("sensor-1", DAY, now()).unwrap();
    let server = server_config(&f.tls_files, &[]).unwrap();
    // The client trusts the real server; only its own certificate is foreign.
    let mut client = (*client_with_cert(&other, &device, device.key_pem.as_ref().unwrap())).clone();
    trust_our_server(&mut client, &f.ca);
    let err = connect(server, Arc::new(client)).await.unwrap_err();
    assert!(err.contains("server:"), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let f = fixture();
    let t = now();
    let device =
        f.ca.issue_device_with_validity_window("sensor-1", t - 2 * DAY, t - DAY)
            .unwrap();
    let server = server_config(&f.tls_files, &[]).unwrap();
    let client = client_with_cert(&f.ca, &device, device.key_pem.as_ref().unwrap());
    let err = connect(server, client).await.unwrap_err();
    assert!(err.contains("server:") && err.contains("expired"), "{err}");
}

#[tokio::test]
async fn missing_client_certificate_is_refused() {
    let f = fixture();
    let server = server_config(&f.tls_files, &[]).unwrap();
    let err = connect(server, client_without_cert(&f.ca))
        .await
        .unwrap_err();
    assert!(err.contains("server:"), "{err}");
}

#[tokio::test]
async fn server_certificate_is_not_accepted_as_a_client_certificate() {
    let f = fixture();
    let server_cert =
        f.ca.issue_server(&["localhost".into()], &[], DAY, now())
            .unwrap();
    let server = server_config(&f.tls_files, &[]).unwrap();
    let client = client_with_cert(&f.ca, &server_cert, server_cert.key_pem.as_ref().unwrap());
    let err = connect(server, client).await.unwrap_err();
    assert!(err.contains("server:"), "{err}");
}

#[tokio::test]
async fn without_client_ca_no_client_certificate_is_asked_for() {
    let f = fixture();
    let files = TlsFiles {
        client_ca: None,
        crl: None,
        ..f.tls_files.clone()
    };
    let server = server_config(&files, &[]).unwrap();
    let session = connect(server, client_without_cert(&f.ca)).await.unwrap();
    assert!(session.server.get_ref().1.peer_certificates().is_none());
}

#[tokio::test]
async fn crl_without_client_ca_is_a_configuration_error() {
    let f = fixture();
    let files = TlsFiles {
        client_ca: None,
        ..f.tls_files.clone()
    };
    let err = server_config(&files, &[]).unwrap_err();
    assert!(err.to_string().contains("crl.pem"), "{err}");
}

#[tokio::test]
async fn csr_issued_certificate_handshakes_with_the_requesters_key() {
    let f = fixture();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = rcgen::CertificateParams::new(vec![])
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let device =
        f.ca.issue_device_from_csr(&csr, "sensor-csr", DAY, now())
            .unwrap();
    assert!(device.key_pem.is_none());
    let server = server_config(&f.tls_files, &[]).unwrap();
    let client = client_with_cert(&f.ca, &device, &key.serialize_pem());
    let session = connect(server, client).await.unwrap();
    let peer = session.server.get_ref().1.peer_certificates().unwrap();
    assert_eq!(peer_identity(&peer[0]).unwrap().common_name, "sensor-csr");
}

#[tokio::test]
async fn revoked_certificate_is_refused_after_reload_and_earlier_sessions_stay_up() {
    let mut f = fixture();
    let device = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    let other = f.ca.issue_device("sensor-2", DAY, now()).unwrap();
    let reloading = ReloadingServerConfig::new(f.tls_files.clone(), &[]).unwrap();
    let client = client_with_cert(&f.ca, &device, device.key_pem.as_ref().unwrap());

    let mut established = connect(reloading.current(), client.clone()).await.unwrap();

    f.ca.revoke(&device.serial_hex, now()).unwrap();
    // Until the reload, the server still uses the CRL it loaded.
    connect(reloading.current(), client.clone()).await.unwrap();
    assert!(
        reloading.reload().unwrap(),
        "a changed CRL must be picked up"
    );
    assert!(
        !reloading.reload().unwrap(),
        "unchanged files must not swap"
    );

    // A client holding a ticket from before the revocation resumes its
    // TLS session — resumption skips certificate verification — and the
    // check the listener runs on every resumed handshake refuses it.
    let resumed = connect(reloading.current(), client).await.unwrap();
    let (_, server_side) = resumed.server.get_ref();
    assert_eq!(server_side.handshake_kind(), Some(HandshakeKind::Resumed));
    let err = reloading
        .verify_resumed(server_side.peer_certificates().unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("Revoked"), "{err}");

    // Without a ticket, the handshake itself refuses the certificate.
    let fresh = client_with_cert(&f.ca, &device, device.key_pem.as_ref().unwrap());
    let err = connect(reloading.current(), fresh).await.unwrap_err();
    assert!(err.contains("server:") && err.contains("Revoked"), "{err}");

    // Another device of the same CA is unaffected.
    let other_client = client_with_cert(&f.ca, &other, other.key_pem.as_ref().unwrap());
    connect(reloading.current(), other_client).await.unwrap();

    // The session made before the revocation keeps working.
    established.round_trip().await.unwrap();
}

#[tokio::test]
async fn broken_file_keeps_the_previous_configuration() {
    let f = fixture();
    let device = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    let client = client_with_cert(&f.ca, &device, device.key_pem.as_ref().unwrap());
    let reloading = ReloadingServerConfig::new(f.tls_files.clone(), &[]).unwrap();
    let before = reloading.current();

    let good_crl = std::fs::read(f.ca.crl_path()).unwrap();
    std::fs::write(f.ca.crl_path(), b"-----BEGIN X509 CRL-----\ngarbage\n").unwrap();
    let err = reloading.reload().unwrap_err();
    assert!(err.to_string().contains("crl.pem"), "{err}");
    assert!(Arc::ptr_eq(&before, &reloading.current()));
    connect(reloading.current(), client.clone()).await.unwrap();

    // A certificate that does not match the key is refused too.
    let stranger = f.ca.issue_device("stranger", DAY, now()).unwrap();
    std::fs::write(f.ca.crl_path(), &good_crl).unwrap();
    std::fs::write(&f.tls_files.cert, stranger.cert_pem.as_bytes()).unwrap();
    assert!(reloading.reload().is_err());
    assert!(Arc::ptr_eq(&before, &reloading.current()));
    connect(reloading.current(), client).await.unwrap();
}

#[tokio::test]
async fn rotated_server_certificate_is_served_to_new_connections() {
    let f = fixture();
    let device = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    let client = client_with_cert(&f.ca, &device, device.key_pem.as_ref().unwrap());
    let reloading = ReloadingServerConfig::new(f.tls_files.clone(), &[]).unwrap();
    let first = connect(reloading.current(), client.clone()).await.unwrap();

    let renewed =
        f.ca.issue_server(&["localhost".into()], &[], 2 * DAY, now())
            .unwrap();
    renewed
        .write_bundle(f.tls_files.cert.parent().unwrap(), "server")
        .unwrap();
    assert!(reloading.reload().unwrap());

    let second = connect(reloading.current(), client).await.unwrap();
    let served = |s: &common::Session| {
        peer_identity(&s.client.get_ref().1.peer_certificates().unwrap()[0])
            .unwrap()
            .serial_hex
    };
    assert_eq!(served(&second), renewed.serial_hex);
    assert_ne!(served(&first), renewed.serial_hex);
}

#[tokio::test]
async fn watch_picks_up_changes_and_stops_on_shutdown() {
    let mut f = fixture();
    let device = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    let reloading = Arc::new(ReloadingServerConfig::new(f.tls_files.clone(), &[]).unwrap());
    let before = reloading.current();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        reloading
            .clone()
            .watch(Duration::from_millis(20), shutdown.clone()),
    );

    f.ca.revoke(&device.serial_hex, now()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while Arc::ptr_eq(&before, &reloading.current()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("watch did not reload the changed CRL");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("watch did not stop on shutdown")
        .unwrap();
}

fn bundle_roots(ca: &CertificateAuthority) -> rustls::RootCertStore {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.ca_bundle_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

#[tokio::test]
async fn sessions_resume_with_tickets_and_a_new_trust_bundle_ends_them() {
    let mut f = fixture();
    let device = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    let reloading = ReloadingServerConfig::new(f.tls_files.clone(), &[]).unwrap();
    let client = client_with_cert(&f.ca, &device, device.key_pem.as_ref().unwrap());
    let kind = |s: &common::Session| s.server.get_ref().1.handshake_kind();

    let first = connect(reloading.current(), client.clone()).await.unwrap();
    assert_eq!(kind(&first), Some(HandshakeKind::Full));
    let second = connect(reloading.current(), client.clone()).await.unwrap();
    assert_eq!(kind(&second), Some(HandshakeKind::Resumed));
    let chain = second.server.get_ref().1.peer_certificates().unwrap();
    assert_eq!(peer_identity(&chain[0]).unwrap().common_name, "sensor-1");
    reloading.verify_resumed(chain).unwrap();

    // A reload that changes only the CRL keeps the ticket key.
    let other = f.ca.issue_device("sensor-2", DAY, now()).unwrap();
    f.ca.revoke(&other.serial_hex, now()).unwrap();
    assert!(reloading.reload().unwrap());
    let third = connect(reloading.current(), client.clone()).await.unwrap();
    assert_eq!(kind(&third), Some(HandshakeKind::Resumed));

    // A changed client CA bundle starts a new ticket key: the next
    // handshake is a full one, verified against the new bundle.
    let bundle = std::fs::read_to_string(f.ca.ca_bundle_path()).unwrap();
    std::fs::write(f.ca.ca_bundle_path(), format!("{bundle}\n")).unwrap();
    assert!(reloading.reload().unwrap());
    let fourth = connect(reloading.current(), client).await.unwrap();
    assert_eq!(kind(&fourth), Some(HandshakeKind::Full));
}

#[test]
fn a_crl_the_bundle_cannot_vouch_for_is_refused_at_load() {
    let f = fixture();
    let good_crl = std::fs::read_to_string(f.ca.crl_path()).unwrap();

    // A CRL from a CA that is not in the client CA bundle.
    let other = CertificateAuthority::create(&f.tmp.path().join("other-ca"), "Someone Else", now())
        .unwrap();
    std::fs::copy(other.crl_path(), f.ca.crl_path()).unwrap();
    let err = ReloadingServerConfig::new(f.tls_files.clone(), &[]).unwrap_err();
    assert!(err.to_string().contains("crl.pem"), "{err}");
    assert!(
        err.to_string().contains("not in the client CA bundle"),
        "{err}"
    );

    // Our CA's CRL with its signature altered: one base64 digit in the
    // middle of the last line, which carries the signature's tail.
    let mut lines: Vec<String> = good_crl.lines().map(str::to_owned).collect();
    let last = lines.len() - 2;
    let mut chars: Vec<char> = lines[last].chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    lines[last] = chars.into_iter().collect();
    std::fs::write(f.ca.crl_path(), lines.join("\n") + "\n").unwrap();
    let err = ReloadingServerConfig::new(f.tls_files.clone(), &[]).unwrap_err();
    assert!(err.to_string().contains("crl.pem"), "{err}");
    assert!(err.to_string().contains("CRL"), "{err}");

    std::fs::write(f.ca.crl_path(), good_crl).unwrap();
    ReloadingServerConfig::new(f.tls_files.clone(), &[]).unwrap();
}

#[tokio::test]
async fn a_certificate_whose_issuer_published_no_crl_is_refused() {
    // Unknown revocation status fails closed: a second CA in the bundle
    // without a CRL in the file cannot vouch for its devices.
    let mut f = fixture();
    let other = CertificateAuthority::create(&f.tmp.path().join("other-ca"), "Someone Else", now())
        .unwrap();
    let bundle = f.tmp.path().join("two-cas.pem");
    std::fs::write(
        &bundle,
        format!("{}{}", f.ca.ca_bundle_pem(), other.ca_bundle_pem()),
    )
    .unwrap();
    f.tls_files.client_ca = Some(bundle);
    let server = server_config(&f.tls_files, &[]).unwrap();

    let device = other.issue_device("sensor-9", DAY, now()).unwrap();
    let mut client = (*client_with_cert(&other, &device, device.key_pem.as_ref().unwrap())).clone();
    trust_our_server(&mut client, &f.ca);
    let err = connect(server.clone(), Arc::new(client)).await.unwrap_err();
    assert!(err.contains("UnknownRevocationStatus"), "{err}");

    // The CA that did publish one still admits its devices.
    let ours = f.ca.issue_device("sensor-1", DAY, now()).unwrap();
    let client = client_with_cert(&f.ca, &ours, ours.key_pem.as_ref().unwrap());
    connect(server, client).await.unwrap();
}
