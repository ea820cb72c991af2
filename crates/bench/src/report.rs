//! Results: every run's measurements, the per-metric medians across
//! repetitions with civitas ÷ Mosquitto ratios, and their Markdown and
//! JSON forms.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::scenario::{RunOutput, Scale};
use crate::system::BrokerKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    pub name: String,
    pub unit: String,
    pub better: Better,
    pub value: f64,
}

/// One scenario run on one broker.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub scenario: String,
    pub rep: usize,
    pub broker: BrokerKind,
    pub secs: f64,
    pub output: RunOutput,
    pub error: Option<String>,
}

/// One line of the results table: a metric's median on each broker.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub unit: String,
    pub better: Option<Better>,
    pub civitas: Option<f64>,
    pub mosquitto: Option<f64>,
    /// civitas ÷ Mosquitto.
    pub ratio: Option<f64>,
    pub civitas_runs: Vec<f64>,
    pub mosquitto_runs: Vec<f64>,
    /// Why the row has no figures, when it has none.
    pub status: Option<String>,
    /// A scenario only civitas runs: no Mosquitto figure, by design.
    #[serde(default)]
    pub civitas_only: bool,
}

impl Row {
    /// The ratio oriented so that above 1 means civitas is better.
    pub fn advantage(&self) -> Option<f64> {
        let r = self.ratio.filter(|r| r.is_finite() && *r > 0.0)?;
        match self.better? {
            Better::Higher => Some(r),
            Better::Lower => Some(1.0 / r),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub mosquitto: String,
    pub civitas: String,
    pub pinned: bool,
}

impl Machine {
    pub fn describe(cpus: usize, mosquitto: String, pinned: bool) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|s| s.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kb: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpus,
            cpu_model,
            memory_gib: kb / (1024.0 * 1024.0),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            mosquitto,
            civitas: env!("CARGO_PKG_VERSION").to_string(),
            pinned,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated: String,
    pub command: String,
    pub machine: Machine,
    pub scale: Scale,
    pub reps: usize,
    pub rows: Vec<Row>,
    pub runs: Vec<RunRecord>,
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// A scenario as the report lists it.
pub struct Listed<'a> {
    pub name: &'a str,
    pub civitas_only: bool,
}

/// Medians per scenario and metric, in the order the scenarios ran and
/// the metrics first appeared; a scenario without a successful run gets a
/// status row.
pub fn aggregate(scenarios: &[Listed<'_>], runs: &[RunRecord]) -> Vec<Row> {
    let mut rows = Vec::new();
    for listed in scenarios {
        let (scenario, civitas_only) = (&listed.name, listed.civitas_only);
        let mut order: Vec<(String, String, Better)> = Vec::new();
        let mut values: BTreeMap<(String, BrokerKind), Vec<f64>> = BTreeMap::new();
        for run in runs
            .iter()
            .filter(|r| r.scenario == *scenario && r.error.is_none())
        {
            for m in &run.output.metrics {
                if !order.iter().any(|(n, _, _)| *n == m.name) {
                    order.push((m.name.clone(), m.unit.clone(), m.better));
                }
                values
                    .entry((m.name.clone(), run.broker))
                    .or_default()
                    .push(m.value);
            }
        }
        if order.is_empty() {
            rows.push(Row {
                scenario: scenario.to_string(),
                metric: "—".into(),
                unit: String::new(),
                better: None,
                civitas: None,
                mosquitto: None,
                ratio: None,
                civitas_runs: Vec::new(),
                mosquitto_runs: Vec::new(),
                status: Some("no successful run".into()),
                civitas_only,
            });
        }
        for (name, unit, better) in order {
            let get = |b| values.get(&(name.clone(), b)).cloned().unwrap_or_default();
            let (c, m) = (get(BrokerKind::Civitas), get(BrokerKind::Mosquitto));
            let (cm, mm) = (median(&c), median(&m));
            let ratio = match (cm, mm) {
                (Some(a), Some(b)) if b != 0.0 => Some(a / b),
                _ => None,
            };
            rows.push(Row {
                scenario: scenario.to_string(),
                metric: name,
                unit,
                better: Some(better),
                civitas: cm,
                mosquitto: mm,
                ratio,
                civitas_runs: c,
                mosquitto_runs: m,
                status: None,
                civitas_only,
            });
        }
    }
    rows
}

/// A number as a person reads it: thousands separated, a few significant
/// digits for small values.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    if v.abs() >= 100.0 {
        let s = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        if v < 0.0 { format!("-{out}") } else { out }
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn with_unit(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(v) if unit.is_empty() => fmt_num(v),
        Some(v) => format!("{} {unit}", fmt_num(v)),
        None => "—".into(),
    }
}

/// The results table and notes, Markdown.
pub fn markdown(report: &Report) -> String {
    let m = &report.machine;
    let mut s = String::new();
    s.push_str(&format!("# civitas bench, {}\n\n", report.generated));
    s.push_str(&format!(
        "Machine: {} CPUs ({}), {:.1} GiB, Linux {}; civitas {}, {}. {}\n\n",
        m.cpus,
        m.cpu_model,
        m.memory_gib,
        m.kernel,
        m.civitas,
        m.mosquitto,
        if m.pinned {
            "Broker pinned to CPU 0, generator to CPU 1."
        } else {
            "Not pinned (fewer than 2 CPUs)."
        }
    ));
    s.push_str(&format!(
        "Command: `{}`; {} repetition(s) per broker, median shown{}.\n\n",
        report.command,
        report.reps,
        if report.scale.quick {
            "; quick scale: a smoke test, not comparable figures"
        } else {
            ""
        }
    ));
    s.push_str("| scenario | metric | civitas | Mosquitto | civitas ÷ Mosquitto | better |\n");
    s.push_str("|---|---|---:|---:|---:|---|\n");
    for r in &report.rows {
        if let Some(status) = &r.status {
            s.push_str(&format!(
                "| {} | {} | {status} | — | — | |\n",
                r.scenario, r.metric
            ));
            continue;
        }
        let better = match r.better {
            Some(Better::Higher) => "higher",
            Some(Better::Lower) => "lower",
            None => "",
        };
        let ratio = r.ratio.map_or("—".to_string(), |x| format!("{x:.2}×"));
        let mosquitto = if r.civitas_only {
            "— (no peer has it)".to_string()
        } else {
            with_unit(r.mosquitto, &r.unit)
        };
        s.push_str(&format!(
            "| {} | {} | {} | {mosquitto} | {ratio} | {better} |\n",
            r.scenario,
            r.metric,
            with_unit(r.civitas, &r.unit),
        ));
    }
    let mut notes: Vec<String> = Vec::new();
    for run in &report.runs {
        for n in &run.output.notes {
            let line = format!("{} ({}): {n}", run.scenario, run.broker.name());
            if run.rep == 0 && !notes.contains(&line) {
                notes.push(line);
            }
        }
    }
    if !notes.is_empty() {
        s.push_str("\nNotes:\n\n");
        for n in notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    let failures: Vec<&RunRecord> = report.runs.iter().filter(|r| r.error.is_some()).collect();
    if !failures.is_empty() {
        s.push_str("\nFailed runs:\n\n");
        for f in failures {
            s.push_str(&format!(
                "- {} repetition {} on {}: {}\n",
                f.scenario,
                f.rep + 1,
                f.broker.name(),
                f.error.as_deref().unwrap_or_default()
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(broker: BrokerKind, rep: usize, value: f64) -> RunRecord {
        let mut output = RunOutput::default();
        output.metric("delivered msg/s", "msg/s", Better::Higher, value);
        RunRecord {
            scenario: "fan-in".into(),
            rep,
            broker,
            secs: 1.0,
            output,
            error: None,
        }
    }

    #[test]
    fn medians_and_ratio() {
        let runs = vec![
            run(BrokerKind::Civitas, 0, 300.0),
            run(BrokerKind::Mosquitto, 0, 100.0),
            run(BrokerKind::Civitas, 1, 100.0),
            run(BrokerKind::Mosquitto, 1, 50.0),
            run(BrokerKind::Civitas, 2, 200.0),
            run(BrokerKind::Mosquitto, 2, 150.0),
        ];
        let listed = |name, civitas_only| Listed { name, civitas_only };
        let rows = aggregate(&[listed("fan-in", false), listed("pipeline", true)], &runs);
        assert_eq!(rows.len(), 2);
        assert!(!rows[0].civitas_only && rows[1].civitas_only);
        assert_eq!(rows[0].civitas, Some(200.0));
        assert_eq!(rows[0].mosquitto, Some(100.0));
        assert_eq!(rows[0].ratio, Some(2.0));
        assert_eq!(rows[0].advantage(), Some(2.0));
        // The pipeline has no run here: a status row says so.
        assert_eq!(rows[1].status.as_deref(), Some("no successful run"));
    }

    #[test]
    fn lower_is_better_inverts_the_advantage() {
        let row = Row {
            scenario: "x".into(),
            metric: "latency p99".into(),
            unit: "ms".into(),
            better: Some(Better::Lower),
            civitas: Some(1.0),
            mosquitto: Some(4.0),
            ratio: Some(0.25),
            civitas_runs: vec![],
            mosquitto_runs: vec![],
            status: None,
            civitas_only: false,
        };
        assert_eq!(row.advantage(), Some(4.0));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_num(1234567.0), "1,234,567");
        assert_eq!(fmt_num(123.4), "123");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
        assert_eq!(fmt_num(0.1234), "0.123");
    }
}
