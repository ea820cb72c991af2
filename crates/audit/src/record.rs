//! Records: the event a caller hands in ([`Event`]), the record the log
//! holds ([`Record`]), and their canonical encoding and hash.
//!
//! A record's line is its canonical encoding (see `docs/audit-log.md`)
//! with the `hash` member added last; the hash is the SHA-256 of the line
//! without that member.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest::{SHA256, digest};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::canonical::{write_object, write_str};
use crate::checkpoint::CHECKPOINT_ACTION;
use crate::clock::Timestamp;
use crate::error::AuditError;
use crate::hex;

/// Position of a record in the log: 1 for the first, no gaps.
pub type Seq = u64;

/// Largest canonical encoding of an event's `details`, in bytes.
pub const MAX_DETAILS_BYTES: usize = 64 * 1024;

const MAX_ACTOR_BYTES: usize = 256;
const MAX_ACTION_BYTES: usize = 128;
const MAX_TARGET_BYTES: usize = 1024;

/// How the audited operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was carried out.
    Success,
    /// It was attempted and failed (bad credentials, I/O error, ...).
    Failure,
    /// Policy refused it.
    Denied,
}

impl Outcome {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Outcome, String> {
        match s {
            "success" => Ok(Outcome::Success),
            "failure" => Ok(Outcome::Failure),
            "denied" => Ok(Outcome::Denied),
            _ => Err(format!(
                "{s:?} is not an outcome (success, failure or denied)"
            )),
        }
    }
}

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The `prev` of the first record.
    pub const ZERO: Digest = Digest([0; 32]);

    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Digest {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, data).as_ref());
        Digest(out)
    }

    /// Parses 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Option<Digest> {
        hex::decode(s).map(Digest)
    }

    /// The 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hex::serde_array::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        hex::serde_array::deserialize(d).map(Digest)
    }
}

/// A security event to record. The log adds `seq`, `time`, `prev` and
/// `hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Who acted: `device:lamp-1`, `operator:alice`, `system`.
    pub actor: String,
    /// What was done, as dotted lowercase words: `device.connect`,
    /// `cert.revoke`, `command.send`. Actions under `audit.` are the log's
    /// own and refused here.
    pub action: String,
    /// What it was done to (a device, certificate serial, policy name, ...).
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Anything else worth keeping. Numbers must be integers.
    pub details: Map<String, Value>,
}

impl Event {
    /// An event with empty details.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        outcome: Outcome,
    ) -> Event {
        Event {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            outcome,
            details: Map::new(),
        }
    }

    /// The event with `details[name] = value`.
    #[must_use]
    pub fn detail(mut self, name: impl Into<String>, value: impl Into<Value>) -> Event {
        self.details.insert(name.into(), value.into());
        self
    }

    /// Checks every field and encodes the details once, on the caller's
    /// thread, so a bad event is refused before it reaches the writer.
    pub(crate) fn prepare(self) -> Result<Prepared, AuditError> {
        let bad = |m: String| Err(AuditError::InvalidEvent(m));
        check_text("actor", &self.actor, MAX_ACTOR_BYTES)?;
        if self.actor.is_empty() {
            return bad("the actor is empty".into());
        }
        check_text("target", &self.target, MAX_TARGET_BYTES)?;
        if !valid_action(&self.action) {
            return bad(format!(
                "action {:?} is not dotted lowercase words such as device.connect",
                self.action
            ));
        }
        if self.action.starts_with("audit.") {
            return bad(format!(
                "action {:?}: actions under audit. are reserved for the log itself",
                self.action
            ));
        }
        let mut details = String::new();
        write_object(&mut details, &self.details)
            .map_err(|e| AuditError::InvalidEvent(format!("details: {e}")))?;
        if details.len() > MAX_DETAILS_BYTES {
            return bad(format!(
                "details encode to {} bytes, more than {MAX_DETAILS_BYTES}",
                details.len()
            ));
        }
        Ok(Prepared {
            actor: self.actor,
            action: self.action,
            target: self.target,
            outcome: self.outcome,
            details,
        })
    }
}

/// An event checked and with its details encoded.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) target: String,
    pub(crate) outcome: Outcome,
    pub(crate) details: String,
}

