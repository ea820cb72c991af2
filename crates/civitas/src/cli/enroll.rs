//! `civitas enroll`: one-time enrollment tokens. An operator creates one
//! for a thing; the device (or its installer) redeems it once with a CSR
//! and receives its certificate.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use civitas_registry::AdminRequest;
use clap::{Args, Subcommand};

use super::{Admin, call, parse_duration, print_fields, print_json, time};
use crate::config::Config;

#[derive(Args, Debug)]
pub struct EnrollArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: EnrollCommand,
}

#[derive(Subcommand, Debug)]
enum EnrollCommand {
    /// Enrollment tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Redeem a token with a CSR and write the certificate bundle.
    Redeem {
        token: String,
        #[arg(long)]
        csr: PathBuf,
        /// Bundle directory (default: DATA_DIR/devices/THING).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token for THING (created if absent) and print it once.
    Create {
        thing: String,
        /// How long the token can be redeemed (e.g. 15m, 1h, 7d).
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: Duration,
    },
}

pub fn run(config: &Config, args: EnrollArgs) -> anyhow::Result<()> {
    let mut admin = Admin::open(config)?;
    match args.command {
        EnrollCommand::Token(TokenCommand::Create { thing, ttl }) => {
            let request = AdminRequest::CreateEnrollmentToken {
                thing: thing.clone(),
                ttl_secs: ttl.as_secs(),
            };
            let token = (|| Ok(call!(admin, request, EnrollmentToken)))()
                .with_context(|| format!("enroll token create {thing}"))?;
            if args.json {
                return print_json(&token);
            }
            // The token alone on stdout, so scripts can capture it.
            println!("{}", token.token);
            eprintln!(
                "Enrollment token for {thing}{}; it is shown only this once and can be redeemed once until {}.",
                if token.thing_created {
                    " (thing created)"
                } else {
                    ""
                },
                time(token.expires_ms)
            );
            Ok(())
        }
        EnrollCommand::Redeem { token, csr, out } => {
            let context = || "enroll redeem".to_owned();
            let csr = super::read_file(&csr, "CSR").with_context(context)?;
            let request = AdminRequest::RedeemEnrollmentToken { token, csr };
            let issued = (|| Ok(call!(admin, request, Issued)))().with_context(context)?;
            let name = issued.thing.clone().unwrap_or(issued.common_name.clone());
            let dir = super::bundle_dir(config, &name, out);
            let paths = issued
                .to_issued_cert()
                .write_bundle(&dir, &name)
                .with_context(context)?;
            if args.json {
                return print_json(&serde_json::json!({
                    "thing": name,
                    "serial": issued.serial,
                    "not_after_ms": issued.not_after_ms,
                    "certificate": paths.cert,
                    "ca": paths.ca,
                }));
            }
            println!("Enrolled {name}.");
            print_fields(&[
                ("certificate", issued.serial.clone()),
                ("valid until", time(issued.not_after_ms)),
                ("bundle", dir.display().to_string()),
            ]);
            Ok(())
        }
    }
}
