//! Encoding of a sealed telemetry block's container: the block header, its
//! chunks with their sequence numbers, and the footer, in the same
//! versioned format as the other records (see the parent module). The
//! three parts are opaque here; civitas-telemetry gives them meaning.

use super::{DecodeError, Reader, Writer};
use crate::telemetry::{TelemetryBlock, TelemetryChunk};

/// Encodes a sealed block. `chunks` must be in ascending `seq` order.
pub(crate) fn encode_block(header: &[u8], chunks: &[(u32, &[u8])], footer: &[u8]) -> Vec<u8> {
    let mut w = Writer::record();
    let size =
        header.len() + footer.len() + chunks.iter().map(|(_, b)| b.len() + 8).sum::<usize>() + 16;
    w.buf.reserve(size);
    w.bytes(header);
    w.len(chunks.len());
    for (seq, bytes) in chunks {
        w.u32(*seq);
        w.bytes(bytes);
    }
    w.bytes(footer);
    w.finish()
}

/// Decodes a sealed block; chunk sequence numbers must ascend strictly.
pub(crate) fn decode_block(buf: &[u8]) -> Result<TelemetryBlock, DecodeError> {
    let mut r = Reader::record(buf)?;
    let header = r.bytes("header")?.to_vec();
    let (n, cap) = r.count("chunks", 8)?;
    let mut chunks: Vec<TelemetryChunk> = Vec::with_capacity(cap);
    for _ in 0..n {
        let at = r.pos;
        let seq = r.u32("chunk seq")?;
        if chunks.last().is_some_and(|last| last.seq >= seq) {
            return Err(r.invalid("chunk seq", at, seq.into()));
        }
        let bytes = r.bytes("chunk")?.to_vec();
        chunks.push(TelemetryChunk { seq, bytes });
    }
    let footer = r.bytes("footer")?.to_vec();
    r.finish()?;
    Ok(TelemetryBlock {
        header,
        chunks,
        footer: Some(footer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let bytes = encode_block(b"head", &[(0, b"a"), (1, b""), (5, b"ccc")], b"foot");
        let block = decode_block(&bytes).unwrap();
        assert_eq!(block.header, b"head");
        assert_eq!(block.footer.as_deref(), Some(&b"foot"[..]));
        let seqs: Vec<u32> = block.chunks.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [0, 1, 5]);
        assert_eq!(block.chunks[2].bytes, b"ccc");

        for cut in 0..bytes.len() {
            assert!(decode_block(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode_block(&longer),
            Err(DecodeError::TrailingBytes { .. })
        ));
        let unordered = encode_block(b"h", &[(3, b"a"), (3, b"b")], b"f");
        assert!(matches!(
            decode_block(&unordered),
            Err(DecodeError::InvalidValue {
                field: "chunk seq",
                ..
            })
        ));
    }
}
