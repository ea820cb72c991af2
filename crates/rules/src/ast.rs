//! Syntax tree of a rules SQL statement, as written (function names
//! lower-cased, cast types normalised). Spans are byte ranges in the source
//! and serve error messages only; [`Query::clear_spans`] removes them so two
//! trees can be compared for structure alone.

/// A byte range in the SQL text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub(crate) fn to(self, other: Span) -> Span {
        Span {
            start: self.start,
            end: other.end,
        }
    }
}

/// `SELECT … FROM … [WHERE …]`, top-level or nested.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Select,
    pub from: From,
    pub filter: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// `SELECT VALUE expr`: the result is the value itself, not an object.
    Value(Expr),
    /// `SELECT item, …`.
    Items(Vec<SelectItem>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`: every key of the document.
    Star(Span),
    Expr {
        expr: Expr,
        alias: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum From {
    /// `FROM 'topic/filter'` (top-level statements).
    Topic { filter: String, span: Span },
    /// `FROM path` (nested statements): the array to iterate over.
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Decimal(f64),
    String(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// The target of `cast(x AS type)`; AWS's synonyms (`Integer`, `varchar`,
/// `Boolean`, …) are folded into these four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastType {
    Int,
    Decimal,
    Bool,
    String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Literal(Literal),
    /// A top-level key of the current document.
    Ident(String),
    /// `*` as a function argument (`encode(*, 'base64')`).
    Star,
    /// `expr.name`
    Field(Box<Expr>, String),
    /// `expr[index]`
    Index(Box<Expr>, Box<Expr>),
    /// `name(args)`, name lower-cased.
    Call(String, Vec<Expr>),
    Cast(Box<Expr>, CastType),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `expr IS [NOT] NULL` / `expr IS [NOT] UNDEFINED`.
    Is {
        expr: Box<Expr>,
        negated: bool,
        undefined: bool,
    },
    /// `expr [NOT] IN (a, b, …)`.
    In {
        expr: Box<Expr>,
        negated: bool,
        list: Vec<Expr>,
    },
    /// `CASE [operand] WHEN … THEN … [ELSE …] END`.
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    /// `(SELECT … FROM path [WHERE …])`.
    Subquery(Box<Query>),
    /// `[a, b, …]`
    Array(Vec<Expr>),
    /// `{'key': value, …}`
    Object(Vec<(String, Expr)>),
}

impl Query {
    /// Parses `sql` into a syntax tree without checking functions, arity or
    /// the topic filter (that is [`crate::Rule::parse`]'s job).
    pub fn parse(sql: &str) -> Result<Query, crate::SqlError> {
        crate::parser::parse(sql)
    }

    /// Sets every span to the default, so trees parsed from differently
    /// spelled text compare equal when their structure is.
    pub fn clear_spans(&mut self) {
        match &mut self.select {
            Select::Value(e) => e.clear_spans(),
            Select::Items(items) => {
                for item in items {
                    match item {
                        SelectItem::Star(span) => *span = Span::default(),
                        SelectItem::Expr { expr, .. } => expr.clear_spans(),
                    }
                }
            }
        }
        match &mut self.from {
            From::Topic { span, .. } => *span = Span::default(),
            From::Expr(e) => e.clear_spans(),
        }
        if let Some(e) = &mut self.filter {
            e.clear_spans();
        }
    }
}

impl Expr {
    pub(crate) fn new(kind: ExprKind, span: Span) -> Expr {
        Expr { kind, span }
    }

    pub fn clear_spans(&mut self) {
        self.span = Span::default();
        match &mut self.kind {
            ExprKind::Literal(_) | ExprKind::Ident(_) | ExprKind::Star => {}
            ExprKind::Field(e, _) | ExprKind::Cast(e, _) | ExprKind::Unary(_, e) => e.clear_spans(),
            ExprKind::Is { expr, .. } => expr.clear_spans(),
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
                a.clear_spans();
                b.clear_spans();
            }
            ExprKind::Call(_, args) | ExprKind::Array(args) => {
                args.iter_mut().for_each(Expr::clear_spans)
            }
            ExprKind::In { expr, list, .. } => {
                expr.clear_spans();
                list.iter_mut().for_each(Expr::clear_spans);
            }
            ExprKind::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(e) = operand {
                    e.clear_spans();
                }
                for (w, t) in whens {
                    w.clear_spans();
                    t.clear_spans();
                }
                if let Some(e) = otherwise {
                    e.clear_spans();
                }
            }
            ExprKind::Subquery(q) => q.clear_spans(),
            ExprKind::Object(fields) => fields.iter_mut().for_each(|(_, e)| e.clear_spans()),
        }
    }
}

/// Binding strength, loosest first; shared by the parser and the printer so
/// that printed text parses back to the same tree.
pub(crate) mod prec {
    pub const OR: u8 = 1;
    pub const AND: u8 = 2;
    pub const NOT: u8 = 3;
    pub const CMP: u8 = 4;
    pub const ADD: u8 = 5;
    pub const MUL: u8 = 6;
    pub const NEG: u8 = 7;
    pub const POSTFIX: u8 = 8;
}

impl BinaryOp {
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => prec::OR,
            BinaryOp::And => prec::AND,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => prec::CMP,
            BinaryOp::Add | BinaryOp::Sub => prec::ADD,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => prec::MUL,
        }
    }

    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "OR",
            BinaryOp::And => "AND",
            BinaryOp::Eq => "=",
            BinaryOp::Ne => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }
}

impl CastType {
    pub(crate) fn from_keyword(word: &str) -> Option<CastType> {
        Some(match word.to_ascii_lowercase().as_str() {
            "int" | "integer" => CastType::Int,
            "decimal" | "double" => CastType::Decimal,
            "bool" | "boolean" => CastType::Bool,
            "string" | "varchar" | "nvarchar" | "text" | "ntext" => CastType::String,
            _ => return None,
        })
    }

    pub(crate) fn keyword(self) -> &'static str {
        match self {
            CastType::Int => "Int",
            CastType::Decimal => "Decimal",
            CastType::Bool => "Bool",
            CastType::String => "String",
        }
    }
}

/// Words that cannot name a field without `get()`.
pub(crate) const RESERVED: &[&str] = &[
    "select", "from", "where", "as", "and", "or", "not", "case", "when", "then", "else", "end",
    "is", "in", "null", "true", "false",
];

pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|k| k.eq_ignore_ascii_case(word))
}

impl std::fmt::Display for Query {
    /// The statement as normalised SQL text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::print::query(self))
    }
}
