//! `civitas bench --quick` end to end: both brokers, every scenario, every
//! message delivered.
//!
//! Ignored by default: it builds civitas in release mode, starts a dozen
//! brokers and opens thousands of mutual-TLS connections, about two
//! minutes on two cores. `scripts/test` runs the same thing as its own
//! stage (`cargo run --release -p civitas -- bench --quick`); run this one
//! with `cargo test -p civitas-bench --test quick -- --ignored`.

use civitas_bench::{BenchArgs, run};

#[test]
#[ignore = "heavy: runs the whole quick bench; scripts/test runs it as a stage"]
fn quick_bench_delivers_everything_on_both_brokers() {
    let out = tempfile::tempdir().unwrap();
    let report = run(BenchArgs {
        quick: true,
        out: Some(out.path().join("results")),
        ..BenchArgs::default()
    })
    .unwrap();
    assert!(report.runs.iter().all(|r| r.error.is_none()));
    for file in ["results.md", "results.json", "chart.svg"] {
        assert!(out.path().join("results").join(file).exists(), "{file}");
    }
    // civitas alone runs the pipeline, and it stored every reading.
    let pipeline: Vec<_> = report
        .runs
        .iter()
        .filter(|r| r.scenario == "pipeline")
        .collect();
    assert_eq!(pipeline.len(), 1);
    assert!(
        pipeline[0]
            .output
            .metrics
            .iter()
            .any(|m| m.name == "publish-to-stored p99")
    );
    let row = report
        .rows
        .iter()
        .find(|r| r.scenario == "pipeline" && r.metric == "publish-to-stored p99")
        .unwrap();
    assert!(row.civitas_only && row.civitas.is_some() && row.mosquitto.is_none());
}
