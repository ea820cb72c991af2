//! Operator commands on the device registry, one module per noun.
//!
//! Each command is one [`AdminRequest`]: sent to the running server over
//! `DATA_DIR/admin.sock` when one is there, or executed here on the store
//! and CA opened directly when civitas is not running. Output is a table
//! by default and the response's JSON with `--json`.

pub mod ca;
pub mod cert;
pub mod device;
pub mod enroll;
pub mod group;
pub mod policy;
pub mod provision;
pub mod rule;
pub mod thing_type;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use civitas_pki::CertificateAuthority;
use civitas_registry::{
    ADMIN_SOCKET_FILE, Actor, AdminClient, AdminRequest, AdminResponse, Registry, current_uid,
};
use civitas_store::{Store, StoreOptions};
use serde::Serialize;

use crate::config::Config;

/// Where requests go.
pub enum Admin {
    /// The running server.
    Remote(AdminClient),
    /// No server: the registry over the store opened here.
    Local {
        registry: Box<Registry>,
        actor: Actor,
        /// Written to until the command ends; closed (flushed) on drop.
        _audit: civitas_audit::AuditLog,
    },
}

impl Admin {
    /// The server's admin socket if it answers; otherwise the store and CA
    /// opened here (created on first use, as `civitas up` would).
    pub fn open(config: &Config) -> anyhow::Result<Admin> {
        let data_dir = &config.data_dir;
        let socket = data_dir.join(ADMIN_SOCKET_FILE);
        if let Some(client) = AdminClient::connect(&socket)? {
            return Ok(Admin::Remote(client));
        }
        crate::up::create_private_dir(data_dir)?;
        let (_, _) = CertificateAuthority::open_or_create(
            &crate::admin::ca_dir(data_dir),
            &config.tls.organization,
            time::OffsetDateTime::now_utc(),
        )
        .context("certificate authority")?;
        let db = data_dir.join("civitas.redb");
        let store = Store::open(&db, StoreOptions::default()).with_context(|| {
            format!(
                "opening {} (no civitas answered on {})",
                db.display(),
                socket.display()
            )
        })?;
        let (registry, audit) = crate::admin::registry(config, data_dir, store)?;
        Ok(Admin::Local {
            registry: Box::new(registry),
            actor: Actor::operator(current_uid(), "local"),
            _audit: audit,
        })
    }

    /// Runs one request; a refused request becomes an error carrying the
    /// registry's message.
    pub fn call(&mut self, request: AdminRequest) -> anyhow::Result<AdminResponse> {
        let response = match self {
            Admin::Remote(client) => client.call(&request)?,
            Admin::Local {
                registry, actor, ..
            } => registry.execute(actor, request),
        };
        match response {
            AdminResponse::Error(problem) => Err(anyhow!(problem.message)),
            other => Ok(other),
        }
    }
}

/// Runs `request` and unpacks the expected response variant.
macro_rules! call {
    ($admin:expr, $request:expr, $variant:ident) => {
        match $admin.call($request)? {
            civitas_registry::AdminResponse::$variant(value) => value,
            other => anyhow::bail!("unexpected response from civitas: {other:?}"),
        }
    };
}
pub(crate) use call;

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A plain-text table: a header row and aligned columns.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `label  value` lines for one object.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in fields {
        println!("{k:width$}  {v}");
    }
}

/// Unix ms as RFC 3339 (UTC, seconds).
pub fn time(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

pub fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

/// `k=v` flags into a map; a repeated key is an error.
pub fn key_values(pairs: &[String], flag: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("{flag} {pair:?}: expected KEY=VALUE");
        };
        if map.insert(k.to_owned(), v.to_owned()).is_some() {
            bail!("{flag} {k:?} given twice");
        }
    }
    Ok(map)
}

/// A duration like `90s`, `15m`, `1h`, `7d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 90s, 15m, 1h, 7d)"))?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use s, m, h or d)"
            ));
        }
    };
    n.checked_mul(unit_secs)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// The text of a file given on the command line.
pub fn read_file(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))
}

/// Where a device's bundle goes unless `--out` says otherwise.
pub fn bundle_dir(config: &Config, name: &str, out: Option<PathBuf>) -> PathBuf {
    let dir = out.unwrap_or_else(|| config.data_dir.join("devices").join(name));
    // Absolute, so that connect.txt works from any directory.
    std::path::absolute(&dir).unwrap_or(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap().as_secs(), 3600);
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 7 * 86400);
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn key_value_flags() {
        let map = key_values(&["a=1".into(), "b=x=y".into()], "--attr").unwrap();
        assert_eq!(map["b"], "x=y");
        assert!(key_values(&["a".into()], "--attr").is_err());
        assert!(key_values(&["a=1".into(), "a=2".into()], "--attr").is_err());
    }
}
