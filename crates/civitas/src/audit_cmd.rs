//! `civitas audit`: verify the tamper-evident audit log (`DATA_DIR/audit/
//! audit.log`), read it back, and export a signed checkpoint for keeping
//! off-site. These only read the log, so they work while civitas runs.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use civitas_audit::{ExportedCheckpoint, Outcome, Query, Record, Timestamp, log_path};
use clap::{Args, Subcommand};

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain and every signed checkpoint. Exits 1 on any
    /// problem, naming the first broken record by seq and line.
    Verify {
        /// A checkpoint exported earlier: the log must still hold, unchanged,
        /// every record it vouches for.
        #[arg(long, value_name = "FILE")]
        trusted: Option<PathBuf>,
    },
    /// Show the last records.
    Tail {
        /// How many.
        #[arg(short = 'n', default_value_t = 20)]
        n: usize,
        /// Print each record as stored (one JSON object per line).
        #[arg(long)]
        json: bool,
    },
    /// Show the records that match every filter given.
    Query(QueryArgs),
    /// Verify the log, then print the latest signed checkpoint as JSON for
    /// keeping off-site (see `verify --trusted`).
    ExportCheckpoint {
        /// Write it to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// Records at or after this time: RFC 3339 (2024-05-01T08:00:00Z) or a
    /// date (2024-05-01, midnight UTC).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    since: Option<Timestamp>,
    /// Records before this time: RFC 3339 or a date.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    until: Option<Timestamp>,
    /// Records by this actor, e.g. operator:alice or device:lamp-1.
    #[arg(long)]
    actor: Option<String>,
    /// Records with this action, or under a prefix: device.*
    #[arg(long)]
    action: Option<String>,
    /// success, failure or denied.
    #[arg(long, value_parser = parse_outcome)]
    outcome: Option<Outcome>,
    /// At most this many records.
    #[arg(long)]
    limit: Option<usize>,
    /// Print each record as stored (one JSON object per line).
    #[arg(long)]
    json: bool,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    let is_date = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
    if is_date {
        Timestamp::parse(&format!("{s}T00:00:00Z"))
    } else {
        Timestamp::parse(s)
    }
}

fn parse_outcome(s: &str) -> Result<Outcome, String> {
    s.parse()
}

pub fn run(config: &Config, command: AuditCommand) -> anyhow::Result<()> {
    let path = log_path(&config.data_dir);
    if !path.exists() {
        bail!("there is no audit log at {}", path.display());
    }
    match command {
        AuditCommand::Verify { trusted } => verify(&path, trusted.as_deref()),
        AuditCommand::Tail { n, json } => {
            let records = civitas_audit::tail(&path, n)?;
            print_records(records.into_iter().map(Ok), json)
        }
        AuditCommand::Query(q) => {
            let query = Query {
                since: q.since,
                until: q.until,
                actor: q.actor,
                action: q.action,
                outcome: q.outcome,
                limit: q.limit,
            };
            print_records(civitas_audit::query(&path, query)?, q.json)
        }
        AuditCommand::ExportCheckpoint { out } => export(&path, out.as_deref()),
    }
}

fn verify(path: &Path, trusted: Option<&Path>) -> anyhow::Result<()> {
    let trusted = match trusted {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            Some(
                ExportedCheckpoint::from_json(&text)
                    .with_context(|| format!("reading {}", file.display()))?,
            )
        }
        None => None,
    };
    let report = civitas_audit::verify(path, trusted.as_ref())?;
    if !report.is_ok() {
        bail!("audit log verification FAILED: {report}");
    }
    println!("audit log OK: {report}");
    Ok(())
}

fn export(path: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let report = civitas_audit::verify(path, None)?;
    if !report.is_ok() {
        bail!("refusing to export a checkpoint of a log that fails verification: {report}");
    }
    let Some((_, checkpoint)) = &report.last_checkpoint else {
        bail!(
            "{} has no checkpoint yet; civitas writes one every 1000 records or 60 seconds, and when it stops",
            path.display()
        );
    };
    let json = checkpoint.to_json();
    match out {
        Some(file) => {
            std::fs::write(file, &json).with_context(|| format!("writing {}", file.display()))?
        }
        None => ignore_broken_pipe(io::stdout().lock().write_all(json.as_bytes()))?,
    }
    eprintln!(
        "Exported the checkpoint through seq {} (key {}); keep it where this host cannot write.",
        checkpoint.head_seq, checkpoint.key_id
    );
    let unsigned = report.unsigned_records();
    if unsigned > 0 {
        eprintln!("{unsigned} later records are not signed yet and not covered by it.");
    }
    Ok(())
}

fn print_records(
    records: impl Iterator<Item = Result<Record, civitas_audit::AuditError>>,
    json: bool,
) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    let result = (|| -> anyhow::Result<()> {
        if !json {
            writeln!(
                out,
                "{:>8}  {:<24}  {:<20}  {:<18}  {:<20}  {:<7}  DETAILS",
                "SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME"
            )?;
        }
        for record in records {
            let r = record?;
            if json {
                writeln!(out, "{}", r.to_line()?)?;
            } else {
                writeln!(
                    out,
                    "{:>8}  {:<24}  {:<20}  {:<18}  {:<20}  {:<7}  {}",
                    r.seq,
                    r.time,
                    r.actor,
                    r.action,
                    r.target,
                    r.outcome,
                    r.details_json()?
                )?;
            }
        }
        out.flush()?;
        Ok(())
    })();
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

/// A reader that went away (`| head`) is not an error.
fn ignore_broken_pipe(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
