//! Policies resolved for one connection: variables substituted, region and
//! account settled, and statements sorted per action into Deny and Allow
//! rule lists, so that a check scans only the rules that can apply to its
//! action and mostly compares bytes.
//!
//! Cost does not depend on how many devices exist: a connection's compiled
//! form holds only its own attached policies.

use std::sync::Arc;

use crate::action::Action;
use crate::arn::{ResolvedResource, ResourceType};
use crate::document::{Effect, NamedPolicy};
use crate::eval::{Decision, StatementRef};
use crate::pattern::{Pattern, Shape};
use crate::variables::Context;

#[derive(Debug, Clone)]
enum Matcher {
    Any,
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    /// Against the resource name.
    Glob(Pattern),
    /// Against `TYPE/NAME`: the ARN's resource type had wildcards.
    Wild(Pattern),
}

impl Matcher {
    fn for_name(pattern: &Pattern) -> Matcher {
        match pattern.shape() {
            Shape::Any => Matcher::Any,
            Shape::Exact(bytes) => Matcher::Exact(bytes),
            Shape::Prefix(bytes) => Matcher::Prefix(bytes),
            Shape::Glob => Matcher::Glob(pattern.clone()),
        }
    }

    fn for_type_and_name(pattern: &Pattern) -> Matcher {
        match pattern.shape() {
            Shape::Any => Matcher::Any,
            _ => Matcher::Wild(pattern.clone()),
        }
    }

    fn matches(&self, resource_type: ResourceType, name: &str) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Exact(bytes) => name.as_bytes() == &bytes[..],
            Matcher::Prefix(bytes) => name.as_bytes().starts_with(bytes),
            Matcher::Glob(pattern) => pattern.is_match(name),
            Matcher::Wild(pattern) => pattern.is_match_joined(resource_type.prefix(), name),
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    matcher: Matcher,
    /// Index into [`ResolvedPolicies::statements`].
    statement: usize,
}

#[derive(Debug, Clone, Default)]
struct RuleList {
    rules: Vec<Rule>,
    /// Set once a rule matching everything is in: later rules could never
    /// be the first match, so they are not added.
    complete: bool,
}

impl RuleList {
    fn push(&mut self, rule: Rule) {
        if self.complete {
            return;
        }
        self.complete = matches!(rule.matcher, Matcher::Any);
        self.rules.push(rule);
    }

    fn first_match(&self, resource_type: ResourceType, name: &str) -> Option<usize> {
        self.rules
            .iter()
            .find(|rule| rule.matcher.matches(resource_type, name))
            .map(|rule| rule.statement)
    }
}

#[derive(Debug, Clone, Default)]
struct ActionRules {
    deny: RuleList,
    allow: RuleList,
}

/// The policies attached to one connection, compiled for its [`Context`].
#[derive(Debug, Clone, Default)]
pub struct ResolvedPolicies {
    statements: Vec<StatementRef>,
    by_action: [ActionRules; Action::ALL.len()],
}

impl ResolvedPolicies {
    /// Compiles `policies` for one connection. Statements are kept in
    /// policy order, then statement order, which decides which statement a
    /// [`Decision`] names when several match.
    ///
    /// A statement with a policy variable that has no value in `ctx` (in
    /// any of its resources) is dropped entirely, following IAM: an
    /// unresolvable variable invalidates the statement, so it neither allows
    /// nor denies.
    pub fn resolve<'a>(
        policies: impl IntoIterator<Item = &'a NamedPolicy>,
        ctx: &Context,
    ) -> ResolvedPolicies {
        let mut resolved = ResolvedPolicies::default();
        for policy in policies {
            let name: Arc<str> = Arc::from(policy.name.as_str());
            for (index, statement) in policy.document.statements().iter().enumerate() {
                let resources: Option<Vec<ResolvedResource>> = statement
                    .resource_patterns
                    .iter()
                    .map(|pattern| pattern.resolve(ctx))
                    .collect();
                let Some(resources) = resources else {
                    continue;
                };
                let statement_index = resolved.statements.len();
                let mut used = false;
                for action in Action::ALL.into_iter().filter(|a| statement.covers(*a)) {
                    let rules = &mut resolved.by_action[action.index()];
                    let list = match statement.effect() {
                        Effect::Deny => &mut rules.deny,
                        Effect::Allow => &mut rules.allow,
                    };
                    for resource in &resources {
                        let matcher = match resource {
                            ResolvedResource::Everything => Matcher::Any,
                            ResolvedResource::Named(resource_type, pattern)
                                if *resource_type == action.resource_type() =>
                            {
                                Matcher::for_name(pattern)
                            }
                            ResolvedResource::Wild(pattern) => Matcher::for_type_and_name(pattern),
                            ResolvedResource::Named(..) | ResolvedResource::Nothing => continue,
                        };
                        list.push(Rule {
                            matcher,
                            statement: statement_index,
                        });
                        used = true;
                    }
                }
                if used {
                    resolved.statements.push(StatementRef {
                        policy: Arc::clone(&name),
                        version: policy.version,
                        index,
                        sid: statement.sid().map(Arc::from),
                    });
                }
            }
        }
        resolved
    }

    /// Decides `action` on `resource`: the topic name for Publish, Receive,
    /// RetainPublish and GetRetainedMessage; the topic filter exactly as the
    /// client sent it for Subscribe; the client id for Connect; the thing
    /// name (or `thing/shadow`) for the shadow actions. The ARN is implied:
    /// region and account were settled at resolve time.
    pub fn check(&self, action: Action, resource: &str) -> Decision {
        let rules = &self.by_action[action.index()];
        let resource_type = action.resource_type();
        if let Some(statement) = rules.deny.first_match(resource_type, resource) {
            return Decision::explicit_deny(self.statements[statement].clone());
        }
        if let Some(statement) = rules.allow.first_match(resource_type, resource) {
            return Decision::allow(self.statements[statement].clone());
        }
        Decision::implicit_deny()
    }

    /// [`Self::check`] reduced to its verdict, for hot paths that do not
    /// report which statement decided.
    pub fn allows(&self, action: Action, resource: &str) -> bool {
        let rules = &self.by_action[action.index()];
        let resource_type = action.resource_type();
        rules.deny.first_match(resource_type, resource).is_none()
            && rules.allow.first_match(resource_type, resource).is_some()
    }

    /// Whether no statement applies to this connection at all (every
    /// check is an implicit deny).
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }
}
