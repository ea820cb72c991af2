//! `civitas bench`: measures civitas beside Eclipse Mosquitto on the same
//! machine, with the same certificates and the same load.
//!
//! The bench starts both brokers itself (fresh for every run, alternating,
//! pinned to one CPU while the generator runs on another), drives them
//! with its own MQTT client over mutual TLS (the civitas codec on
//! tokio-rustls, one certificate per client), reads their CPU time and
//! memory from /proc, and writes a Markdown table, a JSON file and an SVG
//! chart of civitas ÷ Mosquitto ratios per scenario.

mod client;
mod clock;
mod error;
mod names;
mod os;
mod pki;
mod procfs;
mod report;
mod runner;
mod scenario;
mod svg;
mod system;

use std::path::PathBuf;

pub use error::BenchError;
pub use report::{Report, Row};
pub use scenario::Scenario;

/// Command-line arguments of `civitas bench`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BenchArgs {
    /// Small scale and one repetition: a smoke test (under two minutes)
    /// that every scenario runs and delivers every message. Asserts no
    /// timing.
    #[arg(long)]
    pub quick: bool,
    /// Run only this scenario (repeatable): fan-in, surge,
    /// reconnect-storm, command-unicast, broadcast, ceiling, pipeline.
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Results directory (default: bench-results/<UTC timestamp>).
    /// Certificates are cached beside it, in bench-pki/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Repetitions per broker and scenario (default: 3; 1 with --quick).
    #[arg(long, value_name = "N")]
    pub reps: Option<usize>,
    /// Only this broker (repeatable): civitas or mosquitto. Default: both.
    #[arg(long = "broker", value_name = "NAME")]
    pub brokers: Vec<String>,
    /// The civitas binary to measure (default: this executable when it is
    /// a release build, otherwise target/release/civitas, built first).
    #[arg(long, value_name = "PATH")]
    pub civitas_bin: Option<PathBuf>,
}

/// Run the bench; the report is also written to the results directory.
/// Fails when any run failed (a lost message included), after writing
/// the report.
pub fn run(args: BenchArgs) -> Result<Report, BenchError> {
    runner::run(args)
}
