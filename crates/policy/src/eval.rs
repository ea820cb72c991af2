//! Decisions: the outcome of checking one action on one resource, naming
//! the statement that decided it so operators can see why.
//!
//! AWS IoT follows IAM's evaluation logic: everything is denied by
//! default, an Allow in any attached policy grants, and a Deny in any
//! attached policy overrides every Allow.

use std::fmt;
use std::sync::Arc;

use crate::action::Action;
use crate::compiled::ResolvedPolicies;
use crate::document::NamedPolicy;
use crate::variables::Context;

/// How a request was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionKind {
    /// A Deny statement matched; no Allow can override it.
    ExplicitDeny,
    /// An Allow statement matched and no Deny did.
    Allow,
    /// Nothing matched: denied by default.
    ImplicitDeny,
}

/// The statement that decided a request. Names are shared (`Arc<str>`) so
/// that producing a decision does not allocate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatementRef {
    /// Name of the policy the statement belongs to.
    pub policy: Arc<str>,
    /// Version of that policy.
    pub version: u32,
    /// Index of the statement within the policy's `Statement` list.
    pub index: usize,
    pub sid: Option<Arc<str>>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy {:?} version {} Statement[{}]",
            self.policy, self.version, self.index
        )?;
        if let Some(sid) = &self.sid {
            write!(f, " (Sid {sid:?})")?;
        }
        Ok(())
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decision {
    pub allowed: bool,
    pub effect: DecisionKind,
    /// The deciding statement: the first matching Deny for
    /// [`DecisionKind::ExplicitDeny`], the first matching Allow for
    /// [`DecisionKind::Allow`] (in policy order, then statement order),
    /// `None` for [`DecisionKind::ImplicitDeny`].
    pub statement: Option<StatementRef>,
}

impl Decision {
    pub(crate) fn explicit_deny(statement: StatementRef) -> Decision {
        Decision {
            allowed: false,
            effect: DecisionKind::ExplicitDeny,
            statement: Some(statement),
        }
    }

    pub(crate) fn allow(statement: StatementRef) -> Decision {
        Decision {
            allowed: true,
            effect: DecisionKind::Allow,
            statement: Some(statement),
        }
    }

    pub(crate) fn implicit_deny() -> Decision {
        Decision {
            allowed: false,
            effect: DecisionKind::ImplicitDeny,
            statement: None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.effect, &self.statement) {
            (DecisionKind::Allow, Some(statement)) => write!(f, "allowed by {statement}"),
            (DecisionKind::ExplicitDeny, Some(statement)) => {
                write!(f, "explicitly denied by {statement}")
            }
            _ => f.write_str("denied: no statement allows it"),
        }
    }
}

/// Resolves `policies` for `ctx` and checks one request. For repeated
/// checks on one connection, resolve once with [`ResolvedPolicies::resolve`].
pub fn evaluate<'a>(
    policies: impl IntoIterator<Item = &'a NamedPolicy>,
    ctx: &Context,
    action: Action,
    resource: &str,
) -> Decision {
    ResolvedPolicies::resolve(policies, ctx).check(action, resource)
}
