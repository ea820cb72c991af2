//! MQTT 3.1.1 and 5.0 for civitas: the packet model, a decoder and an
//! encoder for every control packet, topic name and filter rules, and
//! wildcard matching. Pure: no I/O, no clocks, no globals, so it can be
//! property-tested and fuzzed on its own.

pub mod error;
mod packet;
mod primitives;
mod properties;
pub mod reason;
pub mod topic;
pub mod tree;
pub mod types;

pub use error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
pub use packet::{decode, encode, encoded_len};
pub use topic::{
    SharedFilter, TopicError, matches, parse_shared, validate_topic_filter, validate_topic_name,
};
pub use tree::TopicTree;
pub use types::*;
