//! Policy documents as AWS IoT writes them: parsing, validation with
//! messages that point at the offending statement and field, named and
//! versioned policies, and civitas' standard device policy.
//!
//! Validation is strict where a silent misreading could grant access
//! (unknown fields, duplicate keys, `Condition`, a misspelt `Effect`) and
//! lenient where AWS is (actions and resource types civitas does not
//! evaluate are kept), so documents written for AWS IoT load unchanged.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::action::{Action, ActionSet};
use crate::arn::ResourcePattern;
use crate::error::{Location, PolicyError};

/// The only policy language version accepted: the one that introduced
/// policy variables (under `2008-10-17` IAM reads `${…}` literally).
pub const POLICY_LANGUAGE_VERSION: &str = "2012-10-17";

/// AWS IoT `CreatePolicy`: "policyDocument must have a minimum length of 1,
/// with a maximum length of 2048, excluding whitespace" (AWS IoT API
/// Reference, CreatePolicy / CreatePolicyVersion).
pub const MAX_DOCUMENT_CHARS: usize = 2048;

/// AWS IoT policy names: 1 to 128 characters of `[A-Za-z0-9_+=,.@-]`
/// (AWS IoT API Reference, CreatePolicy, `policyName`).
pub const MAX_POLICY_NAME_CHARS: usize = 128;

static STANDARD_DEVICE_POLICY: &str = include_str!("standard_device_policy.json");

/// `Allow` or `Deny` (case-sensitive, as in IAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        })
    }
}

/// One validated statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    actions: Vec<String>,
    resources: Vec<String>,
    pub(crate) action_set: ActionSet,
    pub(crate) resource_patterns: Vec<ResourcePattern>,
}

impl Statement {
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// The `Action` entries as written.
    pub fn actions(&self) -> &[String] {
        &self.actions
    }

    /// The `Resource` entries as written (variables unresolved).
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// Whether the `Action` element covers `action` (wildcards included).
    pub fn covers(&self, action: Action) -> bool {
        self.action_set.contains(action)
    }
}

/// A parsed and validated policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    id: Option<String>,
    statements: Vec<Statement>,
    source: String,
}

impl PolicyDocument {
    /// Parses and validates an AWS IoT policy document.
    pub fn parse(json: &str) -> Result<PolicyDocument, PolicyError> {
        let chars = json.chars().filter(|c| !c.is_whitespace()).count();
        if chars > MAX_DOCUMENT_CHARS {
            return Err(PolicyError::TooLarge {
                chars,
                limit: MAX_DOCUMENT_CHARS,
            });
        }
        let StrictValue(value) =
            serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))?;
        let Value::Object(top) = value else {
            return Err(PolicyError::top("policy document", "must be a JSON object"));
        };
        for key in top.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::top(
                    key,
                    "unknown field (expected Version, Id and Statement)",
                ));
            }
        }
        match top.get("Version") {
            None => {
                return Err(PolicyError::top(
                    "Version",
                    format!(
                        "missing; policies must declare \"Version\": \"{POLICY_LANGUAGE_VERSION}\""
                    ),
                ));
            }
            Some(Value::String(version)) if version == POLICY_LANGUAGE_VERSION => {}
            Some(Value::String(version)) => {
                return Err(PolicyError::top(
                    "Version",
                    format!("{version:?} is not supported; use \"{POLICY_LANGUAGE_VERSION}\""),
                ));
            }
            Some(_) => return Err(PolicyError::top("Version", "must be a string")),
        }
        let id = match top.get("Id") {
            None => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => return Err(PolicyError::top("Id", "must be a string")),
        };
        let statements = match top.get("Statement") {
            None => return Err(PolicyError::top("Statement", "missing")),
            Some(Value::Array(list)) if list.is_empty() => {
                return Err(PolicyError::top("Statement", "must not be empty"));
            }
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(index, value)| parse_statement(index, value))
                .collect::<Result<Vec<_>, _>>()?,
            Some(value @ Value::Object(_)) => vec![parse_statement(0, value)?],
            Some(_) => {
                return Err(PolicyError::top(
                    "Statement",
                    "must be an object or an array of objects",
                ));
            }
        };
        Ok(PolicyDocument {
            id,
            statements,
            source: json.to_owned(),
        })
    }

    /// The optional top-level `Id`.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// The JSON text the document was parsed from, as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Variable keys civitas never resolves (e.g. `aws:SourceIp`), in
    /// document order; statements using them never apply, so tools should
    /// warn about them.
    pub fn unsupported_variables(&self) -> Vec<&str> {
        self.statements
            .iter()
            .flat_map(|s| &s.resource_patterns)
            .flat_map(ResourcePattern::unsupported_variables)
            .collect()
    }
}

/// A policy as attached to certificates and things: name, version and
/// document. The name and version identify the deciding statement in a
/// [`crate::Decision`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPolicy {
    pub name: String,
    pub version: u32,
    pub document: PolicyDocument,
}

/// civitas' default device policy: connect with the client id equal to the
/// device's thing name; publish and receive under
/// `city/*/things/<thing>/*` and `$aws/things/<thing>/*`; subscribe to the
/// same forms as topic filters; get, update and delete its own shadows
/// (classic and named) through the HTTPS API. Shadows over MQTT already
/// need nothing more than the `$aws/things/<thing>/*` topics, so granting
/// the shadow actions on `thing/<thing>` and `thing/<thing>/*` gives HTTPS
/// the same reach and no more: never another thing's shadow. Region and
/// account are wildcards so it applies whatever the server's configuration
/// says.
pub fn standard_device_policy() -> PolicyDocument {
    // A constant of this crate, checked by the tests; no input reaches it.
    PolicyDocument::parse(STANDARD_DEVICE_POLICY)
        .expect("the bundled standard device policy is valid")
}

