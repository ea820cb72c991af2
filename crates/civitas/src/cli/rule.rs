//! `civitas rule`: rules engine rules (AWS IoT topic rules) — create and
//! replace from TopicRulePayload files, list, show, enable, disable,
//! delete, and test one against a sample message without side effects.
//!
//! Like the registry commands, each goes to the running server (the admin
//! socket's `rules` service) or, with no server, to the store opened here.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use civitas_monitor::Monitor;
use civitas_registry::{ADMIN_SOCKET_FILE, AdminClient, AdminRequest, AdminResponse};
use civitas_rules_runtime::{
    ADMIN_SERVICE, RuleCatalog, RuleInfo, RuleRequest, RuleResponse, RulesEngine, TestReport,
};
use civitas_shadow::ShadowService;
use civitas_store::{Store, StoreOptions};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{or_dash, print_fields, print_json, print_table, time};
use crate::config::Config;

#[derive(Args, Debug)]
pub struct RuleArgs {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: RuleCommand,
}

#[derive(Subcommand, Debug)]
enum RuleCommand {
    /// Create a rule from a TopicRulePayload document (JSON).
    Create {
        /// Letters, digits and underscores, as AWS allows.
        name: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Replace a rule's document.
    Replace {
        name: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// List rules.
    List,
    /// Show a rule and its document.
    Get { name: String },
    /// Enable a rule: it runs on the next message.
    Enable { name: String },
    /// Disable a rule: it stops at once and is kept.
    Disable { name: String },
    /// Delete a rule.
    Delete { name: String },
    /// Run a rule (stored, or from --file) on a sample message and print
    /// what each action would receive. Nothing is published or stored.
    Test {
        /// A stored rule; with --file, the name to test the document as.
        name: Option<String>,
        /// A TopicRulePayload document to test instead of a stored rule.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The topic the sample message arrives on.
        #[arg(long)]
        topic: String,
        /// The sample payload (usually JSON).
        #[arg(long)]
        payload: String,
        /// The publishing client, for clientid().
        #[arg(long)]
        client_id: Option<String>,
    },
}

/// Where rule requests go.
enum Rules {
    /// The running server's admin socket.
    Remote(AdminClient),
    /// No server: the rules in the store opened here (none run).
    Local(Box<RulesEngine>),
}

impl Rules {
    fn open(config: &Config) -> anyhow::Result<Rules> {
        let data_dir = &config.data_dir;
        let socket = data_dir.join(ADMIN_SOCKET_FILE);
        if let Some(client) = AdminClient::connect(&socket)? {
            return Ok(Rules::Remote(client));
        }
        crate::up::create_private_dir(data_dir)?;
        let db = data_dir.join("civitas.redb");
        let store = Store::open(&db, StoreOptions::default()).with_context(|| {
            format!(
                "opening {} (no civitas answered on {})",
                db.display(),
                socket.display()
            )
        })?;
        // Shadows, for get_thing_shadow() in `rule test`.
        let shadows = ShadowService::new(store.clone(), civitas_shadow::SystemClock);
        let catalog = RuleCatalog::open(store)?;
        let deps = crate::rules_wiring::deps(&shadows, &Monitor::new());
        Ok(Rules::Local(Box::new(RulesEngine::offline(catalog, deps))))
    }

    fn call(&mut self, request: RuleRequest) -> anyhow::Result<RuleResponse> {
        let response = match self {
            Rules::Remote(client) => {
                let request = AdminRequest::Service {
                    service: ADMIN_SERVICE.into(),
                    request: serde_json::to_value(&request)?,
                };
                match client.call(&request)? {
                    AdminResponse::Service(answer) => serde_json::from_value(answer)
                        .context("unreadable answer from the rules engine")?,
                    AdminResponse::Error(problem) => bail!(problem.message),
                    other => bail!("unexpected response from civitas: {other:?}"),
                }
            }
            Rules::Local(engine) => engine.execute(request),
        };
        match response {
            RuleResponse::Error { message, .. } => Err(anyhow!(message)),
            other => Ok(other),
        }
    }

    fn rule(&mut self, request: RuleRequest) -> anyhow::Result<RuleInfo> {
        match self.call(request)? {
            RuleResponse::Rule(info) => Ok(*info),
            other => bail!("unexpected response from civitas: {other:?}"),
        }
    }
}

fn document(file: &Path) -> anyhow::Result<Value> {
    let text = super::read_file(file, "rule document")?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

pub fn run(config: &Config, args: RuleArgs) -> anyhow::Result<()> {
    let json = args.json;
    let mut rules = Rules::open(config)?;
    let show = |info: &RuleInfo, done: &str| -> anyhow::Result<()> {
        if json {
            return print_json(info);
        }
        println!("Rule {} {done}.", info.name);
        print_rule(info);
        Ok(())
    };
    match args.command {
        RuleCommand::Create { name, file } => {
            let document = document(&file)?;
            let info = rules
                .rule(RuleRequest::Create { name, document })
                .context("rule create")?;
            show(&info, "created")
        }
        RuleCommand::Replace { name, file } => {
            let document = document(&file)?;
            let info = rules
                .rule(RuleRequest::Replace { name, document })
                .context("rule replace")?;
            show(&info, "replaced")
        }
        RuleCommand::Enable { name } => show(&rules.rule(RuleRequest::Enable { name })?, "enabled"),
        RuleCommand::Disable { name } => {
            show(&rules.rule(RuleRequest::Disable { name })?, "disabled")
        }
        RuleCommand::Get { name } => {
            let info = rules.rule(RuleRequest::Get { name })?;
            if json {
                return print_json(&info);
            }
            print_rule(&info);
            println!();
            println!("{}", serde_json::to_string_pretty(&info.document)?);
            Ok(())
        }
        RuleCommand::List => {
            let RuleResponse::Rules(list) = rules.call(RuleRequest::List)? else {
                bail!("unexpected response from civitas");
            };
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        if r.enabled { "yes" } else { "no" }.to_owned(),
                        or_dash(Some(&r.topic_filter)),
                        r.actions.join(","),
                        time(r.updated_at_ms),
                        or_dash(r.problem.as_deref()),
                    ]
                })
                .collect();
            print_table(
                &["NAME", "ENABLED", "FROM", "ACTIONS", "UPDATED", "PROBLEM"],
                &rows,
            );
            Ok(())
        }
        RuleCommand::Delete { name } => {
            rules.call(RuleRequest::Delete { name: name.clone() })?;
            if json {
                return print_json(&serde_json::json!({"deleted": name}));
            }
            println!("Rule {name} deleted.");
            Ok(())
        }
        RuleCommand::Test {
            name,
            file,
            topic,
            payload,
            client_id,
        } => {
            let document = file.as_deref().map(document).transpose()?;
            if name.is_none() && document.is_none() {
                bail!("rule test: name a stored rule or give --file");
            }
            let RuleResponse::Test(report) = rules.call(RuleRequest::Test {
                name,
                document,
                topic,
                payload,
                client_id,
            })?
            else {
                bail!("unexpected response from civitas");
            };
            if json {
                return print_json(&report);
            }
            print_report(&report)
        }
    }
}

