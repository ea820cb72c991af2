//! `civitas audit verify|tail|query|export-checkpoint` against logs written
//! by civitas-audit, untouched and tampered with: exit codes and messages.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use civitas_audit::{
    AuditLog, AuditOptions, Ed25519Signer, Event, ExportedCheckpoint, Outcome, Record, SystemClock,
    log_path,
};

fn civitas(data_dir: &Path, args: &[&str]) -> Output {
    support::cli(data_dir, args).unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A data directory whose log holds 25 events with checkpoints after
/// every 10 (seq 11 and 22) and at the close (seq 28).
fn data_dir(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let (signer, _) = Ed25519Signer::generate().unwrap();
    let options = AuditOptions {
        checkpoint_every: 10,
        ..AuditOptions::default()
    };
    let log = AuditLog::open(
        &log_path(&data),
        Arc::new(signer),
        Arc::new(SystemClock),
        options,
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for i in 0..25u64 {
            let event = if i % 5 == 0 {
                Event::new(
                    "operator:alice",
                    "cert.revoke",
                    format!("serial:{i:02x}"),
                    Outcome::Success,
                )
            } else {
                Event::new(
                    format!("device:lamp-{i}"),
                    "device.connect",
                    format!("lamp-{i}"),
                    Outcome::Success,
                )
                .detail("addr", "192.0.2.7:50112")
            };
            log.append(event).await.unwrap();
        }
    });
    log.close().unwrap();
    data
}

fn lines(data: &Path) -> Vec<String> {
    std::fs::read_to_string(log_path(data))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write(data: &Path, lines: &[String]) {
    std::fs::write(log_path(data), lines.join("\n") + "\n").unwrap();
}

#[test]
fn verify_passes_an_untouched_log_and_names_the_seq_of_a_tampered_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let out = civitas(&data, &["audit", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("audit log OK"), "{}", stdout(&out));
    assert!(stdout(&out).contains("28 records"), "{}", stdout(&out));

    let original = lines(&data);
    let mut edited = original.clone();
    edited[6] = edited[6].replace("lamp-6", "lamp-66");
    write(&data, &edited);
    let out = civitas(&data, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("hash mismatch at seq 7"), "{err}");
    assert!(err.contains("audit.log:7"), "{err}");

    let mut removed = original.clone();
    removed.remove(3);
    write(&data, &removed);
    let out = civitas(&data, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("expected seq 4, found seq 5"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_exported_checkpoint_exposes_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let file = dir.path().join("checkpoint.json");
    let out = civitas(
        &data,
        &[
            "audit",
            "export-checkpoint",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("through seq 27"), "{}", stderr(&out));
    let cp = ExportedCheckpoint::from_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(cp.head_seq, 27);
    cp.verify_signature().unwrap();

    // To standard output as well.
    let out = civitas(&data, &["audit", "export-checkpoint"]);
    assert_eq!(ExportedCheckpoint::from_json(&stdout(&out)).unwrap(), cp);

    let trusted = ["audit", "verify", "--trusted", file.to_str().unwrap()];
    let out = civitas(&data, &trusted);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("matches the trusted checkpoint"));

    let mut cut = lines(&data);
    cut.truncate(20);
    write(&data, &cut);
    assert!(
        civitas(&data, &["audit", "verify"]).status.success(),
        "consistent on its own"
    );
    let out = civitas(&data, &trusted);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("truncated"), "{err}");
    assert!(err.contains("ends at seq 20, before seq 27"), "{err}");
}

#[test]
fn export_refuses_a_broken_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let mut swapped = lines(&data);
    swapped.swap(1, 2);
    write(&data, &swapped);
    let out = civitas(&data, &["audit", "export-checkpoint"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("expected seq 2"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn tail_and_query_print_tables_or_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());

    let out = civitas(&data, &["audit", "tail", "-n", "3", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let seqs: Vec<u64> = stdout(&out)
        .lines()
        .map(|l| Record::from_line(l).unwrap().seq)
        .collect();
    assert_eq!(seqs, vec![26, 27, 28]);
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), lines(&data)[25..]);

    let out = civitas(&data, &["audit", "tail", "-n", "2"]);
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[0].contains("SEQ") && rows[0].contains("ACTION"),
        "{text}"
    );
    assert!(rows[2].contains("audit.checkpoint"), "{text}");

    let out = civitas(
        &data,
        &["audit", "query", "--actor", "operator:alice", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let found: Vec<Record> = stdout(&out)
        .lines()
        .map(|l| Record::from_line(l).unwrap())
        .collect();
    assert_eq!(found.len(), 5);
    assert!(found.iter().all(|r| r.action == "cert.revoke"));

    let out = civitas(
        &data,
        &["audit", "query", "--action", "audit.*", "--limit", "2"],
    );
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("audit.checkpoint"));

    let out = civitas(
        &data,
        &["audit", "query", "--since", "2999-01-01", "--json"],
    );
    assert!(
        out.status.success() && stdout(&out).is_empty(),
        "{}",
        stderr(&out)
    );
    let out = civitas(
        &data,
        &[
            "audit",
            "query",
            "--since",
            "2000-01-01T00:00:00Z",
            "--json",
        ],
    );
    assert_eq!(stdout(&out).lines().count(), 28);

    let out = civitas(&data, &["audit", "query", "--since", "last tuesday"]);
    assert!(!out.status.success());
}

#[test]
fn a_missing_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = civitas(&dir.path().join("data"), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no audit log"), "{}", stderr(&out));
}
