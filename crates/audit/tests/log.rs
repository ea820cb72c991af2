//! Writing the log: continuity across reopen, concurrent appends, when
//! checkpoints are written, crash repair at open, and the sealed key.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use civitas_audit::{
    AuditError, AuditLog, AuditOptions, CHECKPOINT_ACTION, Event, Outcome, Query, Recovery,
    Timestamp, load_or_create_signer, log_path, query, sealed_key_path, tail, verify,
};
use civitas_kms::{EncryptionContext, KeyId, KeyRing, RootKey};
use support::{ManualClock, event, open, options, read_lines, record, signer};
use zeroize::Zeroizing;

#[tokio::test]
async fn appends_continue_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let key = signer();
    let log = open(&path, &key, 1000);
    for i in 1..=5 {
        assert_eq!(log.append(event(i)).await.unwrap(), i);
    }
    log.close().unwrap();
    // The clean close signed the head.
    let last = record(read_lines(&path).last().unwrap());
    assert_eq!((last.seq, last.action.as_str()), (6, CHECKPOINT_ACTION));

    let log = open(&path, &key, 1000);
    assert_eq!(log.recovery(), None);
    for i in 7..=9 {
        assert_eq!(log.append(event(i)).await.unwrap(), i);
    }
    drop(log);

    let records: Vec<_> = read_lines(&path).iter().map(|l| record(l)).collect();
    assert_eq!(records.len(), 10);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
    }
    assert_eq!(
        records[6].prev, records[5].hash,
        "the reopened log links on"
    );
    let report = verify(&path, None).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!((report.records, report.checkpoints), (10, 2));

    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_keep_seq_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let log = open(&path, &signer(), 100);
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let sink = log.sink();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..150 {
                if i % 5 == 4 {
                    sink.append_nowait(event(t * 1000 + i)).unwrap();
                } else {
                    seqs.push(sink.append(event(t * 1000 + i)).await.unwrap());
                }
            }
            seqs
        }));
    }
    let mut acked = BTreeSet::new();
    for task in tasks {
        for seq in task.await.unwrap() {
            assert!(acked.insert(seq), "seq {seq} handed out twice");
        }
    }
    log.close().unwrap();
    assert_eq!(acked.len(), 8 * 120);

    let records: Vec<_> = read_lines(&path).iter().map(|l| record(l)).collect();
    let events = records.iter().filter(|r| !r.is_checkpoint()).count();
    assert_eq!(events, 8 * 150, "every append, waited for or not, is there");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1, "contiguous");
    }
    for seq in &acked {
        assert!(!records[*seq as usize - 1].is_checkpoint());
    }
    let stats = log.stats();
    assert_eq!(stats.records, 8 * 150);
    assert!(stats.batches <= stats.records);
    let report = verify(&path, None).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.checkpoints, stats.checkpoints);
}

#[tokio::test]
async fn a_checkpoint_follows_every_n_records_and_the_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let log = open(&path, &signer(), 10);
    for i in 0..25 {
        log.append(event(i)).await.unwrap();
    }
    log.close().unwrap();
    let checkpoints: Vec<_> = read_lines(&path)
        .iter()
        .map(|l| record(l))
        .filter(|r| r.is_checkpoint())
        .map(|r| (r.seq, r.details["head_seq"].as_u64().unwrap()))
        .collect();
    // 10 events, checkpoint, 10 events, checkpoint, 5 events, closing one.
    assert_eq!(checkpoints, vec![(11, 10), (22, 21), (28, 27)]);
    assert_eq!(verify(&path, None).unwrap().checkpoints, 3);
}

