//! The bytes of a telemetry block — header, chunks, footer — and the
//! associated data that binds each sealed part to its place.
//!
//! Layouts are in `docs/telemetry-storage.md`; integers are big-endian, as
//! in the KMS formats. Parsing checks every length against what is left,
//! so damaged bytes give a reason, never a panic.

use aws_lc_rs::digest;

use crate::reading::NewReading;

pub(crate) const HEADER_MAGIC: [u8; 4] = *b"CVTH";
pub(crate) const FORMAT_VERSION: u8 = 1;
const CHUNK_AAD_LABEL: &[u8] = b"civitas-telemetry chunk v1\0";
const FOOTER_AAD_LABEL: &[u8] = b"civitas-telemetry footer v1\0";

const FLAG_VERIFIED: u8 = 1;
const FLAG_RAW: u8 = 2;
const FLAG_SIGNATURE: u8 = 4;

/// Whether a block's chunks and footer are sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Sealed = 1,
    /// The benchmark's baseline only.
    Unsealed = 2,
}

pub(crate) struct Header<'a> {
    pub(crate) mode: Mode,
    pub(crate) period_ms: u64,
    /// The `CVDK` data key; empty when unsealed.
    pub(crate) wrapped_key: &'a [u8],
}

pub(crate) fn encode_header(mode: Mode, period_ms: u64, wrapped_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + wrapped_key.len());
    out.extend_from_slice(&HEADER_MAGIC);
    out.push(FORMAT_VERSION);
    out.push(mode as u8);
    out.extend_from_slice(&period_ms.to_be_bytes());
    // A CVDK is at most 198 bytes.
    out.extend_from_slice(&(wrapped_key.len() as u16).to_be_bytes());
    out.extend_from_slice(wrapped_key);
    out
}

pub(crate) fn decode_header(bytes: &[u8]) -> Result<Header<'_>, &'static str> {
    let mut r = Cursor(bytes);
    if r.take(4)? != HEADER_MAGIC {
        return Err("header magic is not CVTH");
    }
    if r.u8()? != FORMAT_VERSION {
        return Err("unknown header format version");
    }
    let mode = match r.u8()? {
        1 => Mode::Sealed,
        2 => Mode::Unsealed,
        _ => return Err("unknown sealing mode"),
    };
    let period_ms = r.u64()?;
    let n = usize::from(r.u16()?);
    let wrapped_key = r.take(n)?;
    r.end()?;
    Ok(Header {
        mode,
        period_ms,
        wrapped_key,
    })
}

/// A stored chunk: version, metric name (in clear, bound by the AAD) and
/// the body (a sealed record, or the plaintext when unsealed).
pub(crate) fn chunk_prefix(metric: &str, body_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + metric.len() + body_len);
    out.push(FORMAT_VERSION);
    // Metric names are validated to at most 255 bytes.
    out.push(metric.len() as u8);
    out.extend_from_slice(metric.as_bytes());
    out
}

pub(crate) fn split_chunk(bytes: &[u8]) -> Result<(&str, &[u8]), &'static str> {
    let mut r = Cursor(bytes);
    if r.u8()? != FORMAT_VERSION {
        return Err("unknown chunk format version");
    }
    let n = usize::from(r.u8()?);
    let metric = std::str::from_utf8(r.take(n)?).map_err(|_| "metric name is not UTF-8")?;
    Ok((metric, r.0))
}

/// Where a block lives, as bound into every AAD.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    pub(crate) thing: &'a str,
    pub(crate) period_start_ms: u64,
    pub(crate) period_ms: u64,
    pub(crate) block: u32,
}

impl Place<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        // Thing names fit a key id (at most 121 bytes).
        out.push(self.thing.len() as u8);
        out.extend_from_slice(self.thing.as_bytes());
        out.extend_from_slice(&self.period_start_ms.to_be_bytes());
        out.extend_from_slice(&self.period_ms.to_be_bytes());
        out.extend_from_slice(&self.block.to_be_bytes());
    }
}

pub(crate) fn chunk_aad(place: &Place<'_>, seq: u32, metric: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + place.thing.len() + metric.len());
    out.extend_from_slice(CHUNK_AAD_LABEL);
    place.write(&mut out);
    out.extend_from_slice(&seq.to_be_bytes());
    out.push(metric.len() as u8);
    out.extend_from_slice(metric.as_bytes());
    out
}

pub(crate) fn footer_aad(place: &Place<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + place.thing.len());
    out.extend_from_slice(FOOTER_AAD_LABEL);
    place.write(&mut out);
    out
}

/// The footer's plaintext: how many chunks the block holds and a digest of
/// their sequence numbers, so that a removed chunk shows.
pub(crate) fn footer_plaintext(seqs: impl Iterator<Item = u32>) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut count: u32 = 0;
    for seq in seqs {
        ctx.update(&seq.to_be_bytes());
        count = count.saturating_add(1);
    }
    let mut out = Vec::with_capacity(36);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(ctx.finish().as_ref());
    out
}

