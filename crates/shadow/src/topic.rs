//! Shadow topics: recognising a request topic, naming the reply topics,
//! and the AWS rules for thing and shadow names.
//!
//! Requests are `$aws/things/{thing}/shadow/{get,update,delete}` (classic)
//! and `$aws/things/{thing}/shadow/name/{shadow}/{get,update,delete}`
//! (named). Replies append `/accepted`, `/rejected`, `/delta` or
//! `/documents` to the request topic.

use crate::error::ShadowError;

/// The longest thing name AWS accepts.
pub const MAX_THING_NAME_LEN: usize = 128;
/// The longest shadow name AWS accepts.
pub const MAX_SHADOW_NAME_LEN: usize = 64;

/// What a request topic asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowOp {
    Get,
    Update,
    Delete,
}

impl ShadowOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowOp::Get => "get",
            ShadowOp::Update => "update",
            ShadowOp::Delete => "delete",
        }
    }
}

/// A parsed shadow request topic. The names are as they appear in the
/// topic, not yet validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowTopic<'a> {
    pub thing: &'a str,
    /// `None` for the classic shadow.
    pub name: Option<&'a str>,
    pub op: ShadowOp,
}

impl<'a> ShadowTopic<'a> {
    /// `None` unless `topic` is a shadow request topic (reply topics such as
    /// `.../update/accepted` are not requests).
    pub fn parse(topic: &'a str) -> Option<ShadowTopic<'a>> {
        let rest = topic.strip_prefix("$aws/things/")?;
        let (thing, rest) = rest.split_once('/')?;
        let rest = rest.strip_prefix("shadow/")?;
        let (name, op) = match rest.strip_prefix("name/") {
            Some(named) => {
                let (name, op) = named.split_once('/')?;
                (Some(name), op)
            }
            None => (None, rest),
        };
        let op = match op {
            "get" => ShadowOp::Get,
            "update" => ShadowOp::Update,
            "delete" => ShadowOp::Delete,
            _ => return None,
        };
        Some(ShadowTopic { thing, name, op })
    }

    /// The request topic, to which reply suffixes are appended.
    pub fn request_topic(&self) -> String {
        format!("{}/{}", prefix(self.thing, self.name), self.op.as_str())
    }
}

/// `$aws/things/{thing}/shadow` or `$aws/things/{thing}/shadow/name/{name}`.
pub fn prefix(thing: &str, name: Option<&str>) -> String {
    match name {
        None => format!("$aws/things/{thing}/shadow"),
        Some(name) => format!("$aws/things/{thing}/shadow/name/{name}"),
    }
}

/// `[a-zA-Z0-9:_-]{1,128}`.
pub fn validate_thing_name(thing: &str) -> Result<(), ShadowError> {
    let ok = !thing.is_empty()
        && thing.len() <= MAX_THING_NAME_LEN
        && thing
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ShadowError::InvalidThingName)
    }
}

/// `[$a-zA-Z0-9:_-]{1,64}`: AWS reserves names starting with `$` for its
/// own features (such as `$package`) but the pattern admits them.
pub fn validate_shadow_name(name: &str) -> Result<(), ShadowError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SHADOW_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"$:_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ShadowError::InvalidShadowName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_topics_are_recognised() {
        assert_eq!(
            ShadowTopic::parse("$aws/things/lamp/shadow/update"),
            Some(ShadowTopic {
                thing: "lamp",
                name: None,
                op: ShadowOp::Update
            })
        );
        assert_eq!(
            ShadowTopic::parse("$aws/things/lamp/shadow/name/cfg/get"),
            Some(ShadowTopic {
                thing: "lamp",
                name: Some("cfg"),
                op: ShadowOp::Get
            })
        );
        let t = ShadowTopic::parse("$aws/things/lamp/shadow/name/cfg/delete").unwrap();
        assert_eq!(t.request_topic(), "$aws/things/lamp/shadow/name/cfg/delete");
    }

    #[test]
    fn other_topics_are_not_requests() {
        for topic in [
            "$aws/things/lamp/shadow/update/accepted",
            "$aws/things/lamp/shadow/update/delta",
            "$aws/things/lamp/shadow/name/cfg/update/documents",
            "$aws/things/lamp/shadow/list",
            "$aws/things/lamp/shadow/name/get",
            "$aws/things/lamp/shadow",
            "$aws/things/lamp/jobs/get",
            "things/lamp/shadow/get",
            "$aws/things/lamp/shadow/name/a/b/get",
        ] {
            assert_eq!(ShadowTopic::parse(topic), None, "{topic}");
        }
    }

    #[test]
    fn names_follow_the_aws_patterns() {
        assert!(validate_thing_name("Lamp_1:a-b").is_ok());
        assert!(validate_thing_name(&"a".repeat(128)).is_ok());
        for bad in ["", "a b", "a.b", "lämp", "$aws", &"a".repeat(129)] {
            assert!(validate_thing_name(bad).is_err(), "{bad}");
        }
        assert!(validate_shadow_name("$package").is_ok());
        assert!(validate_shadow_name(&"a".repeat(64)).is_ok());
        for bad in ["", "a/b", "a b", &"a".repeat(65)] {
            assert!(validate_shadow_name(bad).is_err(), "{bad}");
        }
    }
}