fn print_rule(info: &RuleInfo) {
    let mut fields = vec![
        ("name", info.name.clone()),
        (
            "enabled",
            if info.enabled { "yes" } else { "no" }.to_owned(),
        ),
        ("sql", info.document.sql.clone()),
        ("from", or_dash(Some(&info.topic_filter))),
        ("description", or_dash(info.document.description.as_deref())),
        ("actions", or_dash(Some(&info.actions.join(", ")))),
        ("error action", or_dash(info.error_action.as_deref())),
        ("created", time(info.created_at_ms)),
        ("updated", time(info.updated_at_ms)),
    ];
    if let Some(problem) = &info.problem {
        fields.push(("problem", problem.clone()));
    }
    print_fields(&fields);
}

fn print_report(report: &TestReport) -> anyhow::Result<()> {
    let matches = if report.topic_matches {
        "reaches the rule"
    } else {
        "does not reach the rule (its FROM filter does not match)"
    };
    let mut fields = vec![
        ("rule", report.rule.clone()),
        ("topic", format!("{} {matches}", report.topic)),
        (
            "where",
            if report.passed {
                "passed"
            } else {
                "not passed: no action runs"
            }
            .to_owned(),
        ),
    ];
    if let Some(output) = &report.output {
        fields.push(("output", serde_json::to_string(output)?));
    }
    if let Some(error) = &report.error {
        fields.push(("error", error.clone()));
    }
    print_fields(&fields);
    let mut rows = Vec::new();
    let receives = |p: &civitas_rules_runtime::ActionPreview| -> anyhow::Result<String> {
        Ok(match (&p.invocation, &p.error) {
            (_, Some(e)) => format!("fails: {e}"),
            (Some(Value::Object(map)), None) => {
                let mut map = map.clone();
                map.remove("action");
                serde_json::to_string(&map)?
            }
            (other, None) => serde_json::to_string(other)?,
        })
    };
    for (i, p) in report.actions.iter().enumerate() {
        rows.push(vec![i.to_string(), p.action.clone(), receives(p)?]);
    }
    if let Some(p) = &report.error_action {
        rows.push(vec!["error".into(), p.action.clone(), receives(p)?]);
    }
    if !rows.is_empty() {
        println!();
        print_table(&["#", "ACTION", "RECEIVES"], &rows);
    }
    Ok(())
}
