//! The bench's course: prepare certificates and binaries, run every
//! selected scenario on both brokers in alternation, show progress, and
//! write the results.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{BenchError, Result};
use crate::names;
use crate::os;
use crate::pki::BenchPki;
use crate::report::{self, Machine, Report, RunRecord};
use crate::scenario::{Ctx, Scale, Scenario};
use crate::system::{BrokerKind, Systems};
use crate::{BenchArgs, svg};

const BROKER_CPU: usize = 0;
const GENERATOR_CPU: usize = 1;

pub fn run(args: BenchArgs) -> Result<Report> {
    let scenarios = select_scenarios(&args.scenarios)?;
    let brokers = select_brokers(&args.brokers)?;
    let scale = if args.quick {
        Scale::quick()
    } else {
        Scale::full()
    };
    let reps = args.reps.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let cpus = os::cpus();
    let pinned = cpus >= 2;

    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]-[hour][minute][second]"
            ))
            .unwrap_or_else(|_| "latest".into());
        PathBuf::from("bench-results").join(stamp)
    });
    std::fs::create_dir_all(&out).map_err(|e| BenchError::io(out.display().to_string(), e))?;
    let cache = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("bench-pki");

    let nofile = os::raise_nofile_limit()?;
    let needed = scenarios
        .iter()
        .map(|s| s.devices(&scale))
        .max()
        .unwrap_or(0);
    if (nofile as usize) < needed + 200 {
        return Err(BenchError::Usage(format!(
            "the open-files limit is {nofile}, too low for {needed} connections; raise the hard limit (ulimit -Hn)"
        )));
    }
    let civitas_bin = civitas_binary(&args)?;
    let mosquitto_bin = find_program("mosquitto").ok_or_else(|| {
        BenchError::Usage("mosquitto not found; install it with scripts/setup-test-deps".into())
    })?;
    let mosquitto_version = mosquitto_version(&mosquitto_bin);
    if cfg!(debug_assertions) {
        eprintln!("bench: warning: the generator is a debug build; use --release for figures");
    }
    if pinned {
        os::pin_current_thread(GENERATOR_CPU)?;
    } else {
        eprintln!("bench: warning: fewer than 2 CPUs; broker and generator share one");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::io("starting the async runtime", e))?;

    let started = Instant::now();
    eprintln!(
        "bench: {} scenario(s) x {reps} repetition(s) x {} broker(s), {} scale; results in {}",
        scenarios.len(),
        brokers.len(),
        if scale.quick { "quick" } else { "full" },
        out.display()
    );
    let pki = Arc::new(BenchPki::open(&cache)?);
    let device_names: Vec<String> = (0..needed).map(names::device).collect();
    let devices = pki.identities(&device_names)?;
    let fixed: HashMap<String, _> = pki
        .identities(&names::fixed())?
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    let probe = fixed
        .get(names::PROBE)
        .cloned()
        .ok_or_else(|| BenchError::Usage("no probe identity".into()))?;
    eprintln!(
        "bench: {} client certificates ready ({:.1}s)",
        devices.len() + fixed.len(),
        started.elapsed().as_secs_f64()
    );
    let systems = Systems {
        civitas_bin,
        mosquitto_bin,
        pki,
        logs: out.join("logs"),
        probe,
        broker_cpu: pinned.then_some(BROKER_CPU),
    };

    let mut runs: Vec<RunRecord> = Vec::new();
    runtime.block_on(async {
        for &scenario in &scenarios {
            for rep in 0..reps {
                // Alternate which broker goes first, so neither always
                // runs on a machine the other just warmed or loaded.
                let mut order = brokers.clone();
                if rep % 2 == 1 {
                    order.reverse();
                }
                if scenario.civitas_only() {
                    order.retain(|k| *k == BrokerKind::Civitas);
                }
                for kind in order {
                    let record = one_run(
                        &systems, scenario, rep, reps, kind, &scale, &devices, &fixed, started,
                    )
                    .await;
                    runs.push(record);
                }
            }
        }
    });

    let listed: Vec<report::Listed> = scenarios
        .iter()
        .map(|s| report::Listed {
            name: s.name(),
            civitas_only: s.civitas_only(),
        })
        .collect();
    let report = Report {
        generated: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        command: command_line(),
        machine: Machine::describe(cpus, mosquitto_version, pinned),
        scale,
        reps,
        rows: report::aggregate(&listed, &runs),
        runs,
    };
    write_results(&out, &report)?;
    let failed = report.runs.iter().filter(|r| r.error.is_some()).count();
    eprintln!(
        "bench: done in {:.0}s; results in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    if failed > 0 {
        return Err(BenchError::RunsFailed { failed });
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn one_run(
    systems: &Systems,
    scenario: Scenario,
    rep: usize,
    reps: usize,
    kind: BrokerKind,
    scale: &Scale,
    devices: &[crate::pki::Identity],
    fixed: &HashMap<String, crate::pki::Identity>,
    started: Instant,
) -> RunRecord {
    let label = format!("{} {}/{reps} {}", scenario.name(), rep + 1, kind.name());
    progress(started, &format!("{label} ..."));
    let t0 = Instant::now();
    let file_label = format!("{}-{}-{}", scenario.name(), rep + 1, kind.name());
    let result = async {
        let mut broker = systems.start(kind, &file_label).await?;
        let tls = probe_tls(&broker, fixed).await?;
        let outcome = {
            let mut ctx = Ctx {
                broker: &mut broker,
                devices,
                fixed,
                scale,
                scenario,
            };
            tokio::time::timeout(scenario.budget(scale), scenario.run(&mut ctx))
                .await
                .unwrap_or_else(|_| {
                    Err(BenchError::Timeout(format!(
                        "{} did not finish within {:?}",
                        scenario.name(),
                        scenario.budget(scale)
                    )))
                })
        };
        let stopped = broker.stop().await;
        let mut output = outcome?;
        stopped?;
        output.notes.push(format!("TLS as negotiated: {tls}"));
        Ok::<_, BenchError>(output)
    }
    .await;
    let secs = t0.elapsed().as_secs_f64();
    let (output, error) = match result {
        Ok(o) => (o, None),
        Err(e) => (Default::default(), Some(e.to_string())),
    };
    match &error {
        None => {
            let headline: Vec<String> = output
                .metrics
                .iter()
                .filter(|m| !m.name.ends_with("peak RSS"))
                .take(3)
                .map(|m| format!("{} {} {}", m.name, report::fmt_num(m.value), m.unit))
                .collect();
            progress(
                started,
                &format!("{label} done in {secs:.1}s: {}", headline.join(", ")),
            );
        }
        Some(e) => progress(started, &format!("{label} FAILED after {secs:.1}s: {e}")),
    }
    RunRecord {
        scenario: scenario.name().into(),
        rep,
        broker: kind,
        secs,
        output,
        error,
    }
}

fn progress(started: Instant, line: &str) {
    eprintln!("[{:7.1}s] {line}", started.elapsed().as_secs_f64());
}

fn select_scenarios(names: &[String]) -> Result<Vec<Scenario>> {
    if names.is_empty() {
        return Ok(Scenario::ALL.to_vec());
    }
    let mut chosen = Vec::new();
    for n in names {
        let s = Scenario::from_name(n).ok_or_else(|| {
            let all: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            BenchError::Usage(format!("unknown scenario {n:?}; one of {}", all.join(", ")))
        })?;
        if !chosen.contains(&s) {
            chosen.push(s);
        }
    }
    // Keep the stable order whatever the command line's.
    Ok(Scenario::ALL
        .into_iter()
        .filter(|s| chosen.contains(s))
        .collect())
}

fn select_brokers(names: &[String]) -> Result<Vec<BrokerKind>> {
    if names.is_empty() {
        return Ok(vec![BrokerKind::Civitas, BrokerKind::Mosquitto]);
    }
    let mut v = Vec::new();
    for n in names {
        let k = match n.as_str() {
            "civitas" => BrokerKind::Civitas,
            "mosquitto" => BrokerKind::Mosquitto,
            _ => {
                return Err(BenchError::Usage(format!(
                    "unknown broker {n:?}; civitas or mosquitto"
                )));
            }
        };
        if !v.contains(&k) {
            v.push(k);
        }
    }
    Ok(v)
}

/// The civitas under test: this executable when it is a release build of
/// civitas itself (so it is exactly the code being benchmarked), else the
/// workspace's release build, brought up to date by cargo.
fn civitas_binary(args: &BenchArgs) -> Result<PathBuf> {
    if let Some(p) = &args.civitas_bin {
        return Ok(p.clone());
    }
    if !cfg!(debug_assertions)
        && let Ok(exe) = std::env::current_exe()
        && exe.file_name().is_some_and(|n| n == "civitas")
    {
        return Ok(exe);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    eprintln!("bench: cargo build --release -p civitas");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args(["build", "--release", "-p", "civitas"])
        .current_dir(&root)
        .status()
        .map_err(|e| BenchError::io("running cargo build", e))?;
    if !status.success() {
        return Err(BenchError::Usage(format!(
            "cargo build --release -p civitas failed ({status})"
        )));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release").join("civitas"))
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn mosquitto_version(bin: &Path) -> String {
    std::process::Command::new(bin)
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            text.lines()
                .find(|l| l.contains("version"))
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "mosquitto (version unknown)".into())
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut parts = vec!["civitas".to_string()];
    if let Some(i) = args.iter().position(|a| a == "bench") {
        parts.extend(args[i..].iter().cloned());
    }
    parts.join(" ")
}

fn write_results(out: &Path, report: &Report) -> Result<()> {
    let write = |name: &str, bytes: &[u8]| {
        let p = out.join(name);
        std::fs::write(&p, bytes).map_err(|e| BenchError::io(p.display().to_string(), e))
    };
    let md = report::markdown(report);
    write("results.md", md.as_bytes())?;
    let json = serde_json::to_vec_pretty(report).map_err(|e| BenchError::BadFile {
        path: out.join("results.json"),
        reason: e.to_string(),
    })?;
    write("results.json", &json)?;
    let title = format!("civitas bench, {}", report.generated);
    write("chart.svg", svg::chart(&title, &report.rows).as_bytes())?;
    println!("{md}");
    Ok(())
}

/// What a full handshake with `broker` negotiates (protocol, cipher suite,
/// key exchange), from one connection made before the scenario starts, so
/// that the notes show both brokers ran the same TLS.
async fn probe_tls(
    broker: &crate::system::RunningBroker,
    fixed: &HashMap<String, crate::pki::Identity>,
) -> Result<String> {
    let id = fixed
        .get(names::CONTROL_CENTER)
        .ok_or_else(|| BenchError::Usage(format!("no identity {}", names::CONTROL_CENTER)))?;
    let client = crate::client::Client::connect(
        id,
        broker.addr,
        crate::client::source_addr(0),
        crate::client::Resume::Never,
    )
    .await?;
    let tls = client.negotiated();
    client.disconnect().await?;
    Ok(tls)
}
