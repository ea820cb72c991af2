//! The syntax tree back to SQL text: keywords upper-case, strings in single
//! quotes, function names in their canonical spelling, and parentheses only
//! where precedence needs them, so the text parses back to the same tree.

use crate::ast::{Expr, ExprKind, From, Literal, Query, Select, SelectItem, UnaryOp, prec};

pub(crate) fn query(q: &Query) -> String {
    let mut out = String::new();
    write_query(&mut out, q);
    out
}

fn write_query(out: &mut String, q: &Query) {
    out.push_str("SELECT ");
    match &q.select {
        Select::Value(e) => {
            out.push_str("VALUE ");
            write_expr(out, e, 0);
        }
        Select::Items(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match item {
                    SelectItem::Star(_) => out.push('*'),
                    SelectItem::Expr { expr, alias } => {
                        write_expr(out, expr, 0);
                        if let Some(alias) = alias {
                            out.push_str(" AS ");
                            out.push_str(alias);
                        }
                    }
                }
            }
        }
    }
    out.push_str(" FROM ");
    match &q.from {
        From::Topic { filter, .. } => write_string(out, filter),
        // A bare string after FROM would read as a topic filter.
        From::Expr(
            e @ Expr {
                kind: ExprKind::Literal(Literal::String(_)),
                ..
            },
        ) => write_expr(out, e, prec::POSTFIX + 1),
        From::Expr(e) => write_expr(out, e, prec::POSTFIX),
    }
    if let Some(filter) = &q.filter {
        out.push_str(" WHERE ");
        write_expr(out, filter, 0);
    }
}

fn precedence(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary(op, ..) => op.precedence(),
        ExprKind::Unary(UnaryOp::Not, _) => prec::NOT,
        ExprKind::Unary(UnaryOp::Neg, _) => prec::NEG,
        ExprKind::Is { .. } | ExprKind::In { .. } => prec::CMP,
        _ => prec::POSTFIX,
    }
}

/// Writes `e`, parenthesised when it binds looser than `min`.
fn write_expr(out: &mut String, e: &Expr, min: u8) {
    let paren = precedence(e) < min;
    if paren {
        out.push('(');
    }
    match &e.kind {
        ExprKind::Literal(l) => write_literal(out, l),
        ExprKind::Ident(name) => out.push_str(name),
        ExprKind::Star => out.push('*'),
        ExprKind::Field(base, name) => {
            // "1.a" would read as a malformed number.
            let int_base = matches!(base.kind, ExprKind::Literal(Literal::Int(_)));
            write_expr(
                out,
                base,
                if int_base {
                    prec::POSTFIX + 1
                } else {
                    prec::POSTFIX
                },
            );
            out.push('.');
            out.push_str(name);
        }
        ExprKind::Index(base, index) => {
            write_expr(out, base, prec::POSTFIX);
            out.push('[');
            write_expr(out, index, 0);
            out.push(']');
        }
        ExprKind::Call(name, args) => {
            out.push_str(canonical_function_name(name));
            out.push('(');
            write_list(out, args);
            out.push(')');
        }
        ExprKind::Cast(value, ty) => {
            out.push_str("cast(");
            write_expr(out, value, 0);
            out.push_str(" AS ");
            out.push_str(ty.keyword());
            out.push(')');
        }
        ExprKind::Unary(UnaryOp::Not, operand) => {
            out.push_str("NOT ");
            write_expr(out, operand, prec::NOT);
        }
        ExprKind::Unary(UnaryOp::Neg, operand) => {
            out.push('-');
            let start = out.len();
            write_expr(out, operand, prec::NEG);
            // "--" would read as a comment in most SQL dialects; keep it apart.
            if out[start..].starts_with('-') {
                out.insert(start, ' ');
            }
        }
        ExprKind::Binary(op, lhs, rhs) => {
            let p = op.precedence();
            write_expr(out, lhs, p);
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            write_expr(out, rhs, p + 1);
        }
        ExprKind::Is {
            expr,
            negated,
            undefined,
        } => {
            write_expr(out, expr, prec::CMP);
            out.push_str(if *negated { " IS NOT " } else { " IS " });
            out.push_str(if *undefined { "UNDEFINED" } else { "NULL" });
        }
        ExprKind::In {
            expr,
            negated,
            list,
        } => {
            write_expr(out, expr, prec::CMP);
            out.push_str(if *negated { " NOT IN (" } else { " IN (" });
            write_list(out, list);
            out.push(')');
        }
        ExprKind::Case {
            operand,
            whens,
            otherwise,
        } => {
            out.push_str("CASE");
            if let Some(op) = operand {
                out.push(' ');
                write_expr(out, op, 0);
            }
            for (when, then) in whens {
                out.push_str(" WHEN ");
                write_expr(out, when, 0);
                out.push_str(" THEN ");
                write_expr(out, then, 0);
            }
            if let Some(e) = otherwise {
                out.push_str(" ELSE ");
                write_expr(out, e, 0);
            }
            out.push_str(" END");
        }
        ExprKind::Subquery(q) => {
            out.push('(');
            write_query(out, q);
            out.push(')');
        }
        ExprKind::Array(items) => {
            out.push('[');
            write_list(out, items);
            out.push(']');
        }
        ExprKind::Object(fields) => {
            out.push('{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_expr(out, value, 0);
            }
            out.push('}');
        }
    }
    if paren {
        out.push(')');
    }
}

fn write_list(out: &mut String, items: &[Expr]) {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(out, e, 0);
    }
}

fn write_literal(out: &mut String, l: &Literal) {
    match l {
        Literal::Null => out.push_str("NULL"),
        Literal::Bool(true) => out.push_str("TRUE"),
        Literal::Bool(false) => out.push_str("FALSE"),
        Literal::Int(n) => out.push_str(&n.to_string()),
        // JSON number text keeps a '.' or exponent, so it reads back as a
        // decimal and not an integer.
        Literal::Decimal(x) => match serde_json::Number::from_f64(*x) {
            Some(n) => out.push_str(&n.to_string()),
            None => out.push_str("NULL"),
        },
        Literal::String(s) => write_string(out, s),
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('\'');
    out.push_str(&s.replace('\'', "''"));
    out.push('\'');
}

fn canonical_function_name(name: &str) -> &str {
    match name {
        "isnull" => "isNull",
        "isundefined" => "isUndefined",
        other => other,
    }
}
