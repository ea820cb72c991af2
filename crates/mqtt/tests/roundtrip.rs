//! Property tests of the codec: every valid packet of every type survives
//! encode then decode in both protocol versions, `encoded_len` is exact, and
//! no input, however broken, makes the decoder panic.

use bytes::BytesMut;
use civitas_mqtt::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;

mod common;

use common::strategies::{any_protocol, packet};

const MAX: u32 = 1 << 24;
fn encode_vec(p: &Packet, protocol: Protocol) -> BytesMut {
    let mut out = BytesMut::new();
    encode(p, protocol, &mut out).expect("a valid packet encodes");
    out
}

/// The protocol a packet is encoded for: a CONNECT always uses its own.
fn wire_protocol(p: &Packet, protocol: Protocol) -> Protocol {
    match p {
        Packet::Connect(c) => c.protocol,
        _ => protocol,
    }
}

/// Decodes packets from `buf` until it runs dry or fails, re-encoding each
/// one and checking that decodes to the same packet again.
fn decode_and_reencode(mut buf: BytesMut, mut protocol: Option<Protocol>, max: u32) {
    loop {
        let before = buf.clone();
        match decode(&mut buf, protocol, max) {
            Ok(Some(p)) => {
                let proto = wire_protocol(&p, protocol.unwrap_or(Protocol::V5));
                let mut again = encode_vec(&p, proto);
                assert_eq!(again.len(), encoded_len(&p, proto));
                let ctx = if matches!(p, Packet::Connect(_)) {
                    None
                } else {
                    Some(proto)
                };
                assert_eq!(decode(&mut again, ctx, MAX), Ok(Some(p.clone())));
                assert!(again.is_empty());
                if let Packet::Connect(c) = &p {
                    protocol = Some(c.protocol);
                }
            }
            Ok(None) => {
                assert_eq!(buf, before, "an incomplete packet is not consumed");
                return;
            }
            Err(e) => {
                let _ = e.reason_code();
                return;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn v311_packets_round_trip(p in packet(Protocol::V311)) {
        let mut buf = encode_vec(&p, Protocol::V311);
        prop_assert_eq!(buf.len(), encoded_len(&p, Protocol::V311));
        let ctx = if matches!(p, Packet::Connect(_)) { None } else { Some(Protocol::V311) };
        prop_assert_eq!(decode(&mut buf, ctx, MAX), Ok(Some(p)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn v5_packets_round_trip(p in packet(Protocol::V5)) {
        let mut buf = encode_vec(&p, Protocol::V5);
        prop_assert_eq!(buf.len(), encoded_len(&p, Protocol::V5));
        let ctx = if matches!(p, Packet::Connect(_)) { None } else { Some(Protocol::V5) };
        prop_assert_eq!(decode(&mut buf, ctx, MAX), Ok(Some(p)));
        prop_assert!(buf.is_empty());
    }

    /// A V5 packet sent to a 3.1.1 peer loses what 3.1.1 cannot say, but
    /// the size is still exact.
    #[test]
    fn encoded_len_is_exact_across_versions(p in packet(Protocol::V5), protocol in any_protocol()) {
        let mut out = BytesMut::from(&b"prefix"[..]);
        match encode(&p, protocol, &mut out) {
            Ok(()) => prop_assert_eq!(out.len() - 6, encoded_len(&p, protocol)),
            Err(_) => prop_assert_eq!(&out[..], b"prefix"),
        }
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..96),
        protocol in of(any_protocol()),
        max in select(vec![0u32, 2, 16, MAX]),
    ) {
        decode_and_reencode(BytesMut::from(&bytes[..]), protocol, max);
    }

    /// Arbitrary bytes rarely get past the fixed header; these start from
    /// a plausible header.
    #[test]
    fn decode_never_panics_behind_a_valid_header(
        first in select(vec![0x10u8, 0x20, 0x30, 0x32, 0x3d, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xa2, 0xb0, 0xe0, 0xf0]),
        body in vec(any::<u8>(), 0..80),
        protocol in any_protocol(),
    ) {
        let mut bytes = vec![first, body.len() as u8];
        bytes.extend_from_slice(&body);
        let ctx = if first == 0x10 { None } else { Some(protocol) };
        decode_and_reencode(BytesMut::from(&bytes[..]), ctx, MAX);
    }

    #[test]
    fn truncated_encodings_are_incomplete(p in packet(Protocol::V5), protocol in any_protocol(), cut in any::<prop::sample::Index>()) {
        if let Ok(()) = encode(&p, protocol, &mut BytesMut::new()) {
            let full = encode_vec(&p, protocol);
            let cut = cut.index(full.len());
            let mut buf = BytesMut::from(&full[..cut]);
            let ctx = if matches!(p, Packet::Connect(_)) { None } else { Some(protocol) };
            prop_assert_eq!(decode(&mut buf, ctx, MAX), Ok(None));
            prop_assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn mutated_encodings_never_panic(
        p in packet(Protocol::V5),
        protocol in any_protocol(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4),
    ) {
        let proto = wire_protocol(&p, protocol);
        if matches!(p, Packet::Auth(_)) && proto == Protocol::V311 {
            return Ok(());
        }
        let mut bytes = encode_vec(&p, proto).to_vec();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        let ctx = if matches!(p, Packet::Connect(_)) { None } else { Some(proto) };
        decode_and_reencode(BytesMut::from(&bytes[..]), ctx, MAX);
    }
}
