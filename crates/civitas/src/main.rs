//! The civitas binary: configuration, wiring and subcommands.

mod admin;
mod audit_cmd;
mod cli;
mod command_audit;
mod config;
mod monitor_wiring;
mod password;
mod registry_wiring;
mod rules_wiring;
mod security_wiring;
mod telemetry_wiring;
mod up;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser, Debug)]
#[command(
    name = "civitas",
    version,
    about = "A secure IoT platform for smart cities"
)]
struct Cli {
    /// Configuration file (default: ./civitas.toml when present).
    #[arg(long, global = true, env = "CIVITAS_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir`).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Override any configuration field: `--set broker.limits.max_inflight=50`.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    sets: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start civitas: on first run create the data directory, the CA, the
    /// server certificate and example device bundles; then serve.
    Up,
    /// Measure civitas beside Mosquitto: throughput, latency, connections, memory.
    Bench(civitas_bench::BenchArgs),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Passwords for `auth = "password"` listeners.
    #[command(subcommand)]
    Password(password::PasswordCommand),
    /// The tamper-evident audit log: verify, tail, query, export a checkpoint.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Devices: register with certificate and policy, list, show, revoke, delete.
    Device(cli::device::DeviceArgs),
    /// Certificates: list, show, renew, activate, deactivate, revoke.
    Cert(cli::cert::CertArgs),
    /// AWS IoT policies: create, update, get, list, attach, detach, test.
    Policy(cli::policy::PolicyArgs),
    /// Thing groups, which nest and carry policies to their members.
    Group(cli::group::GroupArgs),
    /// Thing types.
    Type(cli::thing_type::TypeArgs),
    /// The certificate authority's root key.
    Ca(cli::ca::CaArgs),
    /// Fleet-provisioning templates.
    Provision(cli::provision::ProvisionArgs),
    /// One-time enrollment tokens.
    Enroll(cli::enroll::EnrollArgs),
    /// Rules engine rules (AWS IoT topic rules): create, list, get, enable,
    /// disable, delete, and test against a sample message.
    Rule(cli::rule::RuleArgs),
    /// The running server's metrics (counters, gauges, latency histograms)
    /// and raised alarms.
    Metrics(monitor_wiring::MetricsArgs),
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the configuration and print it with every override applied.
    Check,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("civitas: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let path = match &cli.config {
        Some(p) => Some(p.clone()),
        None => {
            let default = PathBuf::from("civitas.toml");
            default.exists().then_some(default)
        }
    };
    let mut sets = cli.sets.clone();
    if let Some(dir) = &cli.data_dir {
        sets.push(format!("data_dir={}", toml_string(&dir.to_string_lossy())));
    }
    let config = Config::load(path.as_deref(), std::env::vars(), &sets)?;
    match cli.command {
        Command::Up => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(up::up(config))
        }
        Command::Bench(args) => civitas_bench::run(args).map(|_| ()).map_err(Into::into),
        Command::Config(ConfigCommand::Check) => {
            let text = toml::to_string_pretty(&config).context("printing the configuration")?;
            println!("{text}");
            eprintln!("configuration is valid");
            Ok(())
        }
        Command::Password(command) => password::run(&config, command),
        Command::Audit(command) => audit_cmd::run(&config, command),
        Command::Device(args) => cli::device::run(&config, args),
        Command::Cert(args) => cli::cert::run(&config, args),
        Command::Policy(args) => cli::policy::run(&config, args),
        Command::Group(args) => cli::group::run(&config, args),
        Command::Type(args) => cli::thing_type::run(&config, args),
        Command::Ca(args) => cli::ca::run(&config, args),
        Command::Provision(args) => cli::provision::run(&config, args),
        Command::Enroll(args) => cli::enroll::run(&config, args),
        Command::Rule(args) => cli::rule::run(&config, args),
        Command::Metrics(args) => monitor_wiring::run(&config, args),
    }
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