#[tokio::test]
async fn a_checkpoint_follows_once_the_oldest_unsigned_record_is_old() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let clock = ManualClock::new();
    let options = AuditOptions {
        checkpoint_every: 1000,
        checkpoint_interval: Duration::from_secs(60),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, signer(), clock.clone(), options).unwrap();
    log.append(event(1)).await.unwrap();
    clock.advance(Duration::from_secs(30));
    log.append(event(2)).await.unwrap();
    assert!(!read_lines(&path).iter().any(|l| record(l).is_checkpoint()));
    clock.advance(Duration::from_secs(31));
    // Sixty-one seconds after the first unsigned record. The writer signs
    // either on its own just before this record arrives or with its batch.
    log.append(event(3)).await.unwrap();
    let checkpoints: Vec<_> = read_lines(&path)
        .iter()
        .map(|l| record(l))
        .filter(|r| r.is_checkpoint())
        .collect();
    assert_eq!(checkpoints.len(), 1, "{checkpoints:#?}");
    let cp = &checkpoints[0];
    assert_eq!(cp.details["head_seq"].as_u64(), Some(cp.seq - 1));
    assert!(cp.seq == 3 || cp.seq == 4);
    assert_eq!(cp.time.to_string(), "2024-01-01T00:01:01.000Z");

    // With nothing more arriving, the writer signs on its own once the
    // clock says so.
    let seq = log.append(event(5)).await.unwrap();
    clock.advance(Duration::from_secs(61));
    let deadline = Instant::now() + Duration::from_secs(70);
    loop {
        let last = record(read_lines(&path).last().unwrap());
        if last.is_checkpoint() {
            assert_eq!(last.seq, seq + 1);
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint while idle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn exported_checkpoints_sign_the_head_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let log = open(&path, &signer(), 1000);
    assert!(matches!(
        log.export_checkpoint().await,
        Err(AuditError::Empty)
    ));
    for i in 1..=3 {
        log.append(event(i)).await.unwrap();
    }
    let cp = log.export_checkpoint().await.unwrap();
    assert_eq!(cp.head_seq, 3);
    cp.verify_signature().unwrap();
    // Nothing new: the same checkpoint, no new record.
    assert_eq!(log.export_checkpoint().await.unwrap(), cp);
    assert_eq!(read_lines(&path).len(), 4);
    assert_eq!(record(&read_lines(&path)[2]).hash, cp.head_hash);

    log.append(event(5)).await.unwrap();
    let report = log.verify(Some(&cp)).unwrap();
    assert!(report.is_ok() && report.trusted_matched, "{report}");
    assert_eq!(report.unsigned_records(), 1);
}

#[tokio::test]
async fn a_partial_last_line_is_cut_off_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let key = signer();
    let log = open(&path, &key, 1000);
    for i in 1..=3 {
        log.append(event(i)).await.unwrap();
    }
    drop(log);
    let good = std::fs::read(&path).unwrap();
    let mut torn = good.clone();
    torn.extend_from_slice(br#"{"seq":5,"time":"2024-01-01T00:00:00.000Z","act"#);
    std::fs::write(&path, &torn).unwrap();

    let report = verify(&path, None).unwrap();
    assert!(
        report.is_ok(),
        "an unfinished write is not tampering: {report}"
    );
    assert_eq!(report.torn_tail.map(|t| t.line), Some(5));

    let log = open(&path, &key, 1000);
    assert_eq!(
        log.recovery(),
        Some(&Recovery::TruncatedTail {
            offset: good.len() as u64,
            bytes: (torn.len() - good.len()) as u64,
        })
    );
    assert_eq!(log.append(event(5)).await.unwrap(), 5);
    drop(log);
    let report = verify(&path, None).unwrap();
    assert!(report.is_ok() && report.torn_tail.is_none(), "{report}");
}

#[tokio::test]
async fn a_complete_record_missing_only_its_newline_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let key = signer();
    let log = open(&path, &key, 1000);
    for i in 1..=3 {
        log.append(event(i)).await.unwrap();
    }
    drop(log);
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.pop(), Some(b'\n'));
    std::fs::write(&path, &bytes).unwrap();

    let log = open(&path, &key, 1000);
    assert_eq!(log.recovery(), Some(&Recovery::CompletedTail { seq: 4 }));
    assert_eq!(log.append(event(5)).await.unwrap(), 5);
    drop(log);
    assert!(verify(&path, None).unwrap().is_ok());
}

