//! The bench's own certificate authority and every client's certificate.
//!
//! Issuing ten thousand certificates takes a while, so the CA, the server
//! certificate and all client certificates are cached in one directory and
//! reused run after run; only missing names are issued. Both brokers get
//! the same CA, the same server certificate and see the same clients.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use civitas_pki::CertificateAuthority;
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{BenchError, Result};

const ORG: &str = "civitas bench";
const CLIENTS_FILE: &str = "clients.json";
/// Client certificates live long enough for months of reruns; the cache is
/// re-issued when fewer than `RENEW_BEFORE` days remain.
const CLIENT_DAYS: u64 = 365;
const RENEW_BEFORE: time::Duration = time::Duration::days(14);

/// The bench CA and its files, as both brokers are configured with them.
pub struct BenchPki {
    ca: CertificateAuthority,
    /// `ca-bundle.pem` (issuing CA, then root).
    pub ca_bundle: PathBuf,
    /// `crl.pem`, refreshed at every open so it never expires mid-run.
    pub crl: PathBuf,
    /// The CA directory, copied into civitas' data directory.
    pub ca_dir: PathBuf,
    /// Server certificate (leaf + issuing CA) for localhost / 127.0.0.1.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    clients_path: PathBuf,
}

/// A client's certificate as configs for the generator: one that never
/// resumes (every connection a full handshake) and one that keeps TLS 1.3
/// tickets for resumption.
#[derive(Clone)]
pub struct Identity {
    pub name: String,
    pub full: Arc<ClientConfig>,
    pub resuming: Arc<ClientConfig>,
}

#[derive(Serialize, Deserialize, Default)]
struct ClientCache {
    /// Unix seconds after which the cached certificates are re-issued.
    renew_after: i64,
    clients: BTreeMap<String, CachedClient>,
}

#[derive(Serialize, Deserialize, Clone)]
struct CachedClient {
    /// Leaf followed by the issuing CA.
    chain_pem: String,
    key_pem: String,
}

impl BenchPki {
    /// Opens the cached CA in `dir`, creating it (and the server
    /// certificate) on first use.
    pub fn open(dir: &Path) -> Result<BenchPki> {
        let now = OffsetDateTime::now_utc();
        let ca_dir = dir.join("ca");
        let (mut ca, _) = CertificateAuthority::open_or_create(&ca_dir, ORG, now)?;
        ca.refresh_crl(now)?;
        let server_dir = dir.join("server");
        let server_cert = server_dir.join("server.pem");
        let server_key = server_dir.join("server.key");
        if !(server_cert.exists() && server_key.exists()) {
            let issued = ca.issue_server(
                &["localhost".to_string()],
                &[
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ],
                Duration::from_secs(CLIENT_DAYS * 86400),
                now,
            )?;
            issued.write_bundle(&server_dir, "server")?;
        }
        let mut roots = RootCertStore::empty();
        let bundle = ca.ca_bundle_path();
        for cert in CertificateDer::pem_file_iter(&bundle).map_err(|e| BenchError::BadFile {
            path: bundle.clone(),
            reason: e.to_string(),
        })? {
            let cert = cert.map_err(|e| BenchError::BadFile {
                path: bundle.clone(),
                reason: e.to_string(),
            })?;
            roots.add(cert)?;
        }
        // OpenSSL 3.0 in Mosquitto negotiates X25519; offering only that
        // keeps the key exchange the same on both brokers (rustls would
        // otherwise prefer a post-quantum hybrid with civitas).
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
        Ok(BenchPki {
            ca_bundle: bundle,
            crl: ca.crl_path(),
            ca_dir,
            server_cert,
            server_key,
            ca,
            roots: Arc::new(roots),
            provider: Arc::new(provider),
            clients_path: dir.join(CLIENTS_FILE),
        })
    }

    /// Client identities for `names` (certificate CN = name), issuing and
    /// caching those not issued before.
    pub fn identities(&self, names: &[String]) -> Result<Vec<Identity>> {
        let now = OffsetDateTime::now_utc();
        let mut cache: ClientCache = match std::fs::read(&self.clients_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| BenchError::BadFile {
                path: self.clients_path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ClientCache::default(),
            Err(e) => return Err(BenchError::io(self.clients_path.display().to_string(), e)),
        };
        if cache.renew_after <= now.unix_timestamp() {
            cache = ClientCache {
                renew_after: (now + time::Duration::days(CLIENT_DAYS as i64) - RENEW_BEFORE)
                    .unix_timestamp(),
                clients: BTreeMap::new(),
            };
        }
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !cache.clients.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            eprintln!("bench: issuing {} client certificates", missing.len());
            for name in missing {
                let issued =
                    self.ca
                        .issue_device(name, Duration::from_secs(CLIENT_DAYS * 86400), now)?;
                let key_pem = issued.key_pem.clone().unwrap_or_default();
                cache.clients.insert(
                    name.clone(),
                    CachedClient {
                        chain_pem: issued.fullchain_pem(),
                        key_pem,
                    },
                );
            }
            self.save(&cache)?;
        }
        names
            .iter()
            .map(|name| {
                let c = cache.clients.get(name).ok_or_else(|| BenchError::BadFile {
                    path: self.clients_path.clone(),
                    reason: format!("no certificate for {name}"),
                })?;
                self.identity(name, c)
            })
            .collect()
    }

    fn identity(&self, name: &str, cached: &CachedClient) -> Result<Identity> {
        let bad = |reason: String| BenchError::BadFile {
            path: self.clients_path.clone(),
            reason: format!("{name}: {reason}"),
        };
        let chain = CertificateDer::pem_slice_iter(cached.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(cached.key_pem.as_bytes())
            .map_err(|e| bad(e.to_string()))?;
        let mut full = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(chain, key)?;
        let mut resuming = full.clone();
        full.resumption = Resumption::disabled();
        resuming.resumption = Resumption::in_memory_sessions(4);
        Ok(Identity {
            name: name.to_string(),
            full: Arc::new(full),
            resuming: Arc::new(resuming),
        })
    }

    fn save(&self, cache: &ClientCache) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let json = serde_json::to_vec(cache).map_err(|e| BenchError::BadFile {
            path: self.clients_path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = self.clients_path.with_extension("json.tmp");
        let ctx = || self.clients_path.display().to_string();
        // Private keys: readable by the owner only.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| BenchError::io(ctx(), e))?;
        f.write_all(&json).map_err(|e| BenchError::io(ctx(), e))?;
        f.sync_all().map_err(|e| BenchError::io(ctx(), e))?;
        std::fs::rename(&tmp, &self.clients_path).map_err(|e| BenchError::io(ctx(), e))
    }

    /// Copies the CA into `DATA_DIR/pki/ca` so civitas adopts it on first
    /// start instead of creating its own.
    pub fn install_into_civitas(&self, data_dir: &Path) -> Result<()> {
        let target = data_dir.join("pki").join("ca");
        std::fs::create_dir_all(&target)
            .map_err(|e| BenchError::io(target.display().to_string(), e))?;
        let entries = std::fs::read_dir(&self.ca_dir)
            .map_err(|e| BenchError::io(self.ca_dir.display().to_string(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| BenchError::io(self.ca_dir.display().to_string(), e))?;
            let from = entry.path();
            if from.is_file() {
                let to = target.join(entry.file_name());
                std::fs::copy(&from, &to)
                    .map_err(|e| BenchError::io(format!("copying {}", from.display()), e))?;
            }
        }
        Ok(())
    }
}
