//! Encoding of rule records, in the same versioned format as the
//! broker's (see the parent module). The rule document itself is opaque
//! JSON bytes: the rules engine owns its meaning.

use super::{DecodeError, Reader, Writer};
use crate::records::RuleRecord;

pub(crate) fn encode_rule(r: &RuleRecord) -> Vec<u8> {
    let mut w = Writer::record();
    w.str(&r.name);
    w.bytes(&r.document);
    w.u64(r.created_at_ms);
    w.u64(r.updated_at_ms);
    w.finish()
}

pub(crate) fn decode_rule(buf: &[u8]) -> Result<RuleRecord, DecodeError> {
    let mut r = Reader::record(buf)?;
    let name = r.string("name")?;
    let document = r.bytes("document")?.to_vec();
    let created_at_ms = r.u64("created_at_ms")?;
    let updated_at_ms = r.u64("updated_at_ms")?;
    r.finish()?;
    Ok(RuleRecord {
        name,
        document,
        created_at_ms,
        updated_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_records_round_trip() {
        let record = RuleRecord {
            name: "lamp_alerts".into(),
            document: br#"{"sql":"SELECT * FROM 'a'"}"#.to_vec(),
            created_at_ms: 1,
            updated_at_ms: u64::MAX,
        };
        let bytes = encode_rule(&record);
        assert_eq!(decode_rule(&bytes).unwrap(), record);
        assert!(decode_rule(&bytes[..bytes.len() - 1]).is_err());
    }
}
