//! Substitution templates, AWS style: text with `${expression}` holes,
//! where an expression is anything the rules SQL allows in a SELECT
//! (`${topic(3)}`, `${clientid()}`, `${power_w * 2}`). As in AWS, the
//! holes are evaluated against the original message, not the rule's
//! output, so they cannot see the SELECT's aliases.
//!
//! A template is compiled once, into one `SELECT VALUE {'0': (e0), …}`
//! statement, so rendering parses the payload once however many holes
//! there are. A value that is a string is substituted as is, anything
//! else as its JSON text, and an `Undefined` one as nothing.

use std::fmt;

use civitas_rules::{Document, EvalContext, EvalError, Json, Message, Output, Rule};

/// A compiled template.
#[derive(Debug)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
    /// Boxed: a compiled statement is large, and templates are many.
    program: Option<Box<Rule>>,
}

#[derive(Debug)]
enum Part {
    Text(String),
    /// The key of the hole's value in the program's output object.
    Hole(String),
}

/// Why a template was refused: the column (1-based, in characters) of the
/// offending text within the template, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct TemplateError {
    pub column: usize,
    pub message: String,
}

const PREFIX: &str = "SELECT VALUE ";

impl Template {
    /// Compiles `source`, checking every expression in it.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut holes = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(start) = rest.find("${") {
            text.push_str(&rest[..start]);
            let open = source.len() - rest.len() + start;
            let body_start = open + 2;
            let Some(len) = hole_len(&source[body_start..]) else {
                return Err(error_at(source, open, "unterminated ${ (no matching })"));
            };
            let expr = &source[body_start..body_start + len];
            if expr.trim().is_empty() {
                return Err(error_at(source, open, "empty ${}"));
            }
            check_expression(source, body_start, expr)?;
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            let key = holes.len().to_string();
            holes.push(format!("'{key}': ({expr})"));
            parts.push(Part::Hole(key));
            rest = &source[body_start + len + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        let program = if holes.is_empty() {
            None
        } else {
            let sql = format!("{PREFIX}{{{}}} FROM '#'", holes.join(", "));
            // Each expression parsed alone above; together they can only
            // fail if the parser is inconsistent, which is still reported.
            Some(Box::new(Rule::parse(&sql).map_err(|e| TemplateError {
                column: 1,
                message: e.message,
            })?))
        };
        Ok(Template {
            source: source.to_owned(),
            parts,
            program,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the template has no `${}`: it renders to itself.
    pub fn is_literal(&self) -> bool {
        self.program.is_none()
    }

    /// Substitutes every hole for `msg`.
    pub fn render(&self, msg: &Message<'_>, ctx: &EvalContext<'_>) -> Result<String, EvalError> {
        self.render_in(msg, &mut Document::new(msg.payload), ctx)
    }

    /// [`Template::render`] reading the payload from `doc`, which the rule
    /// and the action's other templates share.
    pub fn render_in(
        &self,
        msg: &Message<'_>,
        doc: &mut Document<'_>,
        ctx: &EvalContext<'_>,
    ) -> Result<String, EvalError> {
        let values = match &self.program {
            None => None,
            Some(program) => match program.evaluate_in(msg, doc, ctx)? {
                Some(Output::Json(Json::Object(map))) => Some(map),
                _ => None,
            },
        };
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Hole(key) => match values.as_ref().and_then(|m| m.get(key)) {
                    Some(Json::String(s)) => out.push_str(s),
                    Some(other) => out.push_str(&other.to_string()),
                    None => {}
                },
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The length of a hole's body up to its closing `}`: braces nest (object
/// literals) and quoted strings may hold braces.
fn hole_len(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) if c == q => {
                // A doubled quote is an escaped one.
                if chars.peek().map(|&(_, n)| n) == Some(q) {
                    chars.next();
                } else {
                    quote = None;
                }
            }
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '{' => depth += 1,
                '}' if depth == 0 => return Some(i),
                '}' => depth -= 1,
                _ => {}
            },
        }
    }
    None
}

/// Parses `expr` (at byte `at` of `source`) alone, so that an error can
/// point into the template.
fn check_expression(source: &str, at: usize, expr: &str) -> Result<(), TemplateError> {
    let sql = format!("{PREFIX}{expr} FROM '#'");
    match Rule::parse(&sql) {
        Ok(_) => Ok(()),
        Err(e) => {
            let within = e
                .position
                .offset
                .saturating_sub(PREFIX.len())
                .min(expr.len());
            let within = floor_char_boundary(expr, within);
            Err(error_at(source, at + within, e.message))
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn error_at(source: &str, byte: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        column: source[..byte].chars().count() + 1,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<'a>(topic: &'a str, payload: &'a [u8]) -> Message<'a> {
        Message {
            topic,
            payload,
            client_id: Some("lamp-7"),
            principal: Some("ab12"),
            timestamp_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn renders_holes_against_the_original_message() {
        let payload =
            br#"{"power_w": 180.5, "name": "north", "tags": ["a", 1], "on": true, "n": null}"#;
        let m = msg("city/oslo/things/lamp-7/telemetry", payload);
        let ctx = EvalContext::default();
        let cases: &[(&str, &str)] = &[
            ("plain text", "plain text"),
            ("", ""),
            ("${topic()}", "city/oslo/things/lamp-7/telemetry"),
            ("alerts/${topic(2)}/${topic(4)}", "alerts/oslo/lamp-7"),
            ("${clientid()}-${principal()}", "lamp-7-ab12"),
            ("${timestamp()}", "1700000000123"),
            ("${power_w}", "180.5"),
            ("${power_w * 2} W", "361 W"),
            ("${name}", "north"),
            ("'${name}'", "'north'"),
            ("${tags}", r#"["a",1]"#),
            ("${on}", "true"),
            ("${n}", "null"),
            ("[${missing}]", "[]"),
            ("${upper(name)}${'}'}", "NORTH}"),
            ("${ {'k': name} }", r#"{"k":"north"}"#),
            ("$ {not} $x ${'$'}{", "$ {not} $x ${"),
            (
                "${CASE WHEN power_w > 150 THEN 'ALARM' ELSE 'OK' END}",
                "ALARM",
            ),
            ("${get(tags, 0)}", "a"),
        ];
        for (source, want) in cases {
            let t = Template::parse(source).unwrap_or_else(|e| panic!("{source:?}: {e}"));
            assert_eq!(t.render(&m, &ctx).unwrap(), *want, "template {source:?}");
        }
    }

    #[test]
    fn a_binary_payload_leaves_fields_undefined() {
        let m = msg("a/b", &[0xff, 0x00, 0x10]);
        let t = Template::parse("${topic(1)}:${power_w}").unwrap();
        assert_eq!(t.render(&m, &EvalContext::default()).unwrap(), "a:");
    }

    #[test]
    fn literals_are_known_as_such() {
        assert!(Template::parse("city/alerts").unwrap().is_literal());
        assert!(!Template::parse("city/${topic(2)}").unwrap().is_literal());
    }

    #[test]
    fn bad_templates_are_refused_with_a_column() {
        let cases: &[(&str, usize, &str)] = &[
            ("alerts/${topic(2)", 8, "unterminated"),
            ("x${}", 2, "empty"),
            ("x${   }", 2, "empty"),
            ("ab${nosuchfn(1)}", 5, "nosuchfn"),
            ("${power_w +}", 12, ""),
            ("é${'unclosed}", 2, "unterminated"),
        ];
        for (source, column, needle) in cases {
            let e = Template::parse(source).expect_err(source);
            assert_eq!(e.column, *column, "{source:?}: {e}");
            assert!(
                e.message.contains(needle),
                "{source:?}: {e} should mention {needle:?}"
            );
        }
    }

    #[test]
    fn a_function_without_its_source_fails_to_render() {
        let t = Template::parse("${newuuid()}").unwrap();
        let m = msg("a", b"{}");
        assert!(matches!(
            t.render(&m, &EvalContext::default()),
            Err(EvalError::MissingSource("newuuid"))
        ));
    }
}
