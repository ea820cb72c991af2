//! `civitas policy`: AWS IoT policies — create and update from files,
//! inspect, attach to certificates, things and groups, and test what a
//! client may do.

use std::path::PathBuf;

use anyhow::Context;
use civitas_registry::{AdminRequest, PolicyTarget};
use clap::{Args, Subcommand};

use super::{Admin, call, or_dash, print_json, print_table, time};
use crate::config::Config;

#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: PolicyCommand,
}

/// Exactly one target.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct Target {
    /// A certificate, by serial.
    #[arg(long)]
    cert: Option<String>,
    /// A thing.
    #[arg(long)]
    thing: Option<String>,
    /// A thing group (reaches its members and its subgroups' members).
    #[arg(long)]
    group: Option<String>,
}

impl Target {
    fn key(self) -> String {
        let target = match (self.cert, self.thing, self.group) {
            (Some(c), _, _) => PolicyTarget::Certificate(c),
            (_, Some(t), _) => PolicyTarget::Thing(t),
            (_, _, Some(g)) => PolicyTarget::Group(g),
            // clap requires one of them.
            (None, None, None) => PolicyTarget::Thing(String::new()),
        };
        target.key()
    }
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Create a policy from an AWS IoT policy document.
    Create {
        name: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Add a new version from a file and make it the one in force.
    Update {
        name: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Print a policy's document (the version in force).
    Get { name: String },
    /// List policies.
    List,
    /// Delete a policy (refused while it is attached).
    Delete { name: String },
    /// Attach a policy.
    Attach {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Detach a policy.
    Detach {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Would this client be allowed? Prints the deciding statement.
    Test {
        /// The MQTT client id (a thing name binds the connection to it).
        #[arg(long)]
        client: String,
        /// `iot:Connect`, `iot:Publish`, `iot:Subscribe`, `iot:Receive`, ...
        #[arg(long)]
        action: String,
        /// Topic, topic filter, client id or thing name (or a full ARN).
        #[arg(long)]
        resource: String,
        /// The certificate (default: the thing's newest active one).
        #[arg(long)]
        cert: Option<String>,
    },
}

pub fn run(config: &Config, args: PolicyArgs) -> anyhow::Result<()> {
    let json = args.json;
    match args.command {
        PolicyCommand::Create { name, file } => {
            let context = || format!("policy create {name}");
            let document = super::read_file(&file, "policy document").with_context(context)?;
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::CreatePolicy {
                name: name.clone(),
                document,
            };
            let policy = (|| Ok(call!(admin, request, Policy)))().with_context(context)?;
            if json {
                return print_json(&policy);
            }
            println!(
                "Created policy {name} (version {}).",
                policy.default_version
            );
            for w in &policy.warnings {
                eprintln!("warning: {w}");
            }
            Ok(())
        }
        PolicyCommand::Update { name, file } => {
            let context = || format!("policy update {name}");
            let document = super::read_file(&file, "policy document").with_context(context)?;
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::CreatePolicyVersion {
                name: name.clone(),
                document,
                set_default: true,
            };
            let policy = (|| Ok(call!(admin, request, Policy)))().with_context(context)?;
            if json {
                return print_json(&policy);
            }
            println!(
                "Policy {name} is now at version {}.",
                policy.default_version
            );
            for w in &policy.warnings {
                eprintln!("warning: {w}");
            }
            Ok(())
        }
        PolicyCommand::Get { name } => {
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::GetPolicy { name: name.clone() };
            let policy = (|| Ok(call!(admin, request, Policy)))()
                .with_context(|| format!("policy get {name}"))?;
            if json {
                return print_json(&policy);
            }
            let current = policy
                .versions
                .iter()
                .find(|v| v.is_default)
                .map(|v| v.document.as_str())
                .unwrap_or_default();
            eprintln!(
                "policy {name}, version {} of {}; attached to: {}",
                policy.default_version,
                policy.versions.len(),
                or_dash(Some(&policy.targets.join(", ")))
            );
            println!("{}", current.trim_end());
            Ok(())
        }
        PolicyCommand::List => {
            let mut admin = Admin::open(config)?;
            let policies = call!(admin, AdminRequest::ListPolicies, Policies);
            if json {
                return print_json(&policies);
            }
            let rows: Vec<Vec<String>> = policies
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.default_version.to_string(),
                        p.targets.len().to_string(),
                        time(p.updated_ms),
                    ]
                })
                .collect();
            print_table(&["NAME", "VERSION", "ATTACHMENTS", "UPDATED"], &rows);
            Ok(())
        }
        PolicyCommand::Delete { name } => {
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::DeletePolicy { name: name.clone() };
            admin
                .call(request)
                .with_context(|| format!("policy delete {name}"))?;
            if json {
                return print_json(&serde_json::json!({ "deleted": name }));
            }
            println!("Deleted policy {name}.");
            Ok(())
        }
        PolicyCommand::Attach { name, target } => {
            let target = target.key();
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::AttachPolicy {
                name: name.clone(),
                target: target.clone(),
            };
            let changed = (|| Ok(call!(admin, request, Changed)))()
                .with_context(|| format!("policy attach {name} {target}"))?;
            if json {
                return print_json(&serde_json::json!({ "changed": changed }));
            }
            if changed {
                println!("Attached {name} to {target}.");
            } else {
                println!("{name} was already attached to {target}.");
            }
            Ok(())
        }
        PolicyCommand::Detach { name, target } => {
            let target = target.key();
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::DetachPolicy {
                name: name.clone(),
                target: target.clone(),
            };
            let changed = (|| Ok(call!(admin, request, Changed)))()
                .with_context(|| format!("policy detach {name} {target}"))?;
            if json {
                return print_json(&serde_json::json!({ "changed": changed }));
            }
            if changed {
                println!("Detached {name} from {target}.");
            } else {
                println!("{name} was not attached to {target}.");
            }
            Ok(())
        }
        PolicyCommand::Test {
            client,
            action,
            resource,
            cert,
        } => {
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::TestPolicy {
                client_id: client.clone(),
                action: action.clone(),
                resource: resource.clone(),
                cert,
            };
            let test = (|| Ok(call!(admin, request, PolicyTest)))()
                .with_context(|| format!("policy test {client} {action} {resource}"))?;
            if json {
                return print_json(&test);
            }
            println!(
                "{}: {} {} on {}",
                if test.allowed { "allowed" } else { "denied" },
                test.client_id,
                test.action,
                test.resource
            );
            println!("  {}", test.explanation);
            println!(
                "  certificate {}{}; policies evaluated: {}",
                test.certificate,
                test.thing
                    .as_deref()
                    .map(|t| format!(", bound to thing {t}"))
                    .unwrap_or_default(),
                or_dash(Some(&test.policies.join(", ")))
            );
            Ok(())
        }
    }
}
