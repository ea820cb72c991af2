//! AWS IoT policies for civitas: documents as AWS writes them, policy
//! variables, and allow/deny evaluation with AWS semantics. Pure: no I/O,
//! no clock, no global state.
//!
//! Parse documents once with [`PolicyDocument::parse`]; when a connection
//! is established, compile its attached policies with
//! [`ResolvedPolicies::resolve`] (variables substituted from its
//! [`Context`]) and call [`ResolvedPolicies::check`] on CONNECT, each
//! PUBLISH, each SUBSCRIBE filter and each delivery (`Receive`).
//!
//! Matching follows AWS IoT: in resources `*` matches any characters
//! including `/` and `?` exactly one, while MQTT's `+` and `#` are literal
//! characters (a `topicfilter/` resource is compared with the filter as the
//! client sent it). Default deny; any explicit Deny beats every Allow.

mod action;
mod arn;
mod compiled;
mod document;
mod error;
mod eval;
mod pattern;
mod variables;

pub use action::Action;
pub use arn::ResourceType;
pub use compiled::ResolvedPolicies;
pub use document::{
    Effect, MAX_DOCUMENT_CHARS, MAX_POLICY_NAME_CHARS, NamedPolicy, POLICY_LANGUAGE_VERSION,
    PolicyDocument, Statement, standard_device_policy, validate_policy_name,
};
pub use error::{Location, PolicyError};
pub use eval::{Decision, DecisionKind, StatementRef, evaluate};
pub use variables::Context;
