//! `civitas type`: thing types.

use anyhow::Context;
use civitas_registry::AdminRequest;
use clap::{Args, Subcommand};

use super::{Admin, call, or_dash, print_json, print_table, time};
use crate::config::Config;

#[derive(Args, Debug)]
pub struct TypeArgs {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: TypeCommand,
}

#[derive(Subcommand, Debug)]
enum TypeCommand {
    /// Create a thing type.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List thing types.
    List,
    /// Deprecate a type (no new things may use it); --undo reverses it.
    Deprecate {
        name: String,
        #[arg(long)]
        undo: bool,
    },
    /// Delete a type no thing uses.
    Delete { name: String },
}

pub fn run(config: &Config, args: TypeArgs) -> anyhow::Result<()> {
    let json = args.json;
    let mut admin = Admin::open(config)?;
    match args.command {
        TypeCommand::Create { name, description } => {
            let request = AdminRequest::CreateThingType {
                name: name.clone(),
                description,
            };
            let t = (|| Ok(call!(admin, request, ThingType)))()
                .with_context(|| format!("type create {name}"))?;
            if json {
                return print_json(&t);
            }
            println!("Created thing type {name}.");
            Ok(())
        }
        TypeCommand::List => {
            let types = call!(admin, AdminRequest::ListThingTypes, ThingTypes);
            if json {
                return print_json(&types);
            }
            let rows: Vec<Vec<String>> = types
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.deprecated.to_string(),
                        or_dash(t.description.as_deref()),
                        time(t.created_ms),
                    ]
                })
                .collect();
            print_table(&["NAME", "DEPRECATED", "DESCRIPTION", "CREATED"], &rows);
            Ok(())
        }
        TypeCommand::Deprecate { name, undo } => {
            let request = AdminRequest::DeprecateThingType {
                name: name.clone(),
                deprecated: !undo,
            };
            let t = (|| Ok(call!(admin, request, ThingType)))()
                .with_context(|| format!("type deprecate {name}"))?;
            if json {
                return print_json(&t);
            }
            if t.deprecated {
                println!("Thing type {name} is deprecated.");
            } else {
                println!("Thing type {name} is no longer deprecated.");
            }
            Ok(())
        }
        TypeCommand::Delete { name } => {
            admin
                .call(AdminRequest::DeleteThingType { name: name.clone() })
                .with_context(|| format!("type delete {name}"))?;
            if json {
                return print_json(&serde_json::json!({ "deleted": name }));
            }
            println!("Deleted thing type {name}.");
            Ok(())
        }
    }
}
