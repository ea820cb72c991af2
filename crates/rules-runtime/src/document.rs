//! Rule documents in AWS's `TopicRulePayload` shape, and their
//! validation:
//!
//! ```json
//! {"sql": "SELECT * FROM 'city/+/things/+/telemetry' WHERE power_w > 150",
//!  "awsIotSqlVersion": "2016-03-23", "ruleDisabled": false,
//!  "description": "…", "actions": [{"republish": {"topic": "…"}}],
//!  "errorAction": {"republish": {"topic": "…"}}}
//! ```
//!
//! A document may also come wrapped as `{"topicRulePayload": {…}}`, as
//! the AWS API takes it. Validation parses the SQL (errors carry line and
//! column), checks every action's type and fields, and compiles every
//! substitution template; an error names the field it is about.

use civitas_rules::{Json, Rule};
use serde::{Deserialize, Serialize};

use crate::actions::ActionSpec;

/// The only SQL version civitas speaks; a document without one is taken
/// to mean it.
pub const SQL_VERSION: &str = "2016-03-23";
/// AWS allows at most ten actions per rule.
pub const MAX_ACTIONS: usize = 10;
/// AWS's limit on rule names.
pub const MAX_NAME_LEN: usize = 128;

/// A rule document as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleDocument {
    pub sql: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub rule_disabled: bool,
    #[serde(default = "sql_version")]
    pub aws_iot_sql_version: String,
    #[serde(default)]
    pub actions: Vec<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_action: Option<Json>,
}

fn sql_version() -> String {
    SQL_VERSION.to_owned()
}

/// A refused document: the field at fault (`sql`, `actions[1].http.url`,
/// …) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DocumentError {
    pub field: String,
    pub message: String,
}

