//! Tampering with a copy of a log: each kind of change is caught and the
//! report names the exact record.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use civitas_audit::{
    CheckpointSigner, Digest, ExportedCheckpoint, Problem, VerifyReport, log_path, verify,
};
use serde_json::Value;
use support::{event, open, read_lines, rechain, record, rehash, signer, write_lines};

/// The original log and a checkpoint exported at seq 36.
///
/// Layout: events 1-10, checkpoint 11, events 12-21, checkpoint 22, events
/// 23-32, checkpoint 33, events 34-36, exported checkpoint 37, events
/// 38-40, closing checkpoint 41.
struct Fixture {
    _dir: tempfile::TempDir,
    lines: Vec<String>,
    trusted: ExportedCheckpoint,
    work: PathBuf,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let log = open(&path, &signer(), 10);
    for i in 0..33 {
        log.append(event(i)).await.unwrap();
    }
    let trusted = log.export_checkpoint().await.unwrap();
    for i in 33..36 {
        log.append(event(i)).await.unwrap();
    }
    log.close().unwrap();
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 41);
    assert_eq!(trusted.head_seq, 36);
    for seq in [11, 22, 33, 37, 41] {
        assert!(record(&lines[seq - 1]).is_checkpoint(), "seq {seq}");
    }
    let work = dir.path().join("copy").join("audit.log");
    std::fs::create_dir_all(work.parent().unwrap()).unwrap();
    Fixture {
        _dir: dir,
        lines,
        trusted,
        work,
    }
}

impl Fixture {
    /// Verifies `lines` as a copy of the log.
    fn check(&self, lines: &[String], trusted: bool) -> VerifyReport {
        write_lines(&self.work, lines);
        verify(&self.work, trusted.then_some(&self.trusted)).unwrap()
    }

    fn problem(&self, lines: &[String], trusted: bool) -> Problem {
        let report = self.check(lines, trusted);
        let problem = report.problem.clone().expect("a problem");
        // The report names the file and line where there is one.
        let text = report.to_string();
        if let Some(line) = problem.line() {
            assert!(
                text.starts_with(&format!("{}:{line}: ", self.work.display())),
                "{text}"
            );
        }
        problem
    }
}