fn check_text(field: &str, s: &str, max: usize) -> Result<(), AuditError> {
    if s.len() > max {
        return Err(AuditError::InvalidEvent(format!(
            "the {field} is longer than {max} bytes"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(AuditError::InvalidEvent(format!(
            "the {field} contains control characters"
        )));
    }
    Ok(())
}

fn valid_action(action: &str) -> bool {
    action.len() <= MAX_ACTION_BYTES
        && action.split('.').count() >= 2
        && action.split('.').all(|word| {
            let mut bytes = word.bytes();
            bytes.next().is_some_and(|b| b.is_ascii_lowercase())
                && bytes
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}

/// One record of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Position in the log, from 1.
    pub seq: Seq,
    /// When the writer recorded it.
    pub time: Timestamp,
    /// Who acted.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Event-specific fields.
    pub details: Map<String, Value>,
    /// Hash of the previous record ([`Digest::ZERO`] for seq 1).
    pub prev: Digest,
    /// Hash of this record's canonical encoding without `hash`.
    pub hash: Digest,
}

impl Record {
    /// Reads one line of the log (without its newline). Only the form is
    /// checked, not the hash: that is [`crate::verify`]'s job.
    pub fn from_line(line: &str) -> Result<Record, AuditError> {
        parse_line(line.as_bytes())
            .map(|p| p.record)
            .map_err(AuditError::InvalidRecord)
    }

    /// SHA-256 of [`Record::canonical_encoding`]: what `hash` must be.
    pub fn compute_hash(&self) -> Result<Digest, AuditError> {
        Ok(Digest::of(self.canonical_encoding()?.as_bytes()))
    }

    /// `details` in canonical (compact, sorted) JSON.
    pub fn details_json(&self) -> Result<String, AuditError> {
        let mut out = String::new();
        write_object(&mut out, &self.details).map_err(AuditError::InvalidRecord)?;
        Ok(out)
    }

    /// True for the log's signed checkpoints.
    pub fn is_checkpoint(&self) -> bool {
        self.action == CHECKPOINT_ACTION
    }

    /// The canonical encoding without `hash`: the bytes `hash` is the
    /// SHA-256 of.
    pub fn canonical_encoding(&self) -> Result<String, AuditError> {
        let details = self.details_json()?;
        Ok(encode_unhashed(&Fields {
            seq: self.seq,
            time: self.time,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            outcome: self.outcome,
            details: &details,
            prev: &self.prev,
        }))
    }

    /// The record as a line of the log (without the newline), with the
    /// `hash` it carries.
    pub fn to_line(&self) -> Result<String, AuditError> {
        Ok(with_hash(self.canonical_encoding()?, &self.hash))
    }
}

/// The fields of a record, borrowed, as the encoder takes them.
pub(crate) struct Fields<'a> {
    pub(crate) seq: Seq,
    pub(crate) time: Timestamp,
    pub(crate) actor: &'a str,
    pub(crate) action: &'a str,
    pub(crate) target: &'a str,
    pub(crate) outcome: Outcome,
    /// Already in canonical form.
    pub(crate) details: &'a str,
    pub(crate) prev: &'a Digest,
}

/// `{"seq":…,"time":…,"actor":…,"action":…,"target":…,"outcome":…,
/// "details":…,"prev":…}` in exactly that order.
pub(crate) fn encode_unhashed(f: &Fields<'_>) -> String {
    let mut out = String::with_capacity(160 + f.details.len());
    encode_unhashed_into(&mut out, f, &f.time.to_string());
    out
}

/// [`encode_unhashed`] appended to `out`, with the time already formatted
/// (`time_text` is `f.time` as [`Timestamp`] displays it; the writer
/// formats it once per batch).
pub(crate) fn encode_unhashed_into(out: &mut String, f: &Fields<'_>, time_text: &str) {
    use std::fmt::Write;
    out.reserve(200 + f.details.len());
    out.push_str("{\"seq\":");
    // Writing to a String cannot fail.
    let _ = write!(out, "{}", f.seq);
    out.push_str(",\"time\":\"");
    out.push_str(time_text);
    out.push_str("\",\"actor\":");
    write_str(out, f.actor);
    out.push_str(",\"action\":");
    write_str(out, f.action);
    out.push_str(",\"target\":");
    write_str(out, f.target);
    out.push_str(",\"outcome\":\"");
    out.push_str(f.outcome.as_str());
    out.push_str("\",\"details\":");
    out.push_str(f.details);
    out.push_str(",\"prev\":\"");
    out.push_str(&f.prev.to_hex());
    out.push_str("\"}");
}

/// The line for an unhashed encoding: `hash` inserted as the last member.
pub(crate) fn with_hash(mut unhashed: String, hash: &Digest) -> String {
    add_hash(&mut unhashed, hash);
    unhashed
}

/// Turns the unhashed encoding `out` ends with into its line.
pub(crate) fn add_hash(out: &mut String, hash: &Digest) {
    out.pop();
    out.push_str(",\"hash\":\"");
    out.push_str(&hash.to_hex());
    out.push_str("\"}");
}

/// A line read back and re-encoded.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) record: Record,
    /// SHA-256 of the record's canonical encoding.
    pub(crate) computed: Digest,
    /// Whether the line is byte for byte the canonical line.
    pub(crate) canonical: bool,
}

const MEMBERS: [&str; 9] = [
    "seq", "time", "actor", "action", "target", "outcome", "details", "prev", "hash",
];

/// Reads one line (without its newline).
pub(crate) fn parse_line(line: &[u8]) -> Result<Parsed, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut map) = value else {
        return Err("not a JSON object".into());
    };
    if let Some(extra) = map.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(format!("unexpected member {extra:?}"));
    }
    let mut take = |name: &str| {
        map.remove(name)
            .ok_or_else(|| format!("no {name:?} member"))
    };
    let seq = take("seq")?
        .as_u64()
        .filter(|&s| s >= 1)
        .ok_or("\"seq\" is not a positive integer")?;
    let time =
        Timestamp::parse(&string(take("time")?, "time")?).map_err(|e| format!("\"time\": {e}"))?;
    let actor = string(take("actor")?, "actor")?;
    let action = string(take("action")?, "action")?;
    let target = string(take("target")?, "target")?;
    let outcome: Outcome = string(take("outcome")?, "outcome")?.parse()?;
    let Value::Object(details) = take("details")? else {
        return Err("\"details\" is not an object".into());
    };
    let prev = digest_member(take("prev")?, "prev")?;
    let hash = digest_member(take("hash")?, "hash")?;
    let record = Record {
        seq,
        time,
        actor,
        action,
        target,
        outcome,
        details,
        prev,
        hash,
    };
    let unhashed = record.canonical_encoding().map_err(|e| e.to_string())?;
    let computed = Digest::of(unhashed.as_bytes());
    let canonical = with_hash(unhashed, &hash).as_bytes() == line;
    Ok(Parsed {
        record,
        computed,
        canonical,
    })
}

