//! `civitas provision`: fleet-provisioning templates (see
//! `civitas_registry::TemplateDocument` for the document form).

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
    let ProvisionCommand::Template(command) = args.command;
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
