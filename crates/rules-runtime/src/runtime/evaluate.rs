//! One rule on one message, without side effects: the SQL is evaluated
//! and every action prepared (its templates rendered). The worker then
//! performs the invocations; `rule test` shows them.

use std::cell::RefCell;

use civitas_rules::{Document, EvalContext, EvalError, Json, Output, ShadowError};

use super::ActionDeps;
use crate::actions::{ActionError, ActionSpec, Invocation, Prepare};
use crate::document::ValidRule;
use crate::message::{ErrorDocument, RuleMessage, new_uuid};

/// What a rule made of a message.
#[derive(Debug)]
pub(crate) enum Evaluation {
    /// The SQL could not run (a shadow lookup failed, say).
    Failed(EvalError),
    /// WHERE was not true.
    Skipped,
    Ran {
        output: Output,
        /// One per action, in order.
        invocations: Vec<Result<Invocation, ActionError>>,
    },
}

/// Runs `f` with the evaluation context for `message`: fresh UUIDs, the
/// message's trace id, and shadows when the engine has them.
fn with_context<R>(
    deps: &ActionDeps,
    message: &RuleMessage,
    f: impl FnOnce(&EvalContext<'_>) -> R,
) -> R {
    let newuuid = new_uuid;
    let traceid = || Some(message.trace_id.clone());
    let lookup = |thing: &str, shadow: Option<&str>| -> Result<Option<Json>, ShadowError> {
        match &deps.shadows {
            Some(shadows) => shadows.get(thing, shadow).map_err(Into::into),
            None => Ok(None),
        }
    };
    let context = EvalContext {
        newuuid: Some(&newuuid),
        traceid: Some(&traceid),
        thing_shadow: deps
            .shadows
            .is_some()
            .then_some(&lookup as &civitas_rules::ShadowLookup<'_>),
    };
    f(&context)
}

pub(crate) fn evaluate(rule: &ValidRule, deps: &ActionDeps, message: &RuleMessage) -> Evaluation {
    with_context(deps, message, |context| {
        let msg = message.as_message();
        let document = RefCell::new(Document::new(msg.payload));
        let output = match rule
            .sql
            .evaluate_in(&msg, &mut document.borrow_mut(), context)
        {
            Err(e) => return Evaluation::Failed(e),
            Ok(None) => return Evaluation::Skipped,
            Ok(Some(output)) => output,
        };
        let p = Prepare {
            rule: &rule.sql,
            message: &msg,
            document: &document,
            context,
            output: &output,
        };
        let invocations = rule.actions.iter().map(|a| a.prepare(&p)).collect();
        Evaluation::Ran {
            output,
            invocations,
        }
    })
}

/// Prepares the rule's error action for `document`; `None` without one.
pub(crate) fn prepare_error_action(
    rule: &ValidRule,
    deps: &ActionDeps,
    message: &RuleMessage,
    document: &ErrorDocument,
) -> Option<(&'static str, Result<Invocation, ActionError>)> {
    let action: &ActionSpec = rule.error_action.as_ref()?;
    let output = Output::Json(document.to_json());
    Some((
        action.kind(),
        with_context(deps, message, |context| {
            let msg = message.as_message();
            action.prepare(&Prepare {
                rule: &rule.sql,
                message: &msg,
                document: &RefCell::new(Document::new(msg.payload)),
                context,
                output: &output,
            })
        }),
    ))
}
