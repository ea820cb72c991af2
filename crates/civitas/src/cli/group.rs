//! `civitas group`: thing groups. Policies attached to a group reach its
//! member things and the members of every group nested below it.

use anyhow::Context;
use civitas_registry::{AdminRequest, NewThingGroup};
use clap::{Args, Subcommand};

use super::{Admin, call, key_values, or_dash, print_fields, print_json, print_table, time};
use crate::config::Config;

#[derive(Args, Debug)]
pub struct GroupArgs {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Subcommand, Debug)]
enum GroupCommand {
    /// Create a group, nested under --parent if given.
    Create {
        name: String,
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// A group attribute, KEY=VALUE (repeatable).
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attrs: Vec<String>,
    },
    /// List groups.
    List,
    /// A group with its ancestors, children, members and policies.
    Show { name: String },
    /// Move a group under another parent (or to the top without --parent).
    Move {
        name: String,
        #[arg(long)]
        parent: Option<String>,
    },
    /// Delete a group without subgroups; its members leave it.
    Delete { name: String },
    /// Add a thing to a group.
    AddThing { group: String, thing: String },
    /// Remove a thing from a group.
    RemoveThing { group: String, thing: String },
}

pub fn run(config: &Config, args: GroupArgs) -> anyhow::Result<()> {
    let json = args.json;
    match args.command {
        GroupCommand::Create {
            name,
            parent,
            description,
            attrs,
        } => {
            let context = || format!("group create {name}");
            let group = NewThingGroup {
                name: name.clone(),
                parent,
                description,
                attributes: key_values(&attrs, "--attr").with_context(context)?,
            };
            let mut admin = Admin::open(config)?;
            let g = (|| {
                Ok(call!(
                    admin,
                    AdminRequest::CreateThingGroup { group },
                    ThingGroup
                ))
            })()
            .with_context(context)?;
            if json {
                return print_json(&g);
            }
            match &g.parent {
                Some(p) => println!("Created group {name} under {p}."),
                None => println!("Created group {name}."),
            }
            Ok(())
        }
        GroupCommand::List => {
            let mut admin = Admin::open(config)?;
            let groups = call!(admin, AdminRequest::ListThingGroups, ThingGroups);
            if json {
                return print_json(&groups);
            }
            let rows: Vec<Vec<String>> = groups
                .iter()
                .map(|g| {
                    vec![
                        g.name.clone(),
                        or_dash(g.parent.as_deref()),
                        or_dash(g.description.as_deref()),
                        time(g.created_ms),
                    ]
                })
                .collect();
            print_table(&["NAME", "PARENT", "DESCRIPTION", "CREATED"], &rows);
            Ok(())
        }
        GroupCommand::Show { name } => {
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::DescribeThingGroup { name: name.clone() };
            let d = (|| Ok(call!(admin, request, ThingGroupDescription)))()
                .with_context(|| format!("group show {name}"))?;
            if json {
                return print_json(&d);
            }
            print_fields(&[
                ("name", d.group.name.clone()),
                ("ancestors", or_dash(Some(&d.ancestors.join(" < ")))),
                ("children", or_dash(Some(&d.children.join(", ")))),
                ("things", or_dash(Some(&d.things.join(", ")))),
                ("policies", or_dash(Some(&d.policies.join(", ")))),
                ("description", or_dash(d.group.description.as_deref())),
            ]);
            Ok(())
        }
        GroupCommand::Move { name, parent } => {
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::SetThingGroupParent {
                name: name.clone(),
                parent: parent.clone(),
            };
            let g = (|| Ok(call!(admin, request, ThingGroup)))()
                .with_context(|| format!("group move {name}"))?;
            if json {
                return print_json(&g);
            }
            match parent {
                Some(p) => println!("{name} is now under {p}."),
                None => println!("{name} is now a top-level group."),
            }
            Ok(())
        }
        GroupCommand::Delete { name } => {
            let mut admin = Admin::open(config)?;
            admin
                .call(AdminRequest::DeleteThingGroup { name: name.clone() })
                .with_context(|| format!("group delete {name}"))?;
            if json {
                return print_json(&serde_json::json!({ "deleted": name }));
            }
            println!("Deleted group {name}.");
            Ok(())
        }
        GroupCommand::AddThing { group, thing } => {
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::AddThingToGroup {
                thing: thing.clone(),
                group: group.clone(),
            };
            let t = (|| Ok(call!(admin, request, Thing)))()
                .with_context(|| format!("group add-thing {group} {thing}"))?;
            if json {
                return print_json(&t);
            }
            println!("{thing} is in {group}.");
            Ok(())
        }
        GroupCommand::RemoveThing { group, thing } => {
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::RemoveThingFromGroup {
                thing: thing.clone(),
                group: group.clone(),
            };
            let t = (|| Ok(call!(admin, request, Thing)))()
                .with_context(|| format!("group remove-thing {group} {thing}"))?;
            if json {
                return print_json(&t);
            }
            println!("{thing} is no longer in {group}.");
            Ok(())
        }
    }
}
