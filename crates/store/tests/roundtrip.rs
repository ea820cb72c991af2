//! Every op and record type survives close and reopen; ops apply in order.

mod common;

use civitas_mqtt::QoS;
use civitas_store::{BrokerState, Op, OutboundState, PersistedSession, StoreError};
use common::*;

#[tokio::test]
async fn empty_store_loads_empty_state() {
    let dir = temp_dir();
    let store = open(&dir);
    assert_eq!(store.load_broker_state().unwrap(), BrokerState::default());
    store.close().unwrap();
    let store = open(&dir);
    assert_eq!(store.load_broker_state().unwrap(), BrokerState::default());
}

#[tokio::test]
async fn every_record_type_survives_reopen() {
    let dir = temp_dir();
    let store = open(&dir);
    let states = [
        OutboundState::Queued,
        OutboundState::AwaitingPubAck,
        OutboundState::AwaitingPubRec,
        OutboundState::AwaitingPubComp,
    ];
    let mut ops = vec![
        Op::PutRetained {
            topic: "a/full".into(),
            message: full_message("a/full"),
        },
        Op::PutRetained {
            topic: "b/bare".into(),
            message: bare_message("b/bare", b""),
        },
        Op::PutSession(full_session("full")),
        Op::PutSession(bare_session("bare")),
        Op::PutIncomingQos2 {
            client_id: "full".into(),
            packet_id: 65535,
        },
        Op::PutIncomingQos2 {
            client_id: "full".into(),
            packet_id: 1,
        },
    ];
    for (i, state) in states.iter().enumerate() {
        let mut m = outbound("q/t", *state, Some(i as u16 + 1));
        if i == 0 {
            m.packet_id = None;
            m.qos = QoS::AtMostOnce;
            m.subscription_identifiers.clear();
            m.message = bare_message("q/t", b"x");
        }
        ops.push(Op::PutOutbound {
            client_id: "full".into(),
            // Out of order on purpose: load returns ascending seq.
            seq: 10 - i as u64,
            message: m,
        });
    }
    store.commit(ops).await.unwrap();
    let before = store.load_broker_state().unwrap();
    store.close().unwrap();

    let store = open(&dir);
    let after = store.load_broker_state().unwrap();
    assert_eq!(before, after);

    assert_eq!(
        after.retained,
        vec![full_message("a/full"), bare_message("b/bare", b"")]
    );
    assert_eq!(after.sessions.len(), 2);
    assert_eq!(
        after.sessions[0],
        PersistedSession {
            record: bare_session("bare"),
            outbound: vec![],
            incoming_qos2: vec![],
        }
    );
    let full = &after.sessions[1];
    assert_eq!(full.record, full_session("full"));
    assert_eq!(full.incoming_qos2, vec![1, 65535]);
    let seqs: Vec<u64> = full.outbound.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![7, 8, 9, 10]);
    let got: Vec<OutboundState> = full.outbound.iter().map(|(_, m)| m.state).collect();
    assert_eq!(
        got,
        vec![
            OutboundState::AwaitingPubComp,
            OutboundState::AwaitingPubRec,
            OutboundState::AwaitingPubAck,
            OutboundState::Queued,
        ]
    );
    assert_eq!(full.outbound[3].1.packet_id, None);
    assert_eq!(
        full.outbound[0].1,
        outbound("q/t", OutboundState::AwaitingPubComp, Some(4))
    );
}

