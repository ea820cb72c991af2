//! civitas' intermediate form of a rule, and the lowering from the syntax
//! tree into it. Lowering is where the statement is checked against the
//! supported subset (known functions, their arity, where `*` may stand,
//! literal regular expressions and time patterns) and where work is moved
//! out of evaluation: paths are flattened into steps over the document,
//! literals become values, constant regexes and patterns are compiled.

use crate::ast::{self, BinaryOp, CastType, ExprKind, Literal, Span, UnaryOp};
use crate::error::SqlError;
use crate::functions::{self, Func};
use crate::value::Value;

/// A lowered top-level statement.
#[derive(Debug)]
pub(crate) struct Program {
    pub select: Select,
    /// Whether the payload must be parsed as JSON (the statement reads a
    /// field or `*`); rules on topic and metadata alone skip the parse.
    pub needs_payload: bool,
}

#[derive(Debug)]
pub(crate) struct Select {
    pub projection: Projection,
    pub filter: Option<Expr>,
}

#[derive(Debug)]
pub(crate) enum Projection {
    Value(Expr),
    Items(Vec<Item>),
}

#[derive(Debug)]
pub(crate) enum Item {
    Star,
    Expr { key: String, expr: Expr },
}

#[derive(Debug)]
pub(crate) enum Step {
    Field(String),
    Index(Expr),
}

#[derive(Debug)]
pub(crate) struct Subquery {
    pub from: Expr,
    pub select: Select,
}

#[derive(Debug)]
pub(crate) enum Expr {
    Const(Value),
    /// Steps from `base`, or from the current document when `base` is None.
    Path {
        base: Option<Box<Expr>>,
        steps: Vec<Step>,
    },
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Is {
        expr: Box<Expr>,
        negated: bool,
        undefined: bool,
    },
    In {
        expr: Box<Expr>,
        negated: bool,
        list: Vec<Expr>,
    },
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Call(Func, Vec<Expr>),
    Cast(Box<Expr>, CastType),
    Subquery(Box<Subquery>),
    Array(Vec<Expr>),
    Object(Vec<(String, Expr)>),
}

pub(crate) fn lower(src: &str, query: &ast::Query) -> Result<Program, SqlError> {
    let mut l = Lowerer {
        src,
        nested: 0,
        needs_payload: false,
    };
    let select = l.select(&query.select, query.filter.as_ref())?;
    Ok(Program {
        select,
        needs_payload: l.needs_payload,
    })
}

pub(crate) struct Lowerer<'s> {
    pub src: &'s str,
    nested: usize,
    needs_payload: bool,
}

