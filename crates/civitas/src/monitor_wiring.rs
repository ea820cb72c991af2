//! The running server's metrics and alarms for operators: the monitor
//! served on the admin socket as the `monitor` service, and
//! `civitas metrics`, which reads it.
//!
//! Metrics live in the running process only (counters since it started),
//! so `civitas metrics` needs civitas up; it never opens the store.

use civitas_monitor::{Alarm, Distribution, MetricKey, MetricsSnapshot, Monitor};
use civitas_registry::{
    ADMIN_SOCKET_FILE, Actor, AdminClient, AdminRequest, AdminResponse, AdminService, Problem,
};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::cli::{print_json, print_table};
use crate::config::Config;

/// The service's name on the admin socket.
pub const ADMIN_SERVICE: &str = "monitor";

/// A request to the `monitor` service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MonitorRequest {
    /// Every metric whose name starts with `prefix` (all without one),
    /// and every alarm ever raised.
    Snapshot {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
    },
}

/// The answer to a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorSnapshot {
    pub metrics: MetricsSnapshot,
    pub alarms: Vec<Alarm>,
}

/// Takes a snapshot of `monitor`, metrics limited to names starting with
/// `prefix`.
pub fn snapshot(monitor: &Monitor, prefix: Option<&str>) -> MonitorSnapshot {
    let mut metrics = monitor.snapshot();
    if let Some(prefix) = prefix {
        metrics.counters.retain(|s| s.key.name.starts_with(prefix));
        metrics.gauges.retain(|s| s.key.name.starts_with(prefix));
        metrics
            .histograms
            .retain(|s| s.key.name.starts_with(prefix));
    }
    MonitorSnapshot {
        metrics,
        alarms: monitor.alarms(),
    }
}

/// The monitor on the admin socket.
pub struct MonitorAdmin(pub Monitor);

impl AdminService for MonitorAdmin {
    fn execute(
        &self,
        _actor: &Actor,
        request: serde_json::Value,
    ) -> Result<serde_json::Value, Problem> {
        let request: MonitorRequest = serde_json::from_value(request)
            .map_err(|e| Problem::new("bad_request", e.to_string()))?;
        match request {
            MonitorRequest::Snapshot { prefix } => {
                serde_json::to_value(snapshot(&self.0, prefix.as_deref()))
                    .map_err(|e| Problem::new("internal", e.to_string()))
            }
        }
    }
}

/// `civitas metrics`.
#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Only metrics whose name starts with this (e.g. `rules_`).
    prefix: Option<String>,
    /// Print the snapshot as JSON (histograms with their buckets).
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Config, args: MetricsArgs) -> anyhow::Result<()> {
    let socket = config.data_dir.join(ADMIN_SOCKET_FILE);
    let Some(mut client) = AdminClient::connect(&socket)? else {
        anyhow::bail!(
            "civitas is not running (nothing answers on {}): metrics are kept by the running server",
            socket.display()
        );
    };
    let request = AdminRequest::Service {
        service: ADMIN_SERVICE.into(),
        request: serde_json::to_value(MonitorRequest::Snapshot {
            prefix: args.prefix,
        })?,
    };
    let snapshot: MonitorSnapshot = match client.call(&request)? {
        AdminResponse::Service(answer) => {
            serde_json::from_value(answer).map_err(|e| anyhow::anyhow!("unreadable answer: {e}"))?
        }
        AdminResponse::Error(problem) => anyhow::bail!(problem.message),
        other => anyhow::bail!("unexpected response from civitas: {other:?}"),
    };
    if args.json {
        return print_json(&snapshot);
    }
    print_table(&["metric", "value"], &metric_rows(&snapshot.metrics));
    let raised: Vec<Vec<String>> = snapshot
        .alarms
        .iter()
        .filter(|a| a.is_raised())
        .map(|a| {
            vec![
                a.name.clone(),
                crate::cli::time(a.raised_at_ms),
                a.message.clone(),
            ]
        })
        .collect();
    println!();
    if raised.is_empty() {
        println!("No alarm raised.");
    } else {
        print_table(&["alarm", "since", "message"], &raised);
    }
    Ok(())
}