impl DocumentError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> DocumentError {
        DocumentError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A checked rule: its document, the parsed statement and the compiled
/// actions.
#[derive(Debug)]
pub struct ValidRule {
    pub name: String,
    pub document: RuleDocument,
    pub sql: Rule,
    pub actions: Vec<ActionSpec>,
    pub error_action: Option<ActionSpec>,
}

impl ValidRule {
    pub fn enabled(&self) -> bool {
        !self.document.rule_disabled
    }
}

/// Whether `name` is a valid rule name: 1 to 128 ASCII letters, digits
/// and underscores, as AWS has it.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses a document from JSON text.
pub fn parse_document(text: &str) -> Result<RuleDocument, DocumentError> {
    let value: Json = serde_json::from_str(text)
        .map_err(|e| DocumentError::new("document", format!("not JSON: {e}")))?;
    document_from_value(value)
}

/// A document from a JSON value, unwrapping `{"topicRulePayload": …}`.
pub fn document_from_value(value: Json) -> Result<RuleDocument, DocumentError> {
    let value = match value {
        Json::Object(mut map) if map.len() == 1 && map.contains_key("topicRulePayload") => {
            map.remove("topicRulePayload").unwrap_or(Json::Null)
        }
        other => other,
    };
    if !value.is_object() {
        return Err(DocumentError::new(
            "document",
            "expected a JSON object (a TopicRulePayload)",
        ));
    }
    serde_json::from_value(value).map_err(|e| DocumentError::new("document", e.to_string()))
}

/// Checks `document` as the rule `name`.
pub fn validate(name: &str, document: RuleDocument) -> Result<ValidRule, DocumentError> {
    if !valid_name(name) {
        return Err(DocumentError::new(
            "ruleName",
            format!(
                "{name:?} is not a rule name: use 1 to {MAX_NAME_LEN} letters, digits and underscores"
            ),
        ));
    }
    if document.aws_iot_sql_version != SQL_VERSION {
        return Err(DocumentError::new(
            "awsIotSqlVersion",
            format!(
                "{:?} is not supported; civitas speaks {SQL_VERSION}",
                document.aws_iot_sql_version
            ),
        ));
    }
    let sql = Rule::parse(&document.sql).map_err(|e| DocumentError::new("sql", e.to_string()))?;
    if document.actions.len() > MAX_ACTIONS {
        return Err(DocumentError::new(
            "actions",
            format!(
                "{} actions; a rule has at most {MAX_ACTIONS}",
                document.actions.len()
            ),
        ));
    }
    let actions = document
        .actions
        .iter()
        .enumerate()
        .map(|(i, a)| ActionSpec::parse(a, &format!("actions[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let error_action = document
        .error_action
        .as_ref()
        .map(|a| ActionSpec::parse(a, "errorAction"))
        .transpose()?;
    Ok(ValidRule {
        name: name.to_owned(),
        document,
        sql,
        actions,
        error_action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, doc: &str) -> Result<ValidRule, DocumentError> {
        validate(name, parse_document(doc)?)
    }

    #[test]
    fn names_follow_aws() {
        for ok in ["a", "Lamp_Alerts_2", &"x".repeat(128)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "lamp-alerts", "a b", "é", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_full_document_is_accepted() {
        let rule = check(
            "lamp_alerts",
            r#"{"topicRulePayload": {
                "sql": "SELECT * FROM 'city/+/things/+/telemetry' WHERE power_w > 150",
                "awsIotSqlVersion": "2016-03-23",
                "ruleDisabled": false,
                "description": "lamps drawing too much",
                "actions": [{"republish": {"topic": "city/alerts/${topic(4)}", "qos": 1,
                                           "roleArn": "arn:aws:iam::1:role/x"}}],
                "errorAction": {"republish": {"topic": "city/rule-errors"}}
            }}"#,
        )
        .unwrap();
        assert_eq!(rule.actions.len(), 1);
        assert!(rule.error_action.is_some());
        assert!(rule.enabled());
        assert!(rule.sql.matches_topic("city/a/things/b/telemetry"));
    }

    #[test]
    fn refusals_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("not json", "document", "not JSON"),
            ("[]", "document", "expected a JSON object"),
            (r#"{"actions": []}"#, "document", "missing field `sql`"),
            (
                r#"{"sql": "SELECT * FROM 'a'", "colour": 1}"#,
                "document",
                "unknown field `colour`",
            ),
            (
                r#"{"sql": "SELECT * FROM 'a'", "awsIotSqlVersion": "2015-10-08"}"#,
                "awsIotSqlVersion",
                "2015-10-08",
            ),
            (
                r#"{"sql": "SELECT *\nFROM 'a' WHERE"}"#,
                "sql",
                "line 2, column",
            ),
            (
                r#"{"sql": "SELECT * FROM 'a'", "actions": [{"lambda": {"functionArn": "x"}}]}"#,
                "actions[0]",
                "unknown action type \"lambda\"",
            ),
            (
                r#"{"sql": "SELECT * FROM 'a'", "actions": [{"republish": {"topic": "x"}, "http": {"url": "https://h"}}]}"#,
                "actions[0]",
                "exactly one action type",
            ),
            (
                r#"{"sql": "SELECT * FROM 'a'", "actions": [{"republish": {"topic": "x", "qos": 2}}]}"#,
                "actions[0].republish.qos",
                "0 or 1",
            ),
            (
                r#"{"sql": "SELECT * FROM 'a'", "actions": [{"republish": {"topic": "x/${topic(}"}}]}"#,
                "actions[0].republish.topic",
                "column",
            ),
            (
                r#"{"sql": "SELECT * FROM 'a'", "actions": [{"republish": {"topc": "x"}}]}"#,
                "actions[0].republish",
                "unknown field `topc`",
            ),
            (
                r#"{"sql": "SELECT * FROM 'a'", "errorAction": {"http": {"url": "http://plain"}}}"#,
                "errorAction.http.url",
                "https://",
            ),
        ];
        for (doc, field, needle) in cases {
            let e = check("r", doc).expect_err(doc);
            assert_eq!(e.field, *field, "{doc}: {e}");
            assert!(
                e.message.contains(needle),
                "{doc}: {e} should mention {needle:?}"
            );
        }
        let e = check("bad-name", r#"{"sql": "SELECT * FROM 'a'"}"#).unwrap_err();
        assert_eq!(e.field, "ruleName");
        let many = format!(
            r#"{{"sql": "SELECT * FROM 'a'", "actions": [{}]}}"#,
            [r#"{"republish": {"topic": "x"}}"#; 11].join(",")
        );
        assert_eq!(check("r", &many).unwrap_err().field, "actions");
    }
}
