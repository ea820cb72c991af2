//! The civitas configuration: one TOML file (`civitas.toml`), overridable
//! by `CIVITAS_*` environment variables and `--set` flags.
//!
//! The file is checked on its own first, so that a mistake in it is
//! reported with the file, line and field; overrides are applied after
//! and reported by their own names.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use civitas_broker::BrokerConfig;
use civitas_web_device::DeviceApiConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where civitas keeps its CA, certificates and database. Relative
    /// paths are relative to the working directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub broker: BrokerConfig,
    /// The HTTPS device API (publish and shadows without MQTT).
    #[serde(default)]
    pub device_api: DeviceApiConfig,
    /// The built-in key management service.
    #[serde(default)]
    pub kms: KmsConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KmsConfig {
    /// Master keys (the audit key, each device's telemetry key) get a new
    /// version after this many days; older versions keep decrypting.
    pub rotation_days: u32,
}

impl Default for KmsConfig {
    fn default() -> Self {
        KmsConfig { rotation_days: 365 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            log: LogConfig::default(),
            tls: TlsConfig::default(),
            broker: BrokerConfig::default(),
            device_api: DeviceApiConfig::default(),
            kms: KmsConfig::default(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("civitas-data")
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `civitas_broker=debug,info`, ...
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Organization named in the CA certificates created on first run.
    pub organization: String,
    /// Host names the server certificate is valid for.
    pub server_names: Vec<String>,
    /// IP addresses the server certificate is valid for.
    pub server_ips: Vec<IpAddr>,
    /// Validity of the server certificate, in days; it is renewed at
    /// start when less than 30 days remain.
    pub server_cert_days: u32,
    /// Validity of device certificates issued by civitas, in days.
    pub device_cert_days: u32,
    /// How often certificate, CA and CRL files are checked for changes
    /// (new connections use the new files; existing ones stay up).
    pub reload_interval_secs: u64,
    /// The example device created on first run, with its bundle.
    pub example_device: String,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            organization: "civitas".into(),
            server_names: vec!["localhost".into()],
            server_ips: vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
            ],
            server_cert_days: 365,
            device_cert_days: 365,
            reload_interval_secs: 5,
            example_device: "streetlight-001".into(),
        }
    }
}

/// Environment variables that are not configuration fields: the config
/// file's path and the test suite's own settings (`scripts/test` exports
/// them to every process it starts, `civitas` included).
const NOT_FIELDS: &[&str] = &[
    "CIVITAS_CONFIG",
    "CIVITAS_TEST_LOG",
    "CIVITAS_PYTHON",
    "CIVITAS_REQUIRE_EXTERNAL",
];

impl Config {
    /// Load `path` (if given and present), then apply `CIVITAS_*`
    /// variables from `env`, then `--set key=value` overrides.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        sets: &[String],
    ) -> anyhow::Result<Config> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                // Parse the file alone for precise positions in errors.
                if let Err(e) = toml::from_str::<Config>(&text) {
                    bail!("{}", located(p, &text, &e));
                }
                toml::from_str::<toml::Table>(&text)
                    .map_err(|e| anyhow::anyhow!("{}", located(p, &text, &e)))?
            }
            None => toml::Table::new(),
        };
        // Only variables naming a top-level field are configuration; others
        // (tools' own CIVITAS_* settings) are left alone, with a note unless
        // they are known not to be fields.
        let top_level: Vec<String> = toml::Table::try_from(Config::default())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("CIVITAS_") else {
                continue;
            };
            if NOT_FIELDS.contains(&key.as_str()) {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if !top_level.contains(&path[0]) {
                eprintln!(
                    "civitas: note: ignoring environment variable {key}: {:?} is not a configuration field",
                    path[0]
                );
                continue;
            }
            set_path(&mut table, &path, &value)
                .with_context(|| format!("environment variable {key}"))?;
        }
        for s in sets {
            let (key, value) = s
                .split_once('=')
                .with_context(|| format!("--set {s}: expected KEY=VALUE"))?;
            let path: Vec<String> = key.split('.').map(str::to_string).collect();
            set_path(&mut table, &path, value).with_context(|| format!("--set {s}"))?;
        }
        let config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("after overrides: {}", e.message()))?;
        Ok(config)
    }
}

/// `file:line:column: message` for a TOML error.
fn located(path: &Path, text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{}:{line}:{column}: {}", path.display(), e.message())
        }
        None => format!("{}: {}", path.display(), e.message()),
    }
}

/// Set `a.b.c = value`, reading value as TOML when it parses as such
/// (numbers, booleans, arrays) and as a string otherwise.
fn set_path(table: &mut toml::Table, path: &[String], value: &str) -> anyhow::Result<()> {
    let Some((last, parents)) = path.split_last() else {
        bail!("empty key");
    };
    let mut current = table;
    for p in parents {
        let entry = current
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => bail!("{p} is not a table"),
        };
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    current.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn shipped_civitas_toml_is_the_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../civitas.toml");
        let config = Config::load(Some(&path), [], &[]).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn unknown_field_is_reported_with_file_and_line() {
        let f = write("data_dir = \"x\"\n\n[broker.limits]\nmax_packet_sise = 10\n");
        let err = Config::load(Some(f.path()), [], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("{}:4:", f.path().display())), "{err}");
        assert!(err.contains("max_packet_sise"), "{err}");
    }

    #[test]
    fn wrong_type_is_reported_with_line() {
        let f = write("[broker.limits]\nreceive_maximum = \"many\"\n");
        let err = Config::load(Some(f.path()), [], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:"), "{err}");
    }

    #[test]
    fn environment_and_flags_override_the_file() {
        let f = write("data_dir = \"from-file\"\n[broker.limits]\nreceive_maximum = 5\n");
        let env = [
            ("CIVITAS_DATA_DIR".to_string(), "from-env".to_string()),
            (
                "CIVITAS_BROKER__LIMITS__RECEIVE_MAXIMUM".to_string(),
                "7".to_string(),
            ),
            ("CIVITAS_CONFIG".to_string(), "ignored".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let config = Config::load(
            Some(f.path()),
            env,
            &["broker.limits.max_inflight=9".to_string()],
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("from-env"));
        assert_eq!(config.broker.limits.receive_maximum, 7);
        assert_eq!(config.broker.limits.max_inflight, 9);
    }

    #[test]
    fn variables_outside_the_configuration_are_ignored() {
        let env = [("CIVITAS_BIN".to_string(), "/usr/bin/civitas".to_string())];
        assert_eq!(Config::load(None, env, &[]).unwrap(), Config::default());
    }

    #[test]
    fn bad_override_names_the_variable() {
        let env = [("CIVITAS_BROKER__LIMITS__NOPE".to_string(), "1".to_string())];
        let err = format!("{:#}", Config::load(None, env, &[]).unwrap_err());
        assert!(err.contains("nope"), "{err}");
    }
}
