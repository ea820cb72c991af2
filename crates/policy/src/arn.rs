//! The `Resource` element: `*` or an AWS IoT ARN
//! `arn:aws:iot:REGION:ACCOUNT:TYPE/NAME`, validated at parse time and
//! resolved per connection.
//!
//! Region and account are compared segment by segment with the
//! [`Context`]'s values (wildcards allowed within a segment), so a `*` in
//! the region cannot swallow a colon inside a topic name. The resource part
//! (`topic/a/b`, `topicfilter/a/+/#`) is a wildcard pattern that may contain
//! policy variables. A resource type spelled out literally (the usual case)
//! lets a check skip patterns for other types; a type containing wildcards
//! (`top*`, a bare `*`) is matched against `TYPE/NAME` as a whole.

use std::fmt;

use crate::pattern::Pattern;
use crate::variables::{Context, Template};

/// The resource types civitas' actions are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// `client/<client id>`.
    Client,
    /// `topic/<topic name>`.
    Topic,
    /// `topicfilter/<topic filter>`: `+` and `#` are literal characters.
    TopicFilter,
    /// `thing/<thing name>[/<shadow name>]`.
    Thing,
}

impl ResourceType {
    pub const ALL: [ResourceType; 4] = [
        ResourceType::Client,
        ResourceType::Topic,
        ResourceType::TopicFilter,
        ResourceType::Thing,
    ];

    /// The type as written in an ARN.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Client => "client",
            ResourceType::Topic => "topic",
            ResourceType::TopicFilter => "topicfilter",
            ResourceType::Thing => "thing",
        }
    }

    /// `TYPE/`, the text before the resource name in an ARN.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            ResourceType::Client => "client/",
            ResourceType::Topic => "topic/",
            ResourceType::TopicFilter => "topicfilter/",
            ResourceType::Thing => "thing/",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Other AWS IoT resource types a policy may name; accepted and kept so
/// that AWS documents load, never matched by civitas' actions.
const OTHER_TYPES: &[&str] = &[
    "authorizer",
    "billinggroup",
    "cacert",
    "cert",
    "custommetric",
    "destination",
    "dimension",
    "domainconfiguration",
    "fleetmetric",
    "index",
    "job",
    "jobtemplate",
    "mitigationaction",
    "otaupdate",
    "package",
    "policy",
    "provisioningtemplate",
    "rolealias",
    "rule",
    "scheduledaudit",
    "securityprofile",
    "stream",
    "thinggroup",
    "thingtype",
    "tunnel",
];

const PARTITIONS: &[&str] = &["aws", "aws-cn", "aws-us-gov"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A literal type civitas checks; the template is the name after `TYPE/`.
    Typed(ResourceType),
    /// A literal type civitas never checks.
    Other,
    /// The type has wildcards; the template is all of `TYPE/NAME`.
    Wild,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Everything,
    Arn {
        region: Pattern,
        account: Pattern,
        target: Target,
        template: Template,
    },
}

/// One parsed `Resource` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourcePattern {
    kind: Kind,
}

/// A resource entry after variable substitution for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolvedResource {
    /// Wrong region or account, or a type civitas never checks.
    Nothing,
    /// `*`.
    Everything,
    /// Matches names of this type.
    Named(ResourceType, Pattern),
    /// Matches `TYPE/NAME` for any type.
    Wild(Pattern),
}

impl ResourcePattern {
    /// Parses one `Resource` entry; the error is a problem description
    /// without location.
    pub(crate) fn parse(text: &str) -> Result<ResourcePattern, String> {
        if text == "*" {
            return Ok(ResourcePattern {
                kind: Kind::Everything,
            });
        }
        let not_arn = || format!("{text:?} is not an IoT ARN");
        let fields: Vec<&str> = text.splitn(6, ':').collect();
        let [arn, partition, service, region, account, rest] = fields[..] else {
            return Err(not_arn());
        };
        if arn != "arn" || !PARTITIONS.contains(&partition) || service != "iot" || rest.is_empty() {
            return Err(not_arn());
        }
        if region.contains("${") || account.contains("${") {
            return Err(format!(
                "policy variables are not allowed in the region or account of {text:?}"
            ));
        }
        let (type_text, name) = match rest.split_once('/') {
            Some((type_text, name)) => (type_text, name),
            None => (rest, ""),
        };
        if type_text.contains("${") {
            return Err(format!(
                "the resource type in {text:?} must be written out, not a policy variable"
            ));
        }
        let target = if type_text.contains(['*', '?']) {
            Target::Wild
        } else if !rest.contains('/') {
            return Err(not_arn());
        } else if let Some(typed) = ResourceType::ALL
            .into_iter()
            .find(|t| t.as_str() == type_text)
        {
            Target::Typed(typed)
        } else if OTHER_TYPES.contains(&type_text) {
            Target::Other
        } else {
            return Err(format!("unknown resource type {type_text:?} in {text:?}"));
        };
        let template = Template::parse(if target == Target::Wild { rest } else { name })
            .map_err(|problem| format!("{text:?}: {problem}"))?;
        Ok(ResourcePattern {
            kind: Kind::Arn {
                region: Pattern::wild(region),
                account: Pattern::wild(account),
                target,
                template,
            },
        })
    }