#[tokio::test]
async fn deletes_survive_reopen() {
    let dir = temp_dir();
    let store = open(&dir);
    store
        .commit(vec![
            Op::PutRetained {
                topic: "keep".into(),
                message: bare_message("keep", b"1"),
            },
            Op::PutRetained {
                topic: "drop".into(),
                message: bare_message("drop", b"2"),
            },
            Op::PutSession(bare_session("c")),
            Op::PutOutbound {
                client_id: "c".into(),
                seq: 1,
                message: outbound("t", OutboundState::Queued, None),
            },
            Op::PutOutbound {
                client_id: "c".into(),
                seq: 2,
                message: outbound("t", OutboundState::Queued, None),
            },
            Op::PutIncomingQos2 {
                client_id: "c".into(),
                packet_id: 7,
            },
            Op::PutIncomingQos2 {
                client_id: "c".into(),
                packet_id: 8,
            },
        ])
        .await
        .unwrap();
    store
        .commit(vec![
            Op::DeleteRetained {
                topic: "drop".into(),
            },
            Op::DeleteOutbound {
                client_id: "c".into(),
                seq: 1,
            },
            Op::DeleteIncomingQos2 {
                client_id: "c".into(),
                packet_id: 8,
            },
            // Deleting what is not there is not an error.
            Op::DeleteRetained {
                topic: "never".into(),
            },
            Op::DeleteSession {
                client_id: "nobody".into(),
            },
        ])
        .await
        .unwrap();
    store.close().unwrap();

    let state = open(&dir).load_broker_state().unwrap();
    assert_eq!(state.retained, vec![bare_message("keep", b"1")]);
    assert_eq!(state.sessions.len(), 1);
    let s = &state.sessions[0];
    assert_eq!(
        s.outbound.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(s.incoming_qos2, vec![7]);
}

#[tokio::test]
async fn delete_session_removes_its_queue_and_qos2_ids_only() {
    let dir = temp_dir();
    let store = open(&dir);
    let mut ops = Vec::new();
    // "a" and "ab" share a prefix: the range delete must not reach across.
    for client in ["a", "ab", "b"] {
        ops.push(Op::PutSession(bare_session(client)));
        for seq in [0, 1, u64::MAX] {
            ops.push(Op::PutOutbound {
                client_id: client.into(),
                seq,
                message: outbound("t", OutboundState::Queued, None),
            });
        }
        for packet_id in [0, 9, u16::MAX] {
            ops.push(Op::PutIncomingQos2 {
                client_id: client.into(),
                packet_id,
            });
        }
    }
    store.commit(ops).await.unwrap();
    store
        .commit(vec![Op::DeleteSession {
            client_id: "a".into(),
        }])
        .await
        .unwrap();
    store.close().unwrap();

    let state = open(&dir).load_broker_state().unwrap();
    let ids: Vec<&str> = state
        .sessions
        .iter()
        .map(|s| s.record.client_id.as_str())
        .collect();
    assert_eq!(ids, vec!["ab", "b"]);
    for s in &state.sessions {
        assert_eq!(
            s.outbound.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            vec![0, 1, u64::MAX]
        );
        assert_eq!(s.incoming_qos2, vec![0, 9, u16::MAX]);
    }

    // A session re-created under the same id starts with nothing queued.
    let store = open(&dir);
    store
        .commit(vec![Op::PutSession(bare_session("a"))])
        .await
        .unwrap();
    let state = store.load_broker_state().unwrap();
    assert!(state.sessions[0].outbound.is_empty());
    assert!(state.sessions[0].incoming_qos2.is_empty());
}

#[tokio::test]
async fn ops_apply_in_call_order_across_submit_and_commit() {
    let dir = temp_dir();
    let store = open(&dir);
    // Each call overwrites the same keys; the last call must win, whether
    // the calls landed in one batch or several.
    for i in 0..200u32 {
        let mut session = bare_session("c");
        session.session_expiry_interval = i;
        let mut message = bare_message("t", b"");
        message.received_at_ms = u64::from(i);
        let ops = vec![
            Op::PutSession(session),
            Op::PutRetained {
                topic: "t".into(),
                message,
            },
        ];
        if i % 3 == 0 {
            store.commit(ops).await.unwrap();
        } else {
            store.submit(ops);
        }
        if i % 50 == 0 {
            // Delete then put again in one later call: order inside a call
            // matters too.
            store.submit(vec![
                Op::DeleteRetained { topic: "t".into() },
                Op::DeleteSession {
                    client_id: "c".into(),
                },
            ]);
        }
    }
    store.close().unwrap();

    let state = open(&dir).load_broker_state().unwrap();
    assert_eq!(state.sessions.len(), 1);
    assert_eq!(state.sessions[0].record.session_expiry_interval, 199);
    assert_eq!(state.retained.len(), 1);
    assert_eq!(state.retained[0].received_at_ms, 199);
}

#[tokio::test]
async fn a_commit_is_queued_when_called_not_when_awaited() {
    let dir = temp_dir();
    let store = open(&dir);
    let mut first = bare_session("c");
    first.session_expiry_interval = 1;
    let mut second = bare_session("c");
    second.session_expiry_interval = 2;

    let pending = store.commit(vec![Op::PutSession(first)]);
    store.submit(vec![Op::PutSession(second)]);
    // The future outlives the handle it came from and can be spawned.
    drop(store);
    tokio::spawn(pending).await.unwrap().unwrap();

    let state = open(&dir).load_broker_state().unwrap();
    assert_eq!(state.sessions[0].record.session_expiry_interval, 2);
}

#[tokio::test]
async fn a_commit_sees_every_earlier_submit() {
    let dir = temp_dir();
    let store = open(&dir);
    for seq in 0..100 {
        store.submit(vec![Op::PutOutbound {
            client_id: "c".into(),
            seq,
            message: outbound("t", OutboundState::Queued, None),
        }]);
    }
    store
        .commit(vec![Op::PutSession(bare_session("c"))])
        .await
        .unwrap();
    // No close: the commit alone guarantees the earlier submits are durable.
    let state = store.load_broker_state().unwrap();
    assert_eq!(state.sessions[0].outbound.len(), 100);
}

#[tokio::test]
async fn closed_store_refuses_work_and_releases_the_file() {
    let dir = temp_dir();
    let store = open(&dir);
    let clone = store.clone();
    store.submit(vec![Op::PutSession(bare_session("c"))]);
    store.close().unwrap();
    // Closing again, from any clone, is harmless.
    clone.close().unwrap();
    assert!(matches!(
        clone.commit(vec![]).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(clone.load_broker_state(), Err(StoreError::Closed)));
    clone.submit(vec![Op::DeleteSession {
        client_id: "c".into(),
    }]);

    // The clone is still alive, yet the file can be opened again.
    let reopened = open(&dir);
    assert_eq!(reopened.load_broker_state().unwrap().sessions.len(), 1);
}

#[tokio::test]
async fn dropping_the_last_handle_flushes_submitted_ops() {
    let dir = temp_dir();
    {
        let store = open(&dir);
        store.submit(vec![Op::PutSession(bare_session("c"))]);
    }
    let state = open(&dir).load_broker_state().unwrap();
    assert_eq!(state.sessions[0].record, bare_session("c"));
}

#[tokio::test]
async fn empty_commit_is_a_barrier() {
    let dir = temp_dir();
    let store = open(&dir);
    store.submit(vec![Op::PutSession(bare_session("c"))]);
    store.commit(Vec::new()).await.unwrap();
    assert_eq!(store.load_broker_state().unwrap().sessions.len(), 1);
}