/// Checks a policy name against AWS IoT's rules.
pub fn validate_policy_name(name: &str) -> Result<(), PolicyError> {
    let problem = if name.is_empty() {
        Some("must not be empty")
    } else if name.chars().count() > MAX_POLICY_NAME_CHARS {
        Some("must be at most 128 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    {
        Some("may contain only letters, digits and _+=,.@-")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(PolicyError::InvalidName {
            name: name.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

fn parse_statement(index: usize, value: &Value) -> Result<Statement, PolicyError> {
    let at = |sid: &Option<String>, field: &str, problem: String| PolicyError::Invalid {
        location: Location {
            statement: Some(index),
            sid: sid.clone(),
            field: field.to_owned(),
        },
        problem,
    };
    let Value::Object(fields) = value else {
        return Err(at(&None, "", "must be an object".into()));
    };
    let sid = match fields.get("Sid") {
        None => None,
        Some(Value::String(sid)) => Some(sid.clone()),
        Some(_) => return Err(at(&None, "Sid", "must be a string".into())),
    };
    for key in fields.keys() {
        let problem = match key.as_str() {
            "Sid" | "Effect" | "Action" | "Resource" => continue,
            "Condition" => {
                "conditions are not supported; civitas evaluates Effect, Action and Resource \
                 (use policy variables in Resource instead)"
            }
            "NotAction" | "NotResource" | "Principal" | "NotPrincipal" => "is not supported",
            _ => "unknown field (expected Sid, Effect, Action and Resource)",
        };
        return Err(at(&sid, key, problem.into()));
    }
    let effect = match fields.get("Effect") {
        None => {
            return Err(at(
                &sid,
                "Effect",
                "missing (must be \"Allow\" or \"Deny\")".into(),
            ));
        }
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(Value::String(e)) => {
            return Err(at(
                &sid,
                "Effect",
                format!("{e:?} must be \"Allow\" or \"Deny\""),
            ));
        }
        Some(_) => return Err(at(&sid, "Effect", "must be a string".into())),
    };
    let actions = string_list(fields, "Action").map_err(|(f, p)| at(&sid, &f, p))?;
    let mut action_set = ActionSet::default();
    for (field, action) in &actions {
        action_set
            .add_pattern(action)
            .map_err(|problem| at(&sid, field, problem))?;
    }
    let resources = string_list(fields, "Resource").map_err(|(f, p)| at(&sid, &f, p))?;
    let resource_patterns = resources
        .iter()
        .map(|(field, text)| ResourcePattern::parse(text).map_err(|p| at(&sid, field, p)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Statement {
        sid,
        effect,
        actions: actions.into_iter().map(|(_, a)| a).collect(),
        resources: resources.into_iter().map(|(_, r)| r).collect(),
        action_set,
        resource_patterns,
    })
}

/// A string-or-array-of-strings field, each entry paired with its path
/// (`Action` for the single-string form, `Action[1]` in an array).
fn string_list(
    fields: &Map<String, Value>,
    name: &str,
) -> Result<Vec<(String, String)>, (String, String)> {
    match fields.get(name) {
        None => Err((name.to_owned(), "missing".into())),
        Some(Value::String(text)) => Ok(vec![(name.to_owned(), text.clone())]),
        Some(Value::Array(list)) if list.is_empty() => {
            Err((name.to_owned(), "must not be empty".into()))
        }
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(text) => Ok((format!("{name}[{i}]"), text.clone())),
                _ => Err((format!("{name}[{i}]"), "must be a string".into())),
            })
            .collect(),
        Some(_) => Err((
            name.to_owned(),
            "must be a string or an array of strings".into(),
        )),
    }
}

/// A JSON value that refuses duplicate object keys: with plain
/// `serde_json::Value` the last duplicate silently wins, so
/// `"Effect":"Deny", …, "Effect":"Allow"` would read as an Allow.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate field {key:?}")));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_device_policy_parses() {
        let policy = standard_device_policy();
        assert_eq!(policy.statements().len(), 4);
        assert!(policy.unsupported_variables().is_empty());
        assert!(policy.statements()[0].covers(Action::Connect));
        assert!(policy.statements()[1].covers(Action::Receive));
        assert!(!policy.statements()[1].covers(Action::RetainPublish));
    }

    #[test]
    fn single_statement_object_and_optional_fields() {
        let policy = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Id":"p1","Statement":
                {"Effect":"Deny","Action":"iot:*","Resource":"*"}}"#,
        )
        .unwrap();
        assert_eq!(policy.id(), Some("p1"));
        let [statement] = policy.statements() else {
            panic!("one statement expected");
        };
        assert_eq!(statement.sid(), None);
        assert_eq!(statement.effect(), Effect::Deny);
        assert_eq!(statement.actions(), ["iot:*"]);
        assert_eq!(statement.resources(), ["*"]);
    }

    #[test]
    fn policy_names() {
        assert!(validate_policy_name("Device_Policy-1.v2@city=north,+").is_ok());
        assert!(validate_policy_name(&"a".repeat(128)).is_ok());
        for (name, message) in [
            ("", "policy name \"\" is invalid: must not be empty"),
            (
                "a b",
                "policy name \"a b\" is invalid: may contain only letters, digits and _+=,.@-",
            ),
            (
                "é",
                "policy name \"é\" is invalid: may contain only letters, digits and _+=,.@-",
            ),
        ] {
            assert_eq!(validate_policy_name(name).unwrap_err().to_string(), message);
        }
        assert!(validate_policy_name(&"a".repeat(129)).is_err());
    }
}