#[tokio::test]
async fn open_refuses_to_continue_a_damaged_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let key = signer();
    let log = open(&path, &key, 1000);
    for i in 1..=3 {
        log.append(event(i)).await.unwrap();
    }
    drop(log);
    let good = read_lines(&path);

    // The last record edited.
    let mut lines = good.clone();
    let last = lines.len() - 1;
    lines[last] = lines[last].replace(
        "audit.checkpoint\",\"target\":\"audit",
        "audit.checkpoint\",\"target\":\"other",
    );
    support::write_lines(&path, &lines);
    let err = AuditLog::open(&path, key.clone(), ManualClock::new(), options(1000)).unwrap_err();
    assert!(matches!(err, AuditError::TailCorrupt { .. }), "{err}");

    // A complete but foreign record without its newline is not guessed at.
    let mut lines = good.clone();
    let forged = lines[1].clone();
    support::write_lines(&path, &lines);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(forged.as_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = AuditLog::open(&path, key.clone(), ManualClock::new(), options(1000)).unwrap_err();
    assert!(matches!(err, AuditError::TailCorrupt { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was cut");

    lines.truncate(4);
    support::write_lines(&path, &lines);
    let other = signer();
    let err = AuditLog::open(&path, other, ManualClock::new(), options(1000)).unwrap_err();
    assert!(matches!(err, AuditError::KeyMismatch { .. }), "{err}");
}

#[tokio::test]
async fn one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let key = signer();
    let log = open(&path, &key, 1000);
    let err = AuditLog::open(&path, key.clone(), ManualClock::new(), options(1000)).unwrap_err();
    assert!(matches!(err, AuditError::Locked(_)), "{err}");
    log.close().unwrap();
    assert!(matches!(
        log.append(event(1)).await,
        Err(AuditError::Closed)
    ));
    drop(log);
    open(&path, &key, 1000);
}

#[tokio::test]
async fn invalid_events_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&log_path(dir.path()), &signer(), 1000);
    let forged = Event::new("system", CHECKPOINT_ACTION, "audit", Outcome::Success);
    assert!(matches!(
        log.append(forged.clone()).await,
        Err(AuditError::InvalidEvent(_))
    ));
    assert!(matches!(
        log.append_nowait(forged),
        Err(AuditError::InvalidEvent(_))
    ));
    let fractional = event(1).detail("temperature", 21.5);
    assert!(matches!(
        log.append(fractional).await,
        Err(AuditError::InvalidEvent(_))
    ));
    assert_eq!(log.append(event(1)).await.unwrap(), 1);
}

#[tokio::test]
async fn tail_and_query_read_back_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let clock = ManualClock::new();
    let log = AuditLog::open(&path, signer(), clock.clone(), options(1000)).unwrap();
    for i in 1..=9 {
        log.append(event(i)).await.unwrap();
        clock.advance(Duration::from_secs(1));
    }
    let last3: Vec<_> = tail(&path, 3).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(last3, vec![7, 8, 9]);
    assert_eq!(log.tail(100).unwrap().len(), 9);

    let seqs =
        |q: Query| -> Vec<u64> { query(&path, q).unwrap().map(|r| r.unwrap().seq).collect() };
    let denied = Query {
        outcome: Some(Outcome::Denied),
        ..Query::default()
    };
    assert_eq!(seqs(denied), vec![3, 6, 9]);
    let alice = Query {
        actor: Some("operator:alice".into()),
        limit: Some(2),
        ..Query::default()
    };
    assert_eq!(seqs(alice), vec![3, 6]);
    let devices = Query {
        action: Some("device.*".into()),
        ..Query::default()
    };
    assert_eq!(seqs(devices).len(), 6);
    assert!(
        seqs(Query {
            action: Some("device".into()),
            ..Query::default()
        })
        .is_empty()
    );
    let window = Query {
        since: Some(Timestamp::parse("2024-01-01T00:00:02Z").unwrap()),
        until: Some(Timestamp::parse("2024-01-01T01:00:05+01:00").unwrap()),
        ..Query::default()
    };
    assert_eq!(seqs(window), vec![3, 4, 5]);
}

