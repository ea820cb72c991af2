//! Feeds arbitrary bytes to the MQTT decoder under every protocol setting
//! (before CONNECT, 3.1.1, 5.0). It must never panic, and every packet it
//! accepts must encode to bytes that decode to the same packet.

#![no_main]

use bytes::BytesMut;
use civitas_mqtt::{Packet, Protocol, decode, encode, encoded_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for protocol in [None, Some(Protocol::V311), Some(Protocol::V5)] {
        decode_all(data, protocol);
    }
});

fn decode_all(data: &[u8], mut protocol: Option<Protocol>) {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match decode(&mut buf, protocol, u32::MAX) {
            Ok(Some(packet)) => {
                let wire = match &packet {
                    Packet::Connect(c) => c.protocol,
                    _ => protocol.unwrap_or(Protocol::V5),
                };
                round_trip(&packet, wire);
                if let Packet::Connect(c) = &packet {
                    protocol = Some(c.protocol);
                }
            }
            Ok(None) => {
                assert_eq!(
                    buf.len(),
                    before,
                    "an incomplete packet must not be consumed"
                );
                return;
            }
            Err(e) => {
                let _ = e.reason_code();
                let _ = e.to_string();
                return;
            }
        }
    }
}

fn round_trip(packet: &Packet, protocol: Protocol) {
    let mut out = BytesMut::new();
    if let Err(e) = encode(packet, protocol, &mut out) {
        panic!("decoded packet does not encode: {e}: {packet:?}");
    }
    assert_eq!(
        out.len(),
        encoded_len(packet, protocol),
        "encoded_len of {packet:?}"
    );
    let ctx = match packet {
        Packet::Connect(_) => None,
        _ => Some(protocol),
    };
    let again = decode(&mut out, ctx, u32::MAX);
    assert_eq!(
        again.as_ref().ok().and_then(|p| p.as_ref()),
        Some(packet),
        "{again:?}"
    );
    assert!(
        out.is_empty(),
        "re-encoded packet decodes with bytes left over"
    );
}
