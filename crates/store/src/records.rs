//! The records the broker persists and the ops that change them.
//!
//! These are plain data: the broker builds them, `codec` turns them into
//! bytes, and the table modules decide where the bytes live.

use bytes::Bytes;
use civitas_mqtt::{PublishProperties, QoS, SubscriptionOptions};

use crate::telemetry::TelemetryBlockKey;

/// An application message as stored (retained, queued, or a will).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Absolute expiry time, unix ms (from MQTT 5 message expiry interval).
    pub expires_at_ms: Option<u64>,
    /// PUBLISH properties to forward (topic_alias and
    /// subscription_identifiers are not stored: they belong to one
    /// connection's delivery, not to the message).
    pub properties: PublishProperties,
    pub received_at_ms: u64,
}

/// A client's session state that outlives its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub client_id: String,
    pub protocol_level: u8,
    /// Seconds; `u32::MAX` means the session never expires.
    pub session_expiry_interval: u32,
    /// `None` while connected.
    pub disconnected_at_ms: Option<u64>,
    pub subscriptions: Vec<StoredSubscription>,
    /// Kept so that a will delay survives a restart.
    pub will: Option<StoredWill>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The full filter, including any `$share/<group>/` prefix.
    pub filter: String,
    pub options: SubscriptionOptions,
    pub subscription_identifier: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWill {
    pub message: StoredMessage,
    pub delay_interval: u32,
    /// When the will is due, unix ms; set once the connection is gone.
    pub publish_at_ms: Option<u64>,
}

/// Where an outbound message stands in its QoS flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboundState {
    /// Not yet sent (or sent at QoS 0 and not acknowledged by design).
    Queued,
    /// QoS 1 PUBLISH sent.
    AwaitingPubAck,
    /// QoS 2 PUBLISH sent.
    AwaitingPubRec,
    /// PUBREL sent.
    AwaitingPubComp,
}

/// A message waiting in, or in flight from, a session's outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub message: StoredMessage,
    pub packet_id: Option<u16>,
    pub state: OutboundState,
    /// The QoS it is delivered with (the minimum of message and subscription).
    pub qos: QoS,
    pub subscription_identifiers: Vec<u32>,
}

/// One change to the stored state. Ops given to one `commit`/`submit`
/// call are applied atomically and in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    PutRetained {
        topic: String,
        message: StoredMessage,
    },
    DeleteRetained {
        topic: String,
    },
    /// Insert or replace.
    PutSession(SessionRecord),
    /// Also deletes the session's outbound queue and incoming QoS 2 ids.
    DeleteSession {
        client_id: String,
    },
    /// Insert or replace.
    PutOutbound {
        client_id: String,
        seq: u64,
        message: OutboundMessage,
    },
    DeleteOutbound {
        client_id: String,
        seq: u64,
    },
    /// PUBREC sent, waiting for PUBREL.
    PutIncomingQos2 {
        client_id: String,
        packet_id: u16,
    },
    DeleteIncomingQos2 {
        client_id: String,
        packet_id: u16,
    },
    /// Insert or replace (a live shadow or a tombstone).
    PutShadow(ShadowRecord),
    /// Forgets the shadow entirely, version counter included.
    DeleteShadow {
        thing: String,
        /// Empty for the classic (unnamed) shadow.
        shadow: String,
    },
    /// Insert or replace the header of an unsealed telemetry block. Sending
    /// it again with each chunk until one commit holding it has succeeded
    /// means no committed chunk is ever without its header.
    OpenTelemetryBlock {
        key: TelemetryBlockKey,
        header: Vec<u8>,
    },
    /// Insert or replace one chunk of an unsealed telemetry block.
    PutTelemetryChunk {
        key: TelemetryBlockKey,
        seq: u32,
        bytes: Vec<u8>,
    },
    /// Moves an unsealed block's header and chunks into one sealed row with
    /// `footer` — only if it holds exactly `chunks` chunks; otherwise the
    /// block stays unsealed (and the op still succeeds).
    SealTelemetryBlock {
        key: TelemetryBlockKey,
        chunks: u32,
        footer: Vec<u8>,
    },
    /// Drops every block of `thing`, sealed or not, whose period starts
    /// before `before_period_ms`.
    DropTelemetry {
        thing: String,
        before_period_ms: u64,
    },
    /// Records the telemetry period length.
    SetTelemetryPeriod {
        period_ms: u64,
    },
    /// Insert or replace a rules engine rule.
    PutRule(RuleRecord),
    DeleteRule {
        name: String,
    },
}

/// A rules engine rule as stored: its name and its document, kept as
/// opaque JSON bytes (the rules engine owns their meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRecord {
    pub name: String,
    pub document: Vec<u8>,
    /// Unix ms.
    pub created_at_ms: u64,
    /// Unix ms.
    pub updated_at_ms: u64,
}

/// A device shadow as stored. The store keeps the document as opaque JSON
/// bytes; the shadow service owns their meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowRecord {
    pub thing: String,
    /// Empty for the classic (unnamed) shadow; AWS shadow names are never
    /// empty, so the two cannot collide.
    pub shadow: String,
    /// The version of the last accepted update. A deleted shadow keeps it so
    /// that a shadow re-created soon after continues the count.
    pub version: u64,
    /// When the shadow was last updated or deleted, unix ms.
    pub updated_at_ms: u64,
    /// The document (state and metadata); `None` once the shadow is deleted.
    pub document: Option<Vec<u8>>,
}

/// Everything the broker needs at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerState {
    /// Ordered by topic.
    pub retained: Vec<StoredMessage>,
    /// Ordered by client id.
    pub sessions: Vec<PersistedSession>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedSession {
    pub record: SessionRecord,
    /// Ascending seq.
    pub outbound: Vec<(u64, OutboundMessage)>,
    /// Ascending packet id.
    pub incoming_qos2: Vec<u16>,
}
