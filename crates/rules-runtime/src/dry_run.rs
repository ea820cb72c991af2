//! `rule test`: one rule on one sample message, without side effects.
//! The report shows whether the FROM filter matches, what the SELECT
//! produced, what each action would receive (every template rendered),
//! and — when something would fail — what the error action would get.

use civitas_rules::{Json, Output};
use serde::{Deserialize, Serialize};

use crate::actions::{ActionError, Invocation};
use crate::document::ValidRule;
use crate::message::{ErrorDocument, Failure, RuleMessage};
use crate::runtime::{ActionDeps, Evaluation, evaluate, prepare_error_action};

/// What a rule would do with a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    pub rule: String,
    pub topic: String,
    /// Whether a message on `topic` reaches the rule (its FROM filter, or
    /// Basic Ingest naming it).
    pub topic_matches: bool,
    /// Whether the WHERE clause let the message through.
    pub passed: bool,
    /// What the SELECT produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Json>,
    /// Why the SQL could not be evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub actions: Vec<ActionPreview>,
    /// What the error action would receive, when something would fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_action: Option<ActionPreview>,
}

/// One action's part of a [`TestReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionPreview {
    pub action: String,
    /// What it would receive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation: Option<Json>,
    /// Why it would fail before it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn preview(action: &str, prepared: Result<Invocation, ActionError>) -> ActionPreview {
    match prepared {
        Ok(invocation) => ActionPreview {
            action: action.to_owned(),
            invocation: Some(serde_json::to_value(&invocation).unwrap_or(Json::Null)),
            error: None,
        },
        Err(e) => ActionPreview {
            action: action.to_owned(),
            invocation: None,
            error: Some(e.to_string()),
        },
    }
}

fn output_json(output: &Output) -> Json {
    match output {
        Output::Json(j) => j.clone(),
        Output::Raw(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Json::String(text.to_owned()),
            Err(_) => serde_json::json!({"base64": crate::payload::base64(bytes)}),
        },
    }
}

/// Runs `rule` on `message` and reports; nothing is performed.
pub fn test_rule(rule: &ValidRule, deps: &ActionDeps, message: &RuleMessage) -> TestReport {
    let topic_matches = crate::runtime::ingest_rule_name(&message.topic).map_or_else(
        || rule.sql.matches_topic(&message.topic),
        |n| n == rule.name,
    );
    let mut report = TestReport {
        rule: rule.name.clone(),
        topic: message.topic.clone(),
        topic_matches,
        passed: false,
        output: None,
        error: None,
        actions: Vec::new(),
        error_action: None,
    };
    let mut failures = Vec::new();
    match evaluate(rule, deps, message) {
        Evaluation::Skipped => {}
        Evaluation::Failed(e) => {
            report.error = Some(e.to_string());
            failures.push(Failure {
                failed_action: "RuleEvaluation".into(),
                failed_resource: rule.name.clone(),
                error_message: e.to_string(),
            });
        }
        Evaluation::Ran {
            output,
            invocations,
        } => {
            report.passed = true;
            report.output = Some(output_json(&output));
            for (spec, prepared) in rule.actions.iter().zip(invocations) {
                if let Err(e) = &prepared {
                    failures.push(Failure {
                        failed_action: spec.failed_action_name().into(),
                        failed_resource: spec.resource_hint(),
                        error_message: e.to_string(),
                    });
                }
                report.actions.push(preview(spec.kind(), prepared));
            }
        }
    }
    if !failures.is_empty() {
        let document = ErrorDocument::new(&rule.name, message, failures);
        report.error_action = prepare_error_action(rule, deps, message, &document)
            .map(|(kind, prepared)| preview(kind, prepared));
    }
    report
}
