//! The MQTT data representations (section 1.5 of both specifications):
//! integers, variable byte integers, length-prefixed binary data and UTF-8
//! strings, read from a packet body and written to an output buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError, Malformed};

/// The largest value a variable byte integer can hold.
pub(crate) const VARINT_MAX: u32 = 268_435_455;

/// Parses a variable byte integer at the front of `b`. `Ok(None)` when `b`
/// ends before the integer does; otherwise the value and its length.
pub(crate) fn parse_varint(
    b: &[u8],
    what: &'static str,
) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &byte) in b.iter().enumerate().take(4) {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            // A zero final byte after a continuation byte means the encoder
            // used more bytes than needed, which MQTT forbids.
            if i > 0 && byte == 0 {
                return Err(Malformed::InvalidVarInt { what }.into());
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if b.len() >= 4 {
        return Err(Malformed::InvalidVarInt { what }.into());
    }
    Ok(None)
}

/// Number of bytes the variable byte integer encoding of `v` takes.
pub(crate) fn varint_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `v`, which the caller has checked is at most [`VARINT_MAX`].
pub(crate) fn put_varint(out: &mut BytesMut, v: usize) {
    let mut v = v;
    loop {
        let mut byte = (v & 0x7f) as u8;
        v >>= 7;
        if v > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if v == 0 {
            break;
        }
    }
}

/// Writes a variable byte integer that came from the packet model, where
/// nothing guarantees the range.
pub(crate) fn put_checked_varint(
    out: &mut BytesMut,
    v: u32,
    what: &'static str,
) -> Result<(), EncodeError> {
    if v > VARINT_MAX {
        return Err(EncodeError::VarIntTooLarge {
            what,
            value: u64::from(v),
        });
    }
    put_varint(out, v as usize);
    Ok(())
}

/// Writes a two-byte length prefix and the bytes.
pub(crate) fn put_binary(
    out: &mut BytesMut,
    b: &[u8],
    what: &'static str,
) -> Result<(), EncodeError> {
    let len =
        u16::try_from(b.len()).map_err(|_| EncodeError::FieldTooLong { what, len: b.len() })?;
    out.put_u16(len);
    out.put_slice(b);
    Ok(())
}

/// Size of a length-prefixed string or binary field.
pub(crate) fn prefixed_len(b: &[u8]) -> usize {
    2 + b.len()
}

/// A cursor over a packet body. Every read names what it reads so a short
/// packet is reported precisely.
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn need(&self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            return Err(Malformed::Truncated { what }.into());
        }
        Ok(())
    }

    /// The next `n` bytes as a slice of the packet (no copy).
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        self.need(n, what)?;
        Ok(self.buf.split_to(n))
    }

    // Fixed-size reads advance in place rather than slicing, which would
    // touch the shared reference count for every field.

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        self.need(1, what)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.need(2, what)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.need(4, what)?;
        Ok(self.buf.get_u32())
    }

    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        match parse_varint(&self.buf, what)? {
            Some((v, n)) => {
                self.buf.advance(n);
                Ok(v)
            }
            None => Err(Malformed::Truncated { what }.into()),
        }
    }

    /// Length-prefixed binary data, as a slice of the packet (no copy).
    pub(crate) fn binary(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    /// A UTF-8 encoded string: valid UTF-8 (which already excludes
    /// surrogates) and no U+0000.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let len = usize::from(self.u16(what)?);
        self.need(len, what)?;
        let s =
            std::str::from_utf8(&self.buf[..len]).map_err(|_| Malformed::InvalidUtf8 { what })?;
        if s.contains('\0') {
            return Err(Malformed::NullCharacter { what }.into());
        }
        let owned = s.to_owned();
        self.buf.advance(len);
        Ok(owned)
    }

    /// Everything left, as a slice of the packet (no copy).
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Fails unless the whole body has been consumed.
    pub(crate) fn finish(&self, packet: &'static str) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Malformed::TrailingBytes {
                packet,
                count: self.buf.len(),
            }
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: usize) -> Vec<u8> {
        let mut out = BytesMut::new();
        put_varint(&mut out, v);
        out.to_vec()
    }

    #[test]
    fn varint_boundaries_from_the_spec() {
        for (v, bytes) in [
            (0usize, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (16_383, vec![0xff, 0x7f]),
            (16_384, vec![0x80, 0x80, 0x01]),
            (2_097_151, vec![0xff, 0xff, 0x7f]),
            (2_097_152, vec![0x80, 0x80, 0x80, 0x01]),
            (268_435_455, vec![0xff, 0xff, 0xff, 0x7f]),
        ] {
            assert_eq!(encode(v), bytes, "{v}");
            assert_eq!(varint_len(v), bytes.len());
            assert_eq!(
                parse_varint(&bytes, "x").unwrap(),
                Some((v as u32, bytes.len()))
            );
        }
    }

    #[test]
    fn varint_incomplete_and_invalid() {
        assert_eq!(parse_varint(&[], "x").unwrap(), None);
        assert_eq!(parse_varint(&[0x80, 0x80, 0x80], "x").unwrap(), None);
        assert!(parse_varint(&[0x80, 0x80, 0x80, 0x80], "x").is_err());
        assert!(parse_varint(&[0xff, 0xff, 0xff, 0xff, 0x01], "x").is_err());
        // Non-minimal encodings of 0 and 1.
        assert!(parse_varint(&[0x80, 0x00], "x").is_err());
        assert!(parse_varint(&[0x81, 0x80, 0x00], "x").is_err());
    }

    #[test]
    fn strings_reject_invalid_utf8_and_nul() {
        let mut r = Reader::new(Bytes::from_static(&[0, 2, 0xc3, 0x28]));
        assert!(matches!(
            r.string("s"),
            Err(DecodeError::Malformed(Malformed::InvalidUtf8 { .. }))
        ));
        // An encoded surrogate (U+D800) is not UTF-8.
        let mut r = Reader::new(Bytes::from_static(&[0, 3, 0xed, 0xa0, 0x80]));
        assert!(matches!(
            r.string("s"),
            Err(DecodeError::Malformed(Malformed::InvalidUtf8 { .. }))
        ));
        let mut r = Reader::new(Bytes::from_static(&[0, 3, b'a', 0, b'b']));
        assert!(matches!(
            r.string("s"),
            Err(DecodeError::Malformed(Malformed::NullCharacter { .. }))
        ));
        let mut r = Reader::new(Bytes::from_static(&[0, 5, b'a']));
        assert!(matches!(
            r.string("s"),
            Err(DecodeError::Malformed(Malformed::Truncated { what: "s" }))
        ));
    }
}
