//! Policy variables: the per-connection [`Context`] they resolve from, and
//! resource templates (`topic/things/${iot:Connection.Thing.ThingName}/*`)
//! parsed once and resolved per connection into wildcard patterns.
//!
//! Syntax follows IAM: `${key}`, `${key, 'default'}`, and the fixed
//! variables `${*}`, `${?}`, `${$}` for literal `*`, `?`, `$`. Key names are
//! case-insensitive (IAM treats condition keys so); the attribute name
//! inside `Attributes[NAME]` keeps its case, as thing attribute names do.
//!
//! Unresolvable variables: IAM states that a variable AWS cannot resolve can
//! make the entire statement invalid, and the AWS IoT thing-policy examples
//! state that an unresolved thing variable ends in access denied. civitas
//! therefore ignores a whole statement as soon as one variable in any of its
//! resources has no value (and no default): the statement neither allows
//! nor denies anything. Keys civitas does not know (other certificate
//! fields, `aws:` keys) parse but never resolve, so they behave the same way
//! as on AWS for a connection lacking that value.

use std::collections::BTreeMap;

use crate::pattern::Pattern;

/// What policy variables and ARNs are resolved against for one connection.
///
/// `region` and `account` stand in for the AWS region and account id: an
/// ARN in a policy applies when its region and account segments match these
/// (literally or by wildcard).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub region: String,
    pub account: String,
    /// `${iot:ClientId}`: the MQTT client identifier.
    pub client_id: String,
    /// `${iot:Connection.Thing.ThingName}`: set when the connection is bound
    /// to a registry thing (on AWS: client id equals the name of a thing the
    /// certificate is attached to).
    pub thing_name: Option<String>,
    /// `${iot:Connection.Thing.ThingTypeName}`.
    pub thing_type: Option<String>,
    /// `${iot:Connection.Thing.Attributes[NAME]}`.
    pub attributes: BTreeMap<String, String>,
    /// `${iot:Connection.Thing.IsAttached}`: `"true"` or `"false"`.
    pub is_attached: bool,
    /// `${iot:Certificate.Subject.CommonName}`.
    pub cert_common_name: Option<String>,
    /// `${iot:Certificate.SerialNumber}`.
    pub cert_serial_number: Option<String>,
}

/// A policy variable key, recognised once at parse time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Variable {
    ClientId,
    ThingName,
    ThingTypeName,
    ThingAttribute(String),
    ThingIsAttached,
    CertCommonName,
    CertSerialNumber,
    /// Syntactically fine, but civitas has no value for it.
    Unsupported(String),
}

const ATTRIBUTES_PREFIX: &str = "iot:connection.thing.attributes[";

impl Variable {
    fn parse(key: &str) -> Variable {
        let lower = key.to_ascii_lowercase();
        match lower.as_str() {
            "iot:clientid" => Variable::ClientId,
            "iot:connection.thing.thingname" => Variable::ThingName,
            "iot:connection.thing.thingtypename" => Variable::ThingTypeName,
            "iot:connection.thing.isattached" => Variable::ThingIsAttached,
            "iot:certificate.subject.commonname" => Variable::CertCommonName,
            "iot:certificate.serialnumber" => Variable::CertSerialNumber,
            _ => {
                let attribute = lower
                    .strip_prefix(ATTRIBUTES_PREFIX)
                    .filter(|rest| rest.len() > 1 && rest.ends_with(']'))
                    // ASCII lowercasing keeps byte offsets, so the original
                    // spelling of the attribute name can be sliced out.
                    .map(|_| &key[ATTRIBUTES_PREFIX.len()..key.len() - 1]);
                match attribute {
                    Some(name) => Variable::ThingAttribute(name.to_owned()),
                    None => Variable::Unsupported(key.to_owned()),
                }
            }
        }
    }

    fn value<'a>(&self, ctx: &'a Context) -> Option<&'a str> {
        match self {
            Variable::ClientId => Some(&ctx.client_id),
            Variable::ThingName => ctx.thing_name.as_deref(),
            Variable::ThingTypeName => ctx.thing_type.as_deref(),
            Variable::ThingAttribute(name) => ctx.attributes.get(name).map(String::as_str),
            Variable::ThingIsAttached => Some(if ctx.is_attached { "true" } else { "false" }),
            Variable::CertCommonName => ctx.cert_common_name.as_deref(),
            Variable::CertSerialNumber => ctx.cert_serial_number.as_deref(),
            Variable::Unsupported(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Policy text: `*` and `?` are wildcards.
    Text(String),
    /// `${*}`, `${?}` or `${$}`.
    Literal(char),
    Var {
        variable: Variable,
        default: Option<String>,
    },
}

/// Policy text with variables, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; the error is a problem description without location.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err("unterminated policy variable".to_owned());
            };
            parts.push(parse_variable(&after[..end])?);
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Appends the resolved template to `pattern`. Variable values (and
    /// defaults) go in as literal text, so a value containing `*` or `?`
    /// matches only itself. Returns `false` if a variable has no value.
    pub(crate) fn resolve_into(&self, ctx: &Context, pattern: &mut Pattern) -> bool {
        for part in &self.parts {
            match part {
                Part::Text(text) => pattern.push_wild(text),
                Part::Literal(c) => pattern.push_literal(c.encode_utf8(&mut [0; 4])),
                Part::Var { variable, default } => {
                    match variable.value(ctx).or(default.as_deref()) {
                        Some(value) => pattern.push_literal(value),
                        None => return false,
                    }
                }
            }
        }
        true
    }

    /// Keys civitas never resolves.
    pub(crate) fn unsupported_variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Var {
                variable: Variable::Unsupported(key),
                ..
            } => Some(key.as_str()),
            _ => None,
        })
    }
}

