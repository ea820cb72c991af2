//! `civitas provision`: fleet-provisioning templates (see
//! `civitas_registry::TemplateDocument` for the document form) and the
//! claim certificates with which devices provision themselves over MQTT.

use std::path::PathBuf;

use anyhow::Context;
use civitas_registry::AdminRequest;
use clap::{Args, Subcommand};

use super::{Admin, call, print_json, print_table, time};
use crate::config::Config;

#[derive(Args, Debug)]
pub struct ProvisionArgs {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ProvisionCommand,
}

#[derive(Subcommand, Debug)]
enum ProvisionCommand {
    /// Provisioning templates.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Claim certificates, good only for provisioning through a template.
    #[command(subcommand)]
    Claim(ClaimCommand),
}

#[derive(Subcommand, Debug)]
enum ClaimCommand {
    /// Create a claim certificate (with its key) for a template; devices
    /// that hold it may only ask for their own identity over MQTT.
    Create {
        name: String,
        #[arg(long)]
        template: String,
        /// Validity in days (default: the device certificate validity).
        #[arg(long)]
        days: Option<u32>,
        /// Where to write the bundle (default: DATA_DIR/claims/NAME).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum TemplateCommand {
    /// Create a template from a JSON file.
    Create {
        name: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Replace a template's document.
    Update {
        name: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Print a template's document.
    Show { name: String },
    /// List templates.
    List,
    /// Delete a template.
    Delete { name: String },
}

pub fn run(config: &Config, args: ProvisionArgs) -> anyhow::Result<()> {
    let json = args.json;
    let command = match args.command {
        ProvisionCommand::Template(command) => command,
        ProvisionCommand::Claim(ClaimCommand::Create {
            name,
            template,
            days,
            out,
        }) => return create_claim(config, json, &name, &template, days, out),
    };
    match command {
        TemplateCommand::Create { name, file } => put(config, json, &name, &file, false),
        TemplateCommand::Update { name, file } => put(config, json, &name, &file, true),
        TemplateCommand::Show { name } => {
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::GetProvisioningTemplate { name: name.clone() };
            let t = (|| Ok(call!(admin, request, Template)))()
                .with_context(|| format!("provision template show {name}"))?;
            if json {
                return print_json(&t);
            }
            eprintln!(
                "template {name}, {}",
                if t.enabled { "enabled" } else { "disabled" }
            );
            println!("{}", t.document.trim_end());
            Ok(())
        }
        TemplateCommand::List => {
            let mut admin = Admin::open(config)?;
            let templates = call!(admin, AdminRequest::ListProvisioningTemplates, Templates);
            if json {
                return print_json(&templates);
            }
            let rows: Vec<Vec<String>> = templates
                .iter()
                .map(|t| vec![t.name.clone(), t.enabled.to_string(), time(t.updated_ms)])
                .collect();
            print_table(&["NAME", "ENABLED", "UPDATED"], &rows);
            Ok(())
        }
        TemplateCommand::Delete { name } => {
            let mut admin = Admin::open(config)?;
            admin
                .call(AdminRequest::DeleteProvisioningTemplate { name: name.clone() })
                .with_context(|| format!("provision template delete {name}"))?;
            if json {
                return print_json(&serde_json::json!({ "deleted": name }));
            }
            println!("Deleted template {name}.");
            Ok(())
        }
    }
}

fn put(
    config: &Config,
    json: bool,
    name: &str,
    file: &std::path::Path,
    update: bool,
) -> anyhow::Result<()> {
    let verb = if update { "update" } else { "create" };
    let context = || format!("provision template {verb} {name}");
    let document = super::read_file(file, "template").with_context(context)?;
    let mut admin = Admin::open(config)?;
    let request = if update {
        AdminRequest::UpdateProvisioningTemplate {
            name: name.to_owned(),
            document,
        }
    } else {
        AdminRequest::CreateProvisioningTemplate {
            name: name.to_owned(),
            document,
        }
    };
    let t = (|| Ok(call!(admin, request, Template)))().with_context(context)?;
    if json {
        return print_json(&t);
    }
    println!(
        "{} template {name} ({}).",
        if update { "Updated" } else { "Created" },
        if t.enabled { "enabled" } else { "disabled" }
    );
    Ok(())
}

fn create_claim(
    config: &Config,
    json: bool,
    name: &str,
    template: &str,
    days: Option<u32>,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let context = || format!("provision claim create {name}");
    let mut admin = Admin::open(config)?;
    let request = AdminRequest::CreateClaim {
        name: name.to_owned(),
        template: template.to_owned(),
        validity_secs: days.map(|d| u64::from(d) * 86400),
    };
    let claim = (|| Ok(call!(admin, request, Claim)))().with_context(context)?;
    let dir = out.unwrap_or_else(|| config.data_dir.join("claims").join(name));
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let paths = claim
        .certificate
        .to_issued_cert()
        .write_bundle(&dir, name)
        .with_context(|| format!("writing the claim bundle into {}", dir.display()))
        .with_context(context)?;
    if json {
        // The private key is in the bundle, never on stdout.
        return print_json(&serde_json::json!({
            "name": name,
            "template": claim.template,
            "serial": claim.certificate.serial,
            "not_after_ms": claim.certificate.not_after_ms,
            "policy": claim.policy,
            "bundle": {
                "dir": dir,
                "certificate": paths.cert,
                "key": paths.key,
                "ca": paths.ca,
            },
        }));
    }
    println!("Created claim {name} for template {template}.");
    super::print_fields(&[
        ("certificate", claim.certificate.serial.clone()),
        ("valid until", time(claim.certificate.not_after_ms)),
        ("policy", claim.policy.clone()),
        ("bundle", dir.display().to_string()),
    ]);
    println!(
        "\nA device holding it connects with client id {name}, asks for its certificate on\n  $aws/certificates/create-from-csr/json\nand registers on\n  $aws/provisioning-templates/{template}/provision/json"
    );
    Ok(())
}