    /// Substitutes variables for one connection; `None` when a variable has
    /// no value, which makes the whole statement inapplicable.
    pub(crate) fn resolve(&self, ctx: &Context) -> Option<ResolvedResource> {
        let Kind::Arn {
            region,
            account,
            target,
            template,
        } = &self.kind
        else {
            return Some(ResolvedResource::Everything);
        };
        let mut pattern = Pattern::new();
        if !template.resolve_into(ctx, &mut pattern) {
            return None;
        }
        if !region.is_match(&ctx.region) || !account.is_match(&ctx.account) {
            return Some(ResolvedResource::Nothing);
        }
        Some(match target {
            Target::Typed(resource_type) => ResolvedResource::Named(*resource_type, pattern),
            Target::Other => ResolvedResource::Nothing,
            Target::Wild => ResolvedResource::Wild(pattern),
        })
    }

    pub(crate) fn unsupported_variables(&self) -> impl Iterator<Item = &str> {
        let template = match &self.kind {
            Kind::Arn { template, .. } => Some(template),
            Kind::Everything => None,
        };
        template
            .into_iter()
            .flat_map(Template::unsupported_variables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            client_id: "c1".into(),
            ..Context::default()
        }
    }

    fn resolved(text: &str) -> ResolvedResource {
        ResourcePattern::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .resolve(&ctx())
            .unwrap_or_else(|| panic!("{text}: unresolved"))
    }

    #[test]
    fn arn_forms() {
        use ResolvedResource::*;
        let named = |t, p: &str| Named(t, Pattern::wild(p));
        let cases = [
            ("*", Everything),
            (
                "arn:aws:iot:eu-west-1:123456789012:topic/a/b",
                named(ResourceType::Topic, "a/b"),
            ),
            (
                "arn:aws-cn:iot:eu-west-1:123456789012:topic/a",
                named(ResourceType::Topic, "a"),
            ),
            (
                "arn:aws:iot:*:*:client/c*",
                named(ResourceType::Client, "c*"),
            ),
            (
                "arn:aws:iot:eu-*:12345678901?:thing/t",
                named(ResourceType::Thing, "t"),
            ),
            (
                "arn:aws:iot:eu-west-1:123456789012:topicfilter/a/+/#",
                named(ResourceType::TopicFilter, "a/+/#"),
            ),
            (
                "arn:aws:iot:eu-west-1:123456789012:topic/a:b:c",
                named(ResourceType::Topic, "a:b:c"),
            ),
            (
                "arn:aws:iot:eu-west-1:123456789012:topic/",
                named(ResourceType::Topic, ""),
            ),
            (
                "arn:aws:iot:eu-west-1:123456789012:*",
                Wild(Pattern::wild("*")),
            ),
            (
                "arn:aws:iot:eu-west-1:123456789012:top*/x",
                Wild(Pattern::wild("top*/x")),
            ),
            ("arn:aws:iot:eu-west-1:123456789012:rolealias/r", Nothing),
            ("arn:aws:iot:us-east-1:123456789012:topic/a", Nothing),
            ("arn:aws:iot:eu-west-1:999999999999:topic/a", Nothing),
            (
                "arn:aws:iot:eu-west-?:123456789012:topic/a",
                named(ResourceType::Topic, "a"),
            ),
            ("arn:aws:iot:eu-west-??:123456789012:topic/a", Nothing),
        ];
        for (text, expected) in cases {
            assert_eq!(resolved(text), expected, "{text}");
        }
    }

    #[test]
    fn refused_resources() {
        let cases = [
            ("arn:aws:iot:x", "\"arn:aws:iot:x\" is not an IoT ARN"),
            ("topic/a", "\"topic/a\" is not an IoT ARN"),
            (
                "arn:aws:s3:::bucket/key",
                "\"arn:aws:s3:::bucket/key\" is not an IoT ARN",
            ),
            ("arn:aws:iot:r:a:", "\"arn:aws:iot:r:a:\" is not an IoT ARN"),
            (
                "arn:aws:iot:r:a:topic",
                "\"arn:aws:iot:r:a:topic\" is not an IoT ARN",
            ),
            (
                "arn:other:iot:r:a:topic/x",
                "\"arn:other:iot:r:a:topic/x\" is not an IoT ARN",
            ),
            ("**", "\"**\" is not an IoT ARN"),
            ("", "\"\" is not an IoT ARN"),
            (
                "arn:aws:iot:r:a:topics/x",
                "unknown resource type \"topics\" in \"arn:aws:iot:r:a:topics/x\"",
            ),
            (
                "arn:aws:iot:${iot:ClientId}:a:topic/x",
                "policy variables are not allowed in the region or account of \"arn:aws:iot:${iot:ClientId}:a:topic/x\"",
            ),
            (
                "arn:aws:iot:r:a:${iot:ClientId}/x",
                "the resource type in \"arn:aws:iot:r:a:${iot:ClientId}/x\" must be written out, not a policy variable",
            ),
            (
                "arn:aws:iot:r:a:topic/${x",
                "\"arn:aws:iot:r:a:topic/${x\": unterminated policy variable",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(
                ResourcePattern::parse(text),
                Err(message.to_owned()),
                "{text}"
            );
        }
    }

    #[test]
    fn unresolved_variables_are_reported_as_none() {
        let pattern = ResourcePattern::parse(
            "arn:aws:iot:eu-west-1:123456789012:topic/${iot:Connection.Thing.ThingName}/x",
        )
        .unwrap();
        assert_eq!(pattern.resolve(&ctx()), None);
        // Even where the ARN's region does not apply: the statement as a
        // whole is what becomes inapplicable.
        let other_region =
            ResourcePattern::parse("arn:aws:iot:us-east-1:1:topic/${aws:username}").unwrap();
        assert_eq!(other_region.resolve(&ctx()), None);
        assert_eq!(
            other_region.unsupported_variables().collect::<Vec<_>>(),
            ["aws:username"]
        );
    }
}
