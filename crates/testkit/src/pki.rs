//! Test certificates: a civitas CA in a temp dir with a server certificate
//! for localhost, device bundles on demand, and the bad cases — a foreign
//! CA, an expired certificate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use civitas_pki::{CertificateAuthority, TlsFiles};
use time::OffsetDateTime;

/// Paths of one device's bundle.
#[derive(Debug, Clone)]
pub struct DeviceFiles {
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub serial_hex: String,
}

pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca: CertificateAuthority,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TestPki {
    pub fn new() -> anyhow::Result<TestPki> {
        let dir = tempfile::tempdir()?;
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::create(&dir.path().join("ca"), "civitas test", now)?;
        let server = ca.issue_server(
            &["localhost".to_string()],
            &[
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            Duration::from_secs(86400),
            now,
        )?;
        let paths = server.write_bundle(&dir.path().join("server"), "server")?;
        let server_key = paths
            .key
            .ok_or_else(|| anyhow::anyhow!("server bundle has no key"))?;
        Ok(TestPki {
            server_cert: paths.cert,
            server_key,
            ca,
            dir,
        })
    }

    pub fn ca_bundle(&self) -> PathBuf {
        self.ca.ca_bundle_path()
    }

    /// TLS files for a mutual-TLS listener, with the CRL.
    pub fn mutual_tls_files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: Some(self.ca.ca_bundle_path()),
            crl: Some(self.ca.crl_path()),
        }
    }

    /// TLS files for a server-authenticated-only listener.
    pub fn server_tls_files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: None,
            crl: None,
        }
    }

    /// A valid device certificate with CN = `name`.
    pub fn device(&self, name: &str) -> anyhow::Result<DeviceFiles> {
        let issued =
            self.ca
                .issue_device(name, Duration::from_secs(86400), OffsetDateTime::now_utc())?;
        self.write(name, issued, "devices")
    }

    /// A device certificate that expired an hour ago.
    pub fn expired_device(&self, name: &str) -> anyhow::Result<DeviceFiles> {
        let now = OffsetDateTime::now_utc();
        let issued = self.ca.issue_device_with_validity_window(
            name,
            now - time::Duration::days(2),
            now - time::Duration::hours(1),
        )?;
        self.write(name, issued, "expired")
    }

    /// A device certificate from a CA that civitas does not trust.
    pub fn foreign_device(&self, name: &str) -> anyhow::Result<DeviceFiles> {
        let now = OffsetDateTime::now_utc();
        let foreign =
            CertificateAuthority::create(&self.dir.path().join("foreign-ca"), "someone else", now)
                .or_else(|_| CertificateAuthority::load(&self.dir.path().join("foreign-ca")))?;
        let issued = foreign.issue_device(name, Duration::from_secs(86400), now)?;
        let mut files = self.write_in(name, issued, &self.dir.path().join("foreign"))?;
        // The client still verifies the server against the civitas CA.
        files.ca = self.ca_bundle();
        Ok(files)
    }

    fn write(
        &self,
        name: &str,
        issued: civitas_pki::IssuedCert,
        sub: &str,
    ) -> anyhow::Result<DeviceFiles> {
        self.write_in(name, issued, &self.dir.path().join(sub))
    }

    fn write_in(
        &self,
        name: &str,
        issued: civitas_pki::IssuedCert,
        dir: &Path,
    ) -> anyhow::Result<DeviceFiles> {
        let paths = issued.write_bundle(dir, name)?;
        Ok(DeviceFiles {
            name: name.to_string(),
            cert: paths.cert,
            key: paths
                .key
                .ok_or_else(|| anyhow::anyhow!("device bundle has no key"))?,
            ca: paths.ca,
            serial_hex: issued.serial_hex,
        })
    }
}