fn path_text(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn the_untouched_log_verifies() {
    let f = fixture().await;
    let report = f.check(&f.lines, true);
    assert!(report.is_ok(), "{report}");
    assert!(report.trusted_matched);
    assert_eq!((report.records, report.checkpoints), (41, 5));
    assert_eq!(report.last_checkpoint.as_ref().map(|(s, _)| *s), Some(41));
    assert_eq!(report.unsigned_records(), 0);
    assert!(report.to_string().starts_with(&path_text(&f.work)));
}

#[tokio::test]
async fn an_edited_field_is_a_hash_mismatch_at_that_seq() {
    let f = fixture().await;
    let mut lines = f.lines.clone();
    lines[4] = lines[4].replace("device:lamp-4", "device:lamp-9");
    let p = f.problem(&lines, false);
    assert_eq!(p, Problem::HashMismatch { seq: 5, line: 5 });
    assert!(p.to_string().contains("hash mismatch at seq 5"), "{p}");

    // The same content spelled differently is still an edit.
    let mut lines = f.lines.clone();
    lines[4] = lines[4].replacen("\"actor\":", "\"actor\": ", 1);
    assert_eq!(
        f.problem(&lines, false),
        Problem::NotCanonical { seq: 5, line: 5 }
    );
}

#[tokio::test]
async fn a_deleted_line_is_a_gap() {
    let f = fixture().await;
    let mut lines = f.lines.clone();
    lines.remove(6);
    let p = f.problem(&lines, false);
    assert_eq!(
        p,
        Problem::Gap {
            expected: 7,
            found: 8,
            line: 7
        }
    );
    assert_eq!(p.seq(), Some(7));
    assert!(p.to_string().contains("expected seq 7, found seq 8"), "{p}");
}

#[tokio::test]
async fn swapped_lines_are_reordered() {
    let f = fixture().await;
    let mut lines = f.lines.clone();
    lines.swap(6, 7);
    let p = f.problem(&lines, false);
    assert_eq!(
        p,
        Problem::Reordered {
            expected: 7,
            found: 8,
            line: 7,
            expected_at: Some(8)
        }
    );
    assert!(p.to_string().contains("expected seq 7"), "{p}");

    // A record moved further back.
    let mut lines = f.lines.clone();
    let moved = lines.remove(12);
    lines.insert(15, moved);
    assert_eq!(
        f.problem(&lines, false),
        Problem::Reordered {
            expected: 13,
            found: 14,
            line: 13,
            expected_at: Some(16)
        }
    );
}

#[tokio::test]
async fn an_injected_line_does_not_link() {
    let f = fixture().await;
    // A forged record with a correct hash of its own, slotted in as seq 15
    // but with a made-up prev; the originals from 15 on are renumbered.
    let mut forged = record(&f.lines[14]);
    forged.actor = "operator:mallory".into();
    forged.prev = Digest([0xab; 32]);
    let mut lines = f.lines.clone();
    lines.insert(14, rehash(forged));
    let p = f.problem(&lines, false);
    assert_eq!(p, Problem::PrevMismatch { seq: 15, line: 15 });
    assert!(p.to_string().contains("prev mismatch at seq 15"), "{p}");

    // The forger links it properly instead: the original seq 15 is then a
    // second claim to the same seq.
    let mut forged = record(&f.lines[14]);
    forged.actor = "operator:mallory".into();
    let mut lines = f.lines.clone();
    lines.insert(14, rehash(forged));
    assert_eq!(
        f.problem(&lines, false),
        Problem::Duplicate {
            seq: 15,
            line: 16,
            first_line: 15
        }
    );

    // A line with a seq of its own choosing.
    let mut forged = record(&f.lines[14]);
    forged.seq = 900;
    let mut lines = f.lines.clone();
    lines.insert(14, rehash(forged));
    assert_eq!(
        f.problem(&lines, false),
        Problem::Extra {
            expected: 15,
            found: 900,
            line: 15
        }
    );
}

#[tokio::test]
async fn a_rewritten_chain_is_caught_by_the_next_signed_checkpoint() {
    let f = fixture().await;
    let mut lines = f.lines.clone();
    let mut r = record(&lines[14]);
    r.outcome = civitas_audit::Outcome::Success;
    r.actor = "operator:alice".into();
    r.details = serde_json::Map::new();
    lines[14] = rehash(r);
    rechain(&mut lines, 15);
    // Every hash and prev is consistent again...
    let p = f.problem(&lines, false);
    // ...but the checkpoint at seq 22 signed the old seq 21.
    assert_eq!(
        p,
        Problem::CheckpointHeadMismatch {
            seq: 22,
            line: 22,
            head_seq: 21,
            since: Some(10)
        }
    );
    assert!(p.to_string().contains("checkpoint at seq 22"), "{p}");
    assert!(p.to_string().contains("after seq 10"), "{p}");

    // Pointing the checkpoint at the new head breaks its signature.
    let mut cp = record(&lines[21]);
    cp.details.insert(
        "head_hash".into(),
        Value::String(record(&lines[20]).hash.to_hex()),
    );
    lines[21] = rehash(cp);
    rechain(&mut lines, 22);
    assert_eq!(
        f.problem(&lines, false),
        Problem::BadCheckpointSignature { seq: 22, line: 22 }
    );

    // Re-signing every later checkpoint with a key of one's own shows as a
    // change of key.
    let mallory = signer();
    for i in 21..lines.len() {
        rechain(&mut lines[..=i], i);
        if record(&lines[i]).is_checkpoint() {
            let head = record(&lines[i - 1]);
            let mut cp = record(&lines[i]);
            cp.details = resign(&mallory, head.seq, head.hash);
            lines[i] = rehash(cp);
        }
    }
    rechain(&mut lines, 15);
    assert!(matches!(
        f.problem(&lines, false),
        Problem::CheckpointKeyChanged {
            seq: 22,
            line: 22,
            ..
        }
    ));
}

#[tokio::test]
async fn removing_the_checkpoints_too_only_the_exported_one_tells() {
    let f = fixture().await;
    // Rewrite seq 15, drop every checkpoint after it, renumber and rechain.
    let mut lines: Vec<String> = f
        .lines
        .iter()
        .enumerate()
        .filter(|(i, l)| *i < 15 || !record(l).is_checkpoint())
        .map(|(_, l)| l.clone())
        .collect();
    let mut r = record(&lines[14]);
    r.actor = "operator:alice".into();
    lines[14] = rehash(r);
    for (i, line) in lines.iter_mut().enumerate().skip(15) {
        let mut r = record(line);
        r.seq = i as u64 + 1;
        *line = rehash(r);
    }
    rechain(&mut lines, 15);
    let report = f.check(&lines, false);
    assert!(
        report.is_ok(),
        "a consistent rewrite passes on its own: {report}"
    );

    let p = f.problem(&lines, true);
    assert_eq!(
        p,
        Problem::TrustedHeadMismatch {
            seq: 36,
            line: 36,
            since: Some(10)
        }
    );
    assert!(p.to_string().contains("seq 36"), "{p}");
}

#[tokio::test]
async fn truncation_after_the_exported_checkpoint_is_caught() {
    let f = fixture().await;
    let mut lines = f.lines.clone();
    lines.truncate(30);
    assert!(
        f.check(&lines, false).is_ok(),
        "a shorter log is consistent"
    );
    let p = f.problem(&lines, true);
    assert_eq!(
        p,
        Problem::TruncatedBeforeTrusted {
            head_seq: 36,
            last_seq: Some(30)
        }
    );
    assert!(
        p.to_string().contains("ends at seq 30, before seq 36"),
        "{p}"
    );

    // Cut just after the exported head: nothing it vouches for is missing.
    lines = f.lines.clone();
    lines.truncate(36);
    let report = f.check(&lines, true);
    assert!(report.is_ok() && report.trusted_matched, "{report}");

    // Cut and then regrown with other records up to past the head.
    let mut lines = f.lines.clone();
    lines.truncate(34);
    for i in 34..40 {
        let mut r = record(&lines[33]);
        r.seq = i + 1;
        r.target = format!("other-{i}");
        lines.push(rehash(r));
    }
    rechain(&mut lines, 34);
    assert_eq!(
        f.problem(&lines, true),
        Problem::TrustedHeadMismatch {
            seq: 36,
            line: 36,
            since: Some(32)
        }
    );
}

#[tokio::test]
async fn a_bad_checkpoint_signature_is_named() {
    let f = fixture().await;
    let mut lines = f.lines.clone();
    let mut cp = record(&lines[32]);
    let sig = cp.details["signature"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    cp.details
        .insert("signature".into(), Value::String(flipped));
    lines[32] = rehash(cp);
    rechain(&mut lines, 33);
    let p = f.problem(&lines, false);
    assert_eq!(p, Problem::BadCheckpointSignature { seq: 33, line: 33 });
    assert!(
        p.to_string().contains("bad checkpoint signature at seq 33"),
        "{p}"
    );
}

#[tokio::test]
async fn a_malformed_line_is_named_by_line() {
    let f = fixture().await;
    let mut lines = f.lines.clone();
    lines[8] = "{\"seq\":9,".into();
    let p = f.problem(&lines, false);
    assert!(matches!(p, Problem::Malformed { line: 9, .. }), "{p:?}");
}

#[tokio::test]
async fn a_trusted_checkpoint_must_itself_verify_and_match_the_key() {
    let f = fixture().await;
    let mut bad = f.trusted.clone();
    bad.head_seq += 1;
    write_lines(&f.work, &f.lines);
    let report = verify(&f.work, Some(&bad)).unwrap();
    assert!(
        matches!(report.problem, Some(Problem::BadTrustedCheckpoint { .. })),
        "{report}"
    );

    // A well-signed checkpoint by someone else's key.
    let other = signer();
    let theirs = exported(&other, f.trusted.head_seq, f.trusted.head_hash);
    let report = verify(&f.work, Some(&theirs)).unwrap();
    assert!(
        matches!(
            report.problem,
            Some(Problem::UntrustedCheckpointKey {
                seq: 11,
                line: 11,
                ..
            })
        ),
        "{report}"
    );
}

fn exported(
    key: &Arc<dyn CheckpointSigner>,
    head_seq: u64,
    head_hash: Digest,
) -> ExportedCheckpoint {
    let public_key = key.public_key();
    ExportedCheckpoint {
        key_id: civitas_audit::key_id(&public_key),
        public_key,
        head_seq,
        head_hash,
        signature: key
            .sign(&civitas_audit::checkpoint_message(head_seq, &head_hash))
            .unwrap(),
    }
}

fn resign(
    key: &Arc<dyn CheckpointSigner>,
    head_seq: u64,
    head_hash: Digest,
) -> serde_json::Map<String, Value> {
    match serde_json::to_value(exported(key, head_seq, head_hash)).unwrap() {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}
