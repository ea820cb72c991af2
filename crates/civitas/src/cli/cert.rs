//! `civitas cert`: certificates by serial — list, show, renew with an
//! overlap, switch off and on, revoke.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use civitas_registry::{AdminRequest, CertificateStatus};
use clap::{Args, Subcommand};

use super::{Admin, call, or_dash, parse_duration, print_fields, print_json, print_table, time};
use crate::config::Config;

#[derive(Args, Debug)]
pub struct CertArgs {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CertCommand,
}

#[derive(Subcommand, Debug)]
enum CertCommand {
    /// List every certificate the registry knows.
    List,
    /// One certificate, with its PEM.
    Show { serial: String },
    /// Issue a successor (same thing, same policies); the old certificate
    /// keeps working for the overlap. Writes the new bundle.
    Renew {
        serial: String,
        /// Sign this CSR instead of generating a new key.
        #[arg(long)]
        csr: Option<PathBuf>,
        /// How long the old certificate keeps working (e.g. 24h, 7d).
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        overlap: Duration,
        /// Bundle directory (default: DATA_DIR/devices/THING).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Switch a certificate off (reversible).
    Deactivate { serial: String },
    /// Switch a certificate back on.
    Activate { serial: String },
    /// Revoke a certificate (into the CRL; final).
    Revoke { serial: String },
}

pub fn run(config: &Config, args: CertArgs) -> anyhow::Result<()> {
    let json = args.json;
    let mut admin = Admin::open(config)?;
    match args.command {
        CertCommand::List => {
            let certs = call!(admin, AdminRequest::ListCertificates, Certificates);
            if json {
                return print_json(&certs);
            }
            let rows: Vec<Vec<String>> = certs
                .iter()
                .map(|c| {
                    vec![
                        c.serial.clone(),
                        or_dash(c.thing.as_deref()),
                        c.status.to_string(),
                        time(c.not_after_ms),
                        or_dash(Some(&c.policies.join(","))),
                    ]
                })
                .collect();
            print_table(
                &["SERIAL", "THING", "STATUS", "NOT AFTER", "POLICIES"],
                &rows,
            );
            Ok(())
        }
        CertCommand::Show { serial } => {
            let request = AdminRequest::DescribeCertificate {
                serial: serial.clone(),
            };
            let c = (|| Ok(call!(admin, request, Certificate)))()
                .with_context(|| format!("cert show {serial}"))?;
            if json {
                return print_json(&c);
            }
            print_fields(&[
                ("serial", c.serial.clone()),
                ("thing", or_dash(c.thing.as_deref())),
                ("status", c.status.to_string()),
                ("common name", c.common_name.clone()),
                ("not before", time(c.not_before_ms)),
                ("not after", time(c.not_after_ms)),
                ("replaced by", or_dash(c.replaced_by.as_deref())),
                (
                    "overlap until",
                    c.overlap_until_ms.map_or_else(|| "-".into(), time),
                ),
                ("policies", or_dash(Some(&c.policies.join(", ")))),
            ]);
            println!();
            print!("{}", c.certificate_pem);
            Ok(())
        }
        CertCommand::Renew {
            serial,
            csr,
            overlap,
            out,
        } => {
            let context = || format!("cert renew {serial}");
            let csr = csr
                .map(|p| super::read_file(&p, "CSR"))
                .transpose()
                .with_context(context)?;
            let request = AdminRequest::RenewCertificate {
                serial: serial.clone(),
                csr,
                overlap_secs: overlap.as_secs(),
            };
            let issued = (|| Ok(call!(admin, request, Issued)))().with_context(context)?;
            let name = issued.thing.clone().unwrap_or(issued.common_name.clone());
            let dir = super::bundle_dir(config, &name, out);
            let paths = issued
                .to_issued_cert()
                .write_bundle(&dir, &name)
                .with_context(context)?;
            if json {
                return print_json(&serde_json::json!({
                    "serial": issued.serial,
                    "replaces": serial,
                    "thing": issued.thing,
                    "not_after_ms": issued.not_after_ms,
                    "certificate": paths.cert,
                    "key": paths.key,
                    "ca": paths.ca,
                }));
            }
            println!("Renewed {serial} as {}.", issued.serial);
            print_fields(&[
                ("valid until", time(issued.not_after_ms)),
                ("old one works for", human(overlap)),
                ("bundle", dir.display().to_string()),
            ]);
            Ok(())
        }
        CertCommand::Deactivate { serial } => {
            status(&mut admin, &serial, CertificateStatus::Inactive, json)
        }
        CertCommand::Activate { serial } => {
            status(&mut admin, &serial, CertificateStatus::Active, json)
        }
        CertCommand::Revoke { serial } => {
            let request = AdminRequest::RevokeCertificate {
                serial: serial.clone(),
            };
            let c = (|| Ok(call!(admin, request, Certificate)))()
                .with_context(|| format!("cert revoke {serial}"))?;
            if json {
                return print_json(&c);
            }
            println!("revoked {}", c.serial);
            super::device::reload_note(config, std::slice::from_ref(&c.serial));
            Ok(())
        }
    }
}

fn status(
    admin: &mut Admin,
    serial: &str,
    status: CertificateStatus,
    json: bool,
) -> anyhow::Result<()> {
    let request = AdminRequest::SetCertificateStatus {
        serial: serial.to_owned(),
        status,
    };
    let c = (|| Ok(call!(admin, request, Certificate)))()
        .with_context(|| format!("cert {} {serial}", status.as_str().to_lowercase()))?;
    if json {
        return print_json(&c);
    }
    println!("{} is now {}", c.serial, c.status);
    Ok(())
}

/// `90s`, `15m`, `2h`, `7d`: the largest unit that divides evenly.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => "0s (it is inactive now)".into(),
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
