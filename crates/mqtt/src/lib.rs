//! MQTT 3.1.1 and 5.0 for civitas: the packet model, a decoder and an
//! encoder for every control packet, topic name and filter rules, and
//! wildcard matching. Pure: no I/O, no clocks, no globals, so it can be
//! property-tested and fuzzed on its own.

pub mod types;

pub use types::*;