impl Lowerer<'_> {
    pub(crate) fn error(&self, span: Span, message: impl Into<String>) -> SqlError {
        SqlError::new(self.src, span.start, message)
    }

    fn select(
        &mut self,
        select: &ast::Select,
        filter: Option<&ast::Expr>,
    ) -> Result<Select, SqlError> {
        let projection = match select {
            ast::Select::Value(e) => Projection::Value(self.expr(e)?),
            ast::Select::Items(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(match item {
                        ast::SelectItem::Star(_) => {
                            self.reads_document();
                            Item::Star
                        }
                        ast::SelectItem::Expr { expr, alias } => {
                            let key = match (alias, &expr.kind) {
                                (Some(a), _) => a.clone(),
                                (None, ExprKind::Ident(name) | ExprKind::Field(_, name)) => {
                                    name.clone()
                                }
                                (None, _) => {
                                    return Err(self.error(
                                        expr.span,
                                        "name this expression with AS (only fields are named after themselves)",
                                    ));
                                }
                            };
                            Item::Expr {
                                key,
                                expr: self.expr(expr)?,
                            }
                        }
                    });
                }
                Projection::Items(out)
            }
        };
        let filter = filter.map(|f| self.expr(f)).transpose()?;
        Ok(Select { projection, filter })
    }

    /// The current document is read: at top level that is the payload.
    fn reads_document(&mut self) {
        if self.nested == 0 {
            self.needs_payload = true;
        }
    }

    pub(crate) fn expr(&mut self, e: &ast::Expr) -> Result<Expr, SqlError> {
        Ok(match &e.kind {
            ExprKind::Literal(l) => Expr::Const(literal(l)),
            ExprKind::Ident(name) => {
                self.reads_document();
                Expr::Path {
                    base: None,
                    steps: vec![Step::Field(name.clone())],
                }
            }
            ExprKind::Star => {
                return Err(self.error(
                    e.span,
                    "'*' as an argument is only supported in encode(*, 'base64')",
                ));
            }
            ExprKind::Field(base, name) => {
                let base = self.expr(base)?;
                push_step(base, Step::Field(name.clone()))
            }
            ExprKind::Index(base, index) => {
                let base = self.expr(base)?;
                let index = self.expr(index)?;
                push_step(base, Step::Index(index))
            }
            ExprKind::Call(name, args) => functions::resolve(self, name, args, e.span)?,
            ExprKind::Cast(value, ty) => Expr::Cast(Box::new(self.expr(value)?), *ty),
            ExprKind::Unary(UnaryOp::Not, operand) => Expr::Not(Box::new(self.expr(operand)?)),
            ExprKind::Unary(UnaryOp::Neg, operand) => match self.expr(operand)? {
                Expr::Const(v) => Expr::Const(crate::ops::neg(v)),
                other => Expr::Neg(Box::new(other)),
            },
            ExprKind::Binary(op, a, b) => {
                Expr::Binary(*op, Box::new(self.expr(a)?), Box::new(self.expr(b)?))
            }
            ExprKind::Is {
                expr,
                negated,
                undefined,
            } => Expr::Is {
                expr: Box::new(self.expr(expr)?),
                negated: *negated,
                undefined: *undefined,
            },
            ExprKind::In {
                expr,
                negated,
                list,
            } => Expr::In {
                expr: Box::new(self.expr(expr)?),
                negated: *negated,
                list: self.exprs(list)?,
            },
            ExprKind::Case {
                operand,
                whens,
                otherwise,
            } => Expr::Case {
                operand: operand
                    .as_ref()
                    .map(|o| self.expr(o).map(Box::new))
                    .transpose()?,
                whens: whens
                    .iter()
                    .map(|(w, t)| Ok((self.expr(w)?, self.expr(t)?)))
                    .collect::<Result<_, SqlError>>()?,
                otherwise: otherwise
                    .as_ref()
                    .map(|o| self.expr(o).map(Box::new))
                    .transpose()?,
            },
            ExprKind::Subquery(q) => {
                let from = match &q.from {
                    ast::From::Expr(from) => self.expr(from)?,
                    ast::From::Topic { span, .. } => {
                        return Err(self.error(*span, "a nested SELECT reads FROM a JSON path"));
                    }
                };
                self.nested += 1;
                let select = self.select(&q.select, q.filter.as_ref());
                self.nested -= 1;
                Expr::Subquery(Box::new(Subquery {
                    from,
                    select: select?,
                }))
            }
            ExprKind::Array(items) => Expr::Array(self.exprs(items)?),
            ExprKind::Object(fields) => Expr::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.expr(v)?)))
                    .collect::<Result<_, SqlError>>()?,
            ),
        })
    }

    pub(crate) fn exprs(&mut self, list: &[ast::Expr]) -> Result<Vec<Expr>, SqlError> {
        list.iter().map(|e| self.expr(e)).collect()
    }
}

/// Appends a step to a path, or starts a path from a computed value.
pub(crate) fn push_step(base: Expr, step: Step) -> Expr {
    match base {
        Expr::Path { base, mut steps } => {
            steps.push(step);
            Expr::Path { base, steps }
        }
        other => Expr::Path {
            base: Some(Box::new(other)),
            steps: vec![step],
        },
    }
}

fn literal(l: &Literal) -> Value {
    match l {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Int(n) => Value::Int(*n),
        Literal::Decimal(x) => Value::decimal(*x),
        Literal::String(s) => Value::String(s.clone()),
    }
}