/// Encodes readings of one metric into a chunk's plaintext.
pub(crate) fn encode_readings(readings: &[&NewReading], out: &mut Vec<u8>) {
    // A chunk holds at most MAX_CHUNK_READINGS readings.
    out.extend_from_slice(&(readings.len() as u32).to_be_bytes());
    for r in readings {
        out.extend_from_slice(&r.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&r.value.to_bits().to_be_bytes());
        let mut flags = 0;
        if r.signature.is_some() {
            flags |= FLAG_VERIFIED | FLAG_SIGNATURE;
        }
        if r.raw.is_some() {
            flags |= FLAG_RAW;
        }
        out.push(flags);
        if let Some(raw) = &r.raw {
            // At most MAX_RAW_LEN.
            out.extend_from_slice(&(raw.len() as u32).to_be_bytes());
            out.extend_from_slice(raw);
        }
        if let Some(sig) = &r.signature {
            let jws = sig.jws().as_bytes();
            out.extend_from_slice(&(jws.len() as u32).to_be_bytes());
            out.extend_from_slice(jws);
        }
    }
}

/// Bytes `encode_readings` adds for `r`.
pub(crate) fn encoded_len(r: &NewReading) -> usize {
    17 + r.raw.as_ref().map_or(0, |raw| 4 + raw.len())
        + r.signature.as_ref().map_or(0, |s| 4 + s.jws().len())
}

/// One reading as decoded from a chunk, borrowing its raw bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlainReading<'a> {
    pub(crate) timestamp_ms: u64,
    pub(crate) value: f64,
    pub(crate) verified: bool,
    pub(crate) raw: Option<&'a [u8]>,
    pub(crate) signature: Option<&'a str>,
}

/// Decodes a chunk's plaintext, checking it completely before the first
/// reading is handed out.
pub(crate) fn decode_readings(plain: &[u8]) -> Result<Vec<PlainReading<'_>>, &'static str> {
    let mut r = Cursor(plain);
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(plain.len() / 17));
    for _ in 0..n {
        let timestamp_ms = r.u64()?;
        let value = f64::from_bits(r.u64()?);
        let flags = r.u8()?;
        if flags & !(FLAG_VERIFIED | FLAG_RAW | FLAG_SIGNATURE) != 0 {
            return Err("unknown reading flags");
        }
        let raw = if flags & FLAG_RAW != 0 {
            let len = r.u32()? as usize;
            Some(r.take(len)?)
        } else {
            None
        };
        let signature = if flags & FLAG_SIGNATURE != 0 {
            let len = r.u32()? as usize;
            Some(std::str::from_utf8(r.take(len)?).map_err(|_| "signature is not UTF-8")?)
        } else {
            None
        };
        out.push(PlainReading {
            timestamp_ms,
            value,
            verified: flags & FLAG_VERIFIED != 0,
            raw,
            signature,
        });
    }
    r.end()?;
    Ok(out)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.0.len() {
            return Err("truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn end(&self) -> Result<(), &'static str> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        let h = encode_header(Mode::Sealed, 3_600_000, b"wrapped");
        let d = decode_header(&h).unwrap();
        assert_eq!(
            (d.mode, d.period_ms, d.wrapped_key),
            (Mode::Sealed, 3_600_000, &b"wrapped"[..])
        );
        for cut in 0..h.len() {
            assert!(decode_header(&h[..cut]).is_err());
        }
        let mut bad = h.clone();
        bad[0] = b'X';
        assert!(decode_header(&bad).is_err());
    }

    #[test]
    fn readings_round_trip_and_truncation_fails() {
        let plain_reading = NewReading::new("t", "m", 5, -1.5).with_raw(b"raw".to_vec());
        let bare = NewReading::new("t", "m", 6, 2.0);
        let mut buf = Vec::new();
        encode_readings(&[&plain_reading, &bare], &mut buf);
        assert_eq!(
            buf.len(),
            4 + encoded_len(&plain_reading) + encoded_len(&bare)
        );
        let out = decode_readings(&buf).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].timestamp_ms, 5);
        assert_eq!(out[0].value, -1.5);
        assert_eq!(out[0].raw, Some(&b"raw"[..]));
        assert!(!out[0].verified);
        assert_eq!(out[1].raw, None);
        for cut in 0..buf.len() {
            assert!(decode_readings(&buf[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn aads_differ_by_every_field() {
        let p = Place {
            thing: "t",
            period_start_ms: 1,
            period_ms: 2,
            block: 3,
        };
        let base = chunk_aad(&p, 4, "m");
        assert_ne!(base, chunk_aad(&Place { thing: "u", ..p }, 4, "m"));
        assert_ne!(
            base,
            chunk_aad(
                &Place {
                    period_start_ms: 9,
                    ..p
                },
                4,
                "m"
            )
        );
        assert_ne!(base, chunk_aad(&Place { period_ms: 9, ..p }, 4, "m"));
        assert_ne!(base, chunk_aad(&Place { block: 9, ..p }, 4, "m"));
        assert_ne!(base, chunk_aad(&p, 5, "m"));
        assert_ne!(base, chunk_aad(&p, 4, "n"));
        assert_ne!(footer_aad(&p), footer_aad(&Place { block: 9, ..p }));
        assert_ne!(
            footer_plaintext(0..3),
            footer_plaintext([0, 2, 3].into_iter())
        );
    }
}