fn parse_variable(inner: &str) -> Result<Part, String> {
    match inner {
        "*" => return Ok(Part::Literal('*')),
        "?" => return Ok(Part::Literal('?')),
        "$" => return Ok(Part::Literal('$')),
        _ => {}
    }
    let malformed = || {
        format!(
            "malformed policy variable \"${{{inner}}}\" (expected ${{key}} or ${{key, 'default'}})"
        )
    };
    let (key, default) = match inner.split_once(',') {
        Some((key, default)) => {
            let default = default.trim();
            let quoted = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .filter(|_| default.len() >= 2)
                .ok_or_else(malformed)?;
            (key.trim(), Some(quoted.to_owned()))
        }
        None => (inner.trim(), None),
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(malformed());
    }
    Ok(Part::Var {
        variable: Variable::parse(key),
        default,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            client_id: "client-1".into(),
            thing_name: Some("lamp-7".into()),
            thing_type: Some("streetlight".into()),
            attributes: BTreeMap::from([("District".into(), "north".into())]),
            is_attached: true,
            cert_common_name: Some("lamp-7.example".into()),
            cert_serial_number: Some("0a1b".into()),
        }
    }

    fn resolve(template: &str, ctx: &Context) -> Option<Pattern> {
        let template = Template::parse(template).ok()?;
        let mut pattern = Pattern::new();
        template.resolve_into(ctx, &mut pattern).then_some(pattern)
    }

    #[test]
    fn every_supported_variable_resolves() {
        let ctx = context();
        let cases = [
            ("${iot:ClientId}", "client-1"),
            ("${iot:Connection.Thing.ThingName}", "lamp-7"),
            ("${iot:Connection.Thing.ThingTypeName}", "streetlight"),
            ("${iot:Connection.Thing.Attributes[District]}", "north"),
            ("${iot:Connection.Thing.IsAttached}", "true"),
            ("${iot:Certificate.Subject.CommonName}", "lamp-7.example"),
            ("${iot:Certificate.SerialNumber}", "0a1b"),
            // Key names are case-insensitive, as in IAM.
            ("${IOT:clientid}", "client-1"),
            ("${ iot:ClientId }", "client-1"),
            ("a/${*}/${?}/${$}", "a/*/?/$"),
            (
                "${iot:Connection.Thing.Attributes[missing], 'none'}",
                "none",
            ),
            ("${iot:ClientId, 'unused'}", "client-1"),
        ];
        for (template, expected) in cases {
            let pattern = resolve(template, &ctx).unwrap_or_else(|| panic!("{template}"));
            let mut literal = Pattern::new();
            literal.push_literal(expected);
            assert_eq!(pattern, literal, "{template}");
        }
    }

    #[test]
    fn unset_variables_do_not_resolve() {
        let bare = Context {
            client_id: "c".into(),
            ..Context::default()
        };
        for template in [
            "${iot:Connection.Thing.ThingName}",
            "${iot:Connection.Thing.ThingTypeName}",
            "${iot:Connection.Thing.Attributes[District]}",
            "${iot:Certificate.Subject.CommonName}",
            "${iot:Certificate.SerialNumber}",
            "${iot:Certificate.Subject.Organization}",
            "${aws:username}",
        ] {
            assert!(resolve(template, &bare).is_none(), "{template}");
        }
        // The attribute name is case-sensitive.
        assert!(resolve("${iot:Connection.Thing.Attributes[district]}", &context()).is_none());
        let detached = resolve("${iot:Connection.Thing.IsAttached}", &bare);
        assert!(detached.is_some_and(|p| p.is_match("false")));
    }

    #[test]
    fn malformed_variables_are_refused() {
        let cases = [
            ("a/${iot:ClientId", "unterminated policy variable"),
            (
                "${}",
                "malformed policy variable \"${}\" (expected ${key} or ${key, 'default'})",
            ),
            (
                "${iot:Client Id}",
                "malformed policy variable \"${iot:Client Id}\" (expected ${key} or ${key, 'default'})",
            ),
            (
                "${iot:ClientId, x}",
                "malformed policy variable \"${iot:ClientId, x}\" (expected ${key} or ${key, 'default'})",
            ),
            (
                "${iot:ClientId, '}",
                "malformed policy variable \"${iot:ClientId, '}\" (expected ${key} or ${key, 'default'})",
            ),
        ];
        for (template, message) in cases {
            assert_eq!(
                Template::parse(template),
                Err(message.to_owned()),
                "{template}"
            );
        }
    }

    #[test]
    fn reports_unsupported_keys() {
        let template = Template::parse("${aws:SourceIp}/${iot:ClientId}").unwrap();
        assert_eq!(
            template.unsupported_variables().collect::<Vec<_>>(),
            ["aws:SourceIp"]
        );
        assert_eq!(
            Template::parse("a/*")
                .unwrap()
                .unsupported_variables()
                .count(),
            0
        );
    }
}