#[test]
fn the_signing_key_is_sealed_by_the_kms() {
    let dir = tempfile::tempdir().unwrap();
    let mut ring = KeyRing::new(RootKey::from_bytes(Zeroizing::new([7; 32])));
    let kms_key = KeyId::new("audit").unwrap();
    ring.create_key(&kms_key, SystemTime::now()).unwrap();
    let path = sealed_key_path(dir.path());

    let created = load_or_create_signer(&path, &ring, &kms_key).unwrap();
    let loaded = load_or_create_signer(&path, &ring, &kms_key).unwrap();
    use civitas_audit::CheckpointSigner;
    assert_eq!(created.public_key(), loaded.public_key());

    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let sealed = std::fs::read(&path).unwrap();
    assert!(ring.decrypt(&sealed, &civitas_audit::kms_context()).is_ok());
    assert!(
        ring.decrypt(&sealed, &EncryptionContext::new()).is_err(),
        "bound to its purpose"
    );

    // Without the KMS key the seal cannot be opened.
    let other = KeyRing::new(RootKey::from_bytes(Zeroizing::new([8; 32])));
    assert!(matches!(
        load_or_create_signer(&path, &other, &kms_key),
        Err(AuditError::Kms(_))
    ));
    let _: Arc<dyn civitas_audit::CheckpointSigner> = Arc::new(loaded);
}

#[tokio::test]
async fn events_nobody_waits_for_share_a_write_when_they_come_faster_than_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let options = AuditOptions {
        commit_window: Duration::from_secs(2),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, signer(), ManualClock::new(), options).unwrap();
    // A command every few milliseconds, each recorded in passing: one at a
    // time they would each be a batch of their own (the writer is idle
    // between them), but the first opens a window the rest fall into.
    for i in 0..10 {
        log.append_nowait(event(i)).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Waiting for one more (within the window, too) waits for them all.
    log.append(event(10)).await.unwrap();
    let stats = log.stats();
    assert_eq!(stats.records, 11);
    assert!(stats.batches <= 2, "{stats:?}");
    log.close().unwrap();
    let report = verify(&path, None).unwrap();
    assert!(report.is_ok(), "{report}");
}

/// Polls `cond` every few milliseconds until it holds; panics after 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn events_nobody_waits_for_are_written_at_once_and_fsynced_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let options = AuditOptions {
        commit_window: Duration::ZERO,
        sync_interval: Duration::from_secs(3600),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, signer(), ManualClock::new(), options).unwrap();
    for i in 1..=5 {
        log.append_nowait(event(i)).unwrap();
    }
    // In the file (so a crash of the process loses none of them) before
    // any fsync: the interval has not passed.
    eventually("five records in the file", || read_lines(&path).len() == 5).await;
    assert_eq!(log.stats().syncs, 0, "{:?}", log.stats());
    // Waiting for one more makes it and all before it durable, at once.
    let started = Instant::now();
    assert_eq!(log.append(event(6)).await.unwrap(), 6);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(log.stats().syncs, 1, "{:?}", log.stats());
    log.close().unwrap();
    let report = verify(&path, None).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 7, "six events and the closing checkpoint");
}

#[tokio::test]
async fn writes_nobody_waited_for_are_fsynced_once_the_sync_interval_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let options = AuditOptions {
        commit_window: Duration::ZERO,
        sync_interval: Duration::from_millis(50),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, signer(), ManualClock::new(), options).unwrap();
    let started = Instant::now();
    for i in 1..=3 {
        log.append_nowait(event(i)).unwrap();
    }
    // Nothing else arrives: the writer fsyncs on its own, once, after the
    // interval (not per event, not never).
    eventually("the deferred fsync", || log.stats().syncs == 1).await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    let stats = log.stats();
    assert_eq!((stats.records, stats.syncs), (3, 1), "{stats:?}");
    log.close().unwrap();
}

#[tokio::test]
async fn a_burst_within_the_commit_window_shares_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(dir.path());
    let options = AuditOptions {
        commit_window: Duration::from_secs(1),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, signer(), ManualClock::new(), options).unwrap();
    // A lone caller waiting for each append is never held by the window.
    let started = Instant::now();
    for i in 0..3 {
        log.append(event(i)).await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(log.stats().batches, 3);
    // A burst, then another right after it: the second follows a batch of
    // several requests within the window, so it waits and goes in whole.
    let burst = |from: u64| -> Vec<_> { (from..from + 40).map(|i| log.append(event(i))).collect() };
    for wait in burst(100) {
        wait.await.unwrap();
    }
    let before = log.stats().batches;
    for wait in burst(200) {
        wait.await.unwrap();
    }
    let stats = log.stats();
    assert_eq!(stats.records, 83);
    assert!(stats.batches - before <= 2, "{stats:?}");
    log.close().unwrap();
    let report = verify(&path, None).unwrap();
    assert!(report.is_ok(), "{report}");
}
