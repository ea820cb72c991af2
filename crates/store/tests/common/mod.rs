//! Fixtures shared by the store's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use bytes::Bytes;
use civitas_mqtt::{PublishProperties, QoS, RetainHandling, SubscriptionOptions};
use civitas_store::{
    OutboundMessage, OutboundState, SessionRecord, Store, StoreOptions, StoredMessage,
    StoredSubscription, StoredWill,
};
use tempfile::TempDir;

/// A directory on the target's disk (not a tmpfs), so fsync is real.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("store-test")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

pub fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("state.redb")
}

pub fn open(dir: &TempDir) -> Store {
    Store::open(&db_path(dir), StoreOptions::default()).expect("open store")
}

/// A message with every stored property set.
pub fn full_message(topic: &str) -> StoredMessage {
    StoredMessage {
        topic: topic.to_owned(),
        payload: Bytes::from_static(b"\x00\x01payload\xff"),
        qos: QoS::ExactlyOnce,
        retain: true,
        expires_at_ms: Some(1_700_000_123_456),
        properties: PublishProperties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(3600),
            topic_alias: None,
            response_topic: Some("reply/here".into()),
            correlation_data: Some(Bytes::from_static(b"corr")),
            user_properties: vec![
                ("k".into(), "v1".into()),
                ("k".into(), "v2".into()),
                ("ünï".into(), String::new()),
            ],
            subscription_identifiers: Vec::new(),
            content_type: Some("application/json".into()),
        },
        received_at_ms: 1_700_000_000_000,
    }
}

/// A message with nothing optional set.
pub fn bare_message(topic: &str, payload: &'static [u8]) -> StoredMessage {
    StoredMessage {
        topic: topic.to_owned(),
        payload: Bytes::from_static(payload),
        qos: QoS::AtMostOnce,
        retain: false,
        expires_at_ms: None,
        properties: PublishProperties::default(),
        received_at_ms: 0,
    }
}

pub fn full_session(client_id: &str) -> SessionRecord {
    SessionRecord {
        client_id: client_id.to_owned(),
        protocol_level: 5,
        session_expiry_interval: u32::MAX,
        disconnected_at_ms: Some(1_700_000_000_999),
        subscriptions: vec![
            StoredSubscription {
                filter: "sensors/+/temp".into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendIfNew,
                },
                subscription_identifier: Some(268_435_455),
            },
            StoredSubscription {
                filter: "$share/g1/alerts/#".into(),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: false,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
                subscription_identifier: None,
            },
        ],
        will: Some(StoredWill {
            message: full_message("clients/gone"),
            delay_interval: 30,
            publish_at_ms: Some(1_700_000_030_999),
        }),
    }
}

pub fn bare_session(client_id: &str) -> SessionRecord {
    SessionRecord {
        client_id: client_id.to_owned(),
        protocol_level: 4,
        session_expiry_interval: 0,
        disconnected_at_ms: None,
        subscriptions: Vec::new(),
        will: None,
    }
}

pub fn outbound(topic: &str, state: OutboundState, packet_id: Option<u16>) -> OutboundMessage {
    OutboundMessage {
        message: full_message(topic),
        packet_id,
        state,
        qos: QoS::AtLeastOnce,
        subscription_identifiers: vec![1, 268_435_455],
    }
}
