//! civitas rules: the AWS IoT SQL dialect (version 2016-03-23) that selects
//! and reshapes messages for rule actions. This crate is pure — text in,
//! values out — and holds the parser, civitas' intermediate form and the
//! evaluator; actions and the runtime that feeds messages live elsewhere.
//!
//! ```
//! use civitas_rules::{EvalContext, Message, Output, Rule};
//!
//! let rule = Rule::parse(
//!     "SELECT temperature, topic(2) AS city FROM 'city/+/telemetry' WHERE temperature > 30",
//! ).unwrap();
//! assert!(rule.matches_topic("city/oslo/telemetry"));
//! let msg = Message {
//!     topic: "city/oslo/telemetry",
//!     payload: br#"{"temperature": 31.5}"#,
//!     client_id: Some("sensor-1"),
//!     principal: None,
//!     timestamp_ms: 0,
//! };
//! let out = rule.evaluate(&msg, &EvalContext::default()).unwrap();
//! assert_eq!(
//!     out,
//!     Some(Output::Json(serde_json::json!({"temperature": 31.5, "city": "oslo"})))
//! );
//! ```
//!
//! # Supported subset
//!
//! - `SELECT *`, `SELECT expr [AS name], …` (mixing `*` in), `SELECT VALUE
//!   expr`; `FROM '<MQTT topic filter>'` (validated); `WHERE`.
//! - Paths `a.b.c`, `a[0]`, `get(x, key)`; nested
//!   `(SELECT … FROM path [WHERE …])` over arrays; `CASE x WHEN …` and
//!   `CASE WHEN …` with optional `ELSE`; array `[…]` and object `{'k': v}`
//!   literals; strings in `'…'` or `"…"` (a doubled quote escapes), numbers,
//!   `TRUE`, `FALSE`, `NULL`.
//! - `+ - * / %`, unary `-`, `= <> != < <= > >=`, `AND OR NOT`, and as
//!   civitas extensions `[NOT] IN (…)`, `IS [NOT] NULL`, `IS [NOT] UNDEFINED`.
//! - The functions listed on [`Rule::parse`].
//!
//! Anything else — other functions, `*` outside a SELECT item or
//! `encode(*, …)`, an unnamed computed SELECT item, a dotted alias — is
//! refused by [`Rule::parse`] with a line and column.
//!
//! # Where civitas differs from AWS
//!
//! - Decimals are doubles (AWS keeps 34 digits); `+ - * / %` are done on
//!   their shortest decimal forms, so `0.1 + 0.2` is `0.3` as in AWS.
//! - Regular expressions use the `regex` crate's syntax (no look-around or
//!   back-references; a literal pattern that uses them is refused);
//!   replacement strings use Java's `$1`/`${name}`/`\$` as AWS does.
//! - `substring` and `get` on strings count Unicode characters, not UTF-16
//!   units; `parse_time` supports UTC and fixed offsets, not regional zones.
//! - `get_thing_shadow` ignores the role ARN and also takes just a thing.
//! - A nested SELECT over something that is not an array is `Undefined`.

pub mod ast;
mod decimal;
mod error;
mod eval;
mod functions;
mod ir;
mod lexer;
mod ops;
mod parser;
mod print;
mod value;

pub use error::{EvalError, Position, ShadowError, SqlError};
pub use eval::{Document, EvalContext, Message, Output, ShadowLookup};
pub use value::{Json, Value};

/// A parsed, checked and lowered rule statement, ready to evaluate.
#[derive(Debug)]
pub struct Rule {
    ast: ast::Query,
    program: ir::Program,
}

impl Rule {
    /// Parses `sql`, refusing anything outside the supported subset with
    /// the line and column of the offending text.
    ///
    /// Functions: `topic()`, `topic(n)`, `clientid()`, `principal()`,
    /// `timestamp()`, `newuuid()`, `traceid()`, `get_thing_shadow(thing[,
    /// shadow], roleArn)` (or just `(thing)`), `get(x, key)`,
    /// `concat(…)`, `lower`, `upper`, `substring(s, start[, end])`,
    /// `startswith`, `endswith`, `regexp_matches`, `regexp_replace`, `abs`,
    /// `round`, `floor`, `ceil`, `power`, `sqrt`, `mod`, `cast(x AS
    /// Int|Decimal|Bool|String)`, `isNull`, `isUndefined`,
    /// `encode(*|x, 'base64')`, `decode(x, 'base64')`, `md5`, `sha1`,
    /// `sha224`, `sha256`, `sha384`, `sha512`, `parse_time(pattern, ms[,
    /// zone])`.
    pub fn parse(sql: &str) -> Result<Rule, SqlError> {
        let ast = parser::parse(sql)?;
        let ast::From::Topic { filter, span } = &ast.from else {
            return Err(SqlError::new(sql, 0, "expected FROM with a topic filter"));
        };
        if filter.starts_with("$share/") {
            return Err(SqlError::new(
                sql,
                span.start,
                "a rule cannot read from a shared subscription",
            ));
        }
        if let Err(e) = civitas_mqtt::topic::validate_topic_filter(filter) {
            return Err(SqlError::new(
                sql,
                span.start,
                format!("invalid topic filter: {e}"),
            ));
        }
        let program = ir::lower(sql, &ast)?;
        Ok(Rule { ast, program })
    }

    /// The MQTT topic filter of the FROM clause.
    pub fn from_filter(&self) -> &str {
        match &self.ast.from {
            ast::From::Topic { filter, .. } => filter,
            ast::From::Expr(_) => "",
        }
    }

    /// Whether a message published on `topic` reaches this rule.
    pub fn matches_topic(&self, topic: &str) -> bool {
        civitas_mqtt::topic::matches(self.from_filter(), topic)
    }

    /// Runs the rule on one message: `Ok(None)` when WHERE is not true,
    /// else what the SELECT clause makes of the message.
    pub fn evaluate(
        &self,
        msg: &Message<'_>,
        ctx: &EvalContext<'_>,
    ) -> Result<Option<Output>, EvalError> {
        eval::run(&self.program, msg, &mut Document::new(msg.payload), ctx)
    }

    /// [`Rule::evaluate`] on a payload other statements read too: `doc`
    /// (of `msg.payload`) is parsed by the first of them that needs it.
    pub fn evaluate_in(
        &self,
        msg: &Message<'_>,
        doc: &mut Document<'_>,
        ctx: &EvalContext<'_>,
    ) -> Result<Option<Output>, EvalError> {
        eval::run(&self.program, msg, doc, ctx)
    }

    /// The statement in normalised form; it parses back to the same rule.
    pub fn to_sql(&self) -> String {
        print::query(&self.ast)
    }

    /// The syntax tree the rule was parsed into.
    pub fn ast(&self) -> &ast::Query {
        &self.ast
    }
}