/// `name{label="value",…}`, as Prometheus writes a series.
fn series(key: &MetricKey) -> String {
    if key.labels.is_empty() {
        return key.name.clone();
    }
    let labels: Vec<String> = key
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{}{{{}}}", key.name, labels.join(","))
}

/// A histogram in one cell: count, mean and estimated quantiles.
fn summary(d: &Distribution) -> String {
    if d.count == 0 {
        return "count 0".into();
    }
    let q = |q: f64| d.quantile(q).map_or("-".into(), seconds);
    format!(
        "count {}, mean {}, p50 {}, p99 {}, p99.9 {}",
        d.count,
        seconds(d.sum / d.count as f64),
        q(0.5),
        q(0.99),
        q(0.999)
    )
}

/// Seconds in a readable unit.
fn seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn metric_rows(m: &MetricsSnapshot) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    rows.extend(
        m.counters
            .iter()
            .map(|c| vec![series(&c.key), c.value.to_string()]),
    );
    rows.extend(
        m.gauges
            .iter()
            .map(|g| vec![series(&g.key), g.value.to_string()]),
    );
    rows.extend(m.histograms.iter().map(|h| {
        let value = if h.key.name.ends_with("_seconds") {
            summary(&h.distribution)
        } else {
            format!("count {}, sum {}", h.distribution.count, h.distribution.sum)
        };
        vec![series(&h.key), value]
    }));
    rows.sort();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor() -> Monitor {
        let m = Monitor::new();
        m.counter("rules_matched_total", &[("rule", "keep")]).add(3);
        m.gauge("rules_queued", &[("rule", "keep")]).set(2.0);
        let h = m.histogram_with_buckets(
            "rules_store_lag_seconds",
            &[("rule", "keep")],
            &[0.001, 0.01],
        );
        h.observe(0.0005);
        h.observe(0.005);
        m.counter("broker_connections_total", &[]).inc();
        m.raise_alarm("rules.queue_overflow.keep", "dropping");
        m
    }

    #[test]
    fn the_service_answers_snapshots_limited_to_a_prefix() {
        let service = MonitorAdmin(monitor());
        let answer = service
            .execute(
                &Actor::system(),
                serde_json::json!({"op": "snapshot", "prefix": "rules_"}),
            )
            .unwrap();
        let snapshot: MonitorSnapshot = serde_json::from_value(answer).unwrap();
        assert_eq!(
            snapshot
                .metrics
                .counter("rules_matched_total", &[("rule", "keep")]),
            Some(3)
        );
        assert_eq!(
            snapshot.metrics.counter("broker_connections_total", &[]),
            None
        );
        let lag = snapshot
            .metrics
            .histogram("rules_store_lag_seconds", &[("rule", "keep")])
            .unwrap();
        assert_eq!(lag.count, 2);
        assert_eq!(snapshot.alarms.len(), 1);
        assert!(snapshot.alarms[0].is_raised());

        let all = service
            .execute(&Actor::system(), serde_json::json!({"op": "snapshot"}))
            .unwrap();
        assert_eq!(all["metrics"]["counters"].as_array().unwrap().len(), 2);
        let refused = service
            .execute(&Actor::system(), serde_json::json!({"op": "reset"}))
            .unwrap_err();
        assert_eq!(refused.code, "bad_request");
    }

    #[test]
    fn rows_name_series_and_summarise_latencies() {
        let rows = metric_rows(&snapshot(&monitor(), None).metrics);
        assert_eq!(
            rows[0],
            vec!["broker_connections_total".to_string(), "1".to_string()]
        );
        let lag = rows
            .iter()
            .find(|r| r[0] == r#"rules_store_lag_seconds{rule="keep"}"#)
            .unwrap();
        assert_eq!(
            lag[1],
            "count 2, mean 2.750 ms, p50 1.000 ms, p99 9.820 ms, p99.9 9.982 ms"
        );
        assert!(
            rows.iter()
                .any(|r| r[0] == r#"rules_queued{rule="keep"}"# && r[1] == "2")
        );
    }
}
