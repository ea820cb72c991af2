//! Hand-built wire bytes and assertions for the decoder error tests.

use bytes::BytesMut;
use civitas_mqtt::*;

pub const V311: Option<Protocol> = Some(Protocol::V311);
pub const V5: Option<Protocol> = Some(Protocol::V5);

/// A packet: first byte, remaining length, body.
pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len & 0x7f) as u8;
        len >>= 7;
        if len > 0 {
            b |= 0x80;
        }
        v.push(b);
        if len == 0 {
            break;
        }
    }
    v.extend_from_slice(body);
    v
}

pub fn s(text: &str) -> Vec<u8> {
    let mut v = (text.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(text.as_bytes());
    v
}

/// A CONNECT body: name, level, flags, keep alive, then `rest`.
pub fn connect(name: &str, level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = s(name);
    body.extend_from_slice(&[level, flags, 0, 60]);
    body.extend_from_slice(rest);
    frame(0x10, &body)
}

pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub fn decode_err(bytes: &[u8], protocol: Option<Protocol>) -> DecodeError {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, protocol, 1 << 20) {
        Err(e) => e,
        Ok(p) => panic!("{bytes:02x?} decoded to {p:?}"),
    }
}

pub fn check(bytes: &[u8], protocol: Option<Protocol>, want: impl Into<DecodeError>, code: u8) {
    let want = want.into();
    let got = decode_err(bytes, protocol);
    assert_eq!(got, want, "{bytes:02x?}");
    assert_eq!(got.reason_code(), ReasonCode(code), "{got}");
    assert!(!got.to_string().is_empty());
}

pub fn ok(bytes: &[u8], protocol: Option<Protocol>) -> Packet {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, protocol, 1 << 20) {
        Ok(Some(p)) if buf.is_empty() => p,
        other => panic!("{bytes:02x?}: {other:?}"),
    }
}