fn string(v: Value, name: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(format!("{name:?} is not a string")),
    }
}

fn digest_member(v: Value, name: &str) -> Result<Digest, String> {
    let s = string(v, name)?;
    Digest::from_hex(&s).ok_or_else(|| format!("{name:?} is not 64 lowercase hex digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (String, Digest) {
        let unhashed = encode_unhashed(&Fields {
            seq: 1,
            time: Timestamp::from_unix_millis(1_700_000_000_123).unwrap(),
            actor: "operator:alice",
            action: "cert.revoke",
            target: "serial:0a",
            outcome: Outcome::Success,
            details: r#"{"reason":"key \"lost\""}"#,
            prev: &Digest::ZERO,
        });
        let hash = Digest::of(unhashed.as_bytes());
        (unhashed, hash)
    }

    #[test]
    fn encodes_in_the_documented_order() {
        let (unhashed, hash) = sample();
        assert_eq!(
            unhashed,
            concat!(
                r#"{"seq":1,"time":"2023-11-14T22:13:20.123Z","actor":"operator:alice","#,
                r#""action":"cert.revoke","target":"serial:0a","outcome":"success","#,
                r#""details":{"reason":"key \"lost\""},"prev":""#,
                "0000000000000000000000000000000000000000000000000000000000000000",
                r#""}"#
            )
        );
        let line = with_hash(unhashed.clone(), &hash);
        assert!(line.ends_with(&format!(",\"hash\":\"{hash}\"}}")));
        let parsed = parse_line(line.as_bytes()).unwrap();
        assert!(parsed.canonical);
        assert_eq!(parsed.computed, hash);
        assert_eq!(parsed.record.hash, hash);
        assert_eq!(parsed.record.to_line().unwrap(), line);
    }

    #[test]
    fn spots_non_canonical_and_malformed_lines() {
        let (unhashed, hash) = sample();
        let line = with_hash(unhashed, &hash);
        let spaced = line.replacen(',', ", ", 1);
        let parsed = parse_line(spaced.as_bytes()).unwrap();
        assert!(!parsed.canonical);
        assert_eq!(parsed.computed, hash, "same content, same hash");
        for bad in [
            "",
            "[]",
            "{\"seq\":1}",
            &line.replace("\"seq\":1", "\"seq\":0"),
            &line.replace("success", "maybe"),
            &line.replace("{\"seq\"", "{\"x\":1,\"seq\""),
        ] {
            assert!(parse_line(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn validates_events() {
        let ok = Event::new(
            "device:lamp-1",
            "device.connect",
            "lamp-1",
            Outcome::Success,
        );
        assert!(ok.clone().prepare().is_ok());
        for bad in [
            Event {
                actor: String::new(),
                ..ok.clone()
            },
            Event {
                action: "connect".into(),
                ..ok.clone()
            },
            Event {
                action: "Device.connect".into(),
                ..ok.clone()
            },
            Event {
                action: "device..connect".into(),
                ..ok.clone()
            },
            Event {
                action: "audit.checkpoint".into(),
                ..ok.clone()
            },
            Event {
                target: "a\nb".into(),
                ..ok.clone()
            },
            ok.clone().detail("t", 21.5),
            ok.clone().detail("big", "x".repeat(MAX_DETAILS_BYTES)),
        ] {
            assert!(
                matches!(bad.clone().prepare(), Err(AuditError::InvalidEvent(_))),
                "{bad:?}"
            );
        }
    }
}
