//! Hand-written recursive-descent parser with precedence climbing, from
//! tokens to the [`ast`](crate::ast). It refuses anything outside the
//! supported grammar with the position of the offending token; semantic
//! checks (known functions, arity, `*` placement) happen when lowering to
//! the [`ir`](crate::ir).

use crate::ast::{
    BinaryOp, CastType, Expr, ExprKind, From, Literal, Query, Select, SelectItem, Span, UnaryOp,
    is_reserved, prec,
};
use crate::error::SqlError;
use crate::lexer::{Tok, Token, tokenize};

/// Deep enough for any real rule, shallow enough that hostile nesting
/// cannot exhaust the stack of the parser, lowering or evaluator.
const MAX_DEPTH: usize = 64;

pub(crate) fn parse(src: &str) -> Result<Query, SqlError> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
    };
    let query = p.query(true)?;
    if p.peek() != &Tok::Eof {
        return Err(p.error_here(format!(
            "unexpected {} after the end of the statement",
            p.peek().describe()
        )));
    }
    Ok(query)
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        let i = (self.pos + ahead).min(self.toks.len() - 1);
        &self.toks[i].tok
    }

    fn span(&self) -> Span {
        let t = &self.toks[self.pos];
        Span {
            start: t.start,
            end: t.end,
        }
    }

    fn prev_span(&self) -> Span {
        let t = &self.toks[self.pos.saturating_sub(1)];
        Span {
            start: t.start,
            end: t.end,
        }
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn error_here(&self, message: impl Into<String>) -> SqlError {
        SqlError::new(self.src, self.toks[self.pos].start, message)
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        let hit = self.is_keyword(kw);
        if hit {
            self.bump();
        }
        hit
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.expected(kw))
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Span, SqlError> {
        if self.peek() == &tok {
            Ok(self.bump_span())
        } else {
            Err(self.expected(what))
        }
    }

    fn bump_span(&mut self) -> Span {
        let t = self.bump();
        Span {
            start: t.start,
            end: t.end,
        }
    }

    fn expected(&self, what: &str) -> SqlError {
        self.error_here(format!("expected {what}"))
    }

    fn enter(&mut self) -> Result<(), SqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here("expression nested too deeply"));
        }
        Ok(())
    }

    fn query(&mut self, top_level: bool) -> Result<Query, SqlError> {
        self.expect_keyword("SELECT")?;
        // VALUE is a keyword unless it is a field selected under its own name.
        let value_is_field = match self.peek_at(1) {
            Tok::Comma | Tok::Eof => true,
            Tok::Ident(w) => w.eq_ignore_ascii_case("FROM") || w.eq_ignore_ascii_case("AS"),
            _ => false,
        };
        let select = if self.is_keyword("VALUE") && !value_is_field {
            self.bump();
            Select::Value(self.expr(0)?)
        } else {
            let mut items = vec![self.select_item()?];
            while self.peek() == &Tok::Comma {
                self.bump();
                items.push(self.select_item()?);
            }
            Select::Items(items)
        };
        if !self.is_keyword("FROM") {
            return Err(self.expected("FROM"));
        }
        self.bump();
        let from = if top_level {
            match self.peek().clone() {
                Tok::Str(filter) => From::Topic {
                    filter,
                    span: self.bump_span(),
                },
                _ => return Err(self.expected("a quoted topic filter such as 'a/+/b'")),
            }
        } else {
            let bare_string = matches!(self.peek(), Tok::Str(_));
            let at = self.span();
            let from = self.postfix_expr()?;
            if bare_string && matches!(from.kind, ExprKind::Literal(Literal::String(_))) {
                return Err(SqlError::new(
                    self.src,
                    at.start,
                    "a nested SELECT reads FROM a JSON path of the message, not a topic",
                ));
            }
            From::Expr(from)
        };
        let filter = if self.eat_keyword("WHERE") {
            Some(self.expr(0)?)
        } else {
            None
        };
        Ok(Query {
            select,
            from,
            filter,
        })
    }

    fn select_item(&mut self) -> Result<SelectItem, SqlError> {
        if self.peek() == &Tok::Star {
            return Ok(SelectItem::Star(self.bump_span()));
        }
        let expr = self.expr(0)?;
        let alias = if self.eat_keyword("AS") {
            match self.peek().clone() {
                Tok::Ident(name) if !is_reserved(&name) => {
                    self.bump();
                    if self.peek() == &Tok::Dot {
                        return Err(self.error_here(
                            "a dotted alias (nested output key) is not supported; use an object literal",
                        ));
                    }
                    Some(name)
                }
                _ => return Err(self.expected("a name after AS")),
            }
        } else {
            None
        };
        Ok(SelectItem::Expr { expr, alias })
    }

    /// Precedence climbing: parses operators binding at least `min`.
    fn expr(&mut self, min: u8) -> Result<Expr, SqlError> {
        self.enter()?;
        let mut lhs = self.prefix()?;
        loop {
            let (op, bp) = match self.peek() {
                Tok::Ident(w) if w.eq_ignore_ascii_case("OR") => (Some(BinaryOp::Or), prec::OR),
                Tok::Ident(w) if w.eq_ignore_ascii_case("AND") => (Some(BinaryOp::And), prec::AND),
                Tok::Ident(w)
                    if w.eq_ignore_ascii_case("IS")
                        || w.eq_ignore_ascii_case("IN")
                        || (w.eq_ignore_ascii_case("NOT")
                            && matches!(self.peek_at(1), Tok::Ident(n) if n.eq_ignore_ascii_case("IN"))) =>
                {
                    (None, prec::CMP)
                }
                Tok::Eq => (Some(BinaryOp::Eq), prec::CMP),
                Tok::Ne => (Some(BinaryOp::Ne), prec::CMP),
                Tok::Lt => (Some(BinaryOp::Lt), prec::CMP),
                Tok::Le => (Some(BinaryOp::Le), prec::CMP),
                Tok::Gt => (Some(BinaryOp::Gt), prec::CMP),
                Tok::Ge => (Some(BinaryOp::Ge), prec::CMP),
                Tok::Plus => (Some(BinaryOp::Add), prec::ADD),
                Tok::Minus => (Some(BinaryOp::Sub), prec::ADD),
                Tok::Star => (Some(BinaryOp::Mul), prec::MUL),
                Tok::Slash => (Some(BinaryOp::Div), prec::MUL),
                Tok::Percent => (Some(BinaryOp::Rem), prec::MUL),
                _ => break,
            };
            if bp < min {
                break;
            }
            lhs = match op {
                Some(op) => {
                    self.bump();
                    // Left-associative: the right side binds strictly tighter.
                    let rhs = self.expr(bp + 1)?;
                    let span = lhs.span.to(rhs.span);
                    Expr::new(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span)
                }
                None => self.is_or_in(lhs)?,
            };
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn is_or_in(&mut self, lhs: Expr) -> Result<Expr, SqlError> {
        if self.eat_keyword("IS") {
            let negated = self.eat_keyword("NOT");
            let undefined = if self.eat_keyword("NULL") {
                false
            } else if self.eat_keyword("UNDEFINED") {
                true
            } else {
                return Err(self.expected("NULL or UNDEFINED after IS"));
            };
            let span = lhs.span.to(self.prev_span());
            return Ok(Expr::new(
                ExprKind::Is {
                    expr: Box::new(lhs),
                    negated,
                    undefined,
                },
                span,
            ));
        }
        let negated = self.eat_keyword("NOT");
        self.expect_keyword("IN")?;
        self.expect(Tok::LParen, "'(' after IN")?;
        let list = self.expr_list(Tok::RParen, "')'")?;
        if list.is_empty() {
            return Err(SqlError::new(
                self.src,
                self.prev_span().start,
                "IN needs at least one value",
            ));
        }
        let span = lhs.span.to(self.prev_span());
        Ok(Expr::new(
            ExprKind::In {
                expr: Box::new(lhs),
                negated,
                list,
            },
            span,
        ))
    }

    fn prefix(&mut self) -> Result<Expr, SqlError> {
        let start = self.span();
        if self.eat_keyword("NOT") {
            let operand = self.expr(prec::NOT)?;
            let span = start.to(operand.span);
            return Ok(Expr::new(
                ExprKind::Unary(UnaryOp::Not, Box::new(operand)),
                span,
            ));
        }
        if self.peek() == &Tok::Minus {
            self.bump();
            let operand = self.expr(prec::NEG)?;
            let span = start.to(operand.span);
            return Ok(Expr::new(
                ExprKind::Unary(UnaryOp::Neg, Box::new(operand)),
                span,
            ));
        }
        self.postfix_expr()
    }

    fn postfix_expr(&mut self) -> Result<Expr, SqlError> {
        self.enter()?;
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    // A keyword here is more likely a missing field than a
                    // field named FROM; such fields are read with get().
                    let name = match self.peek().clone() {
                        Tok::Ident(name) if !is_reserved(&name) => name,
                        _ => return Err(self.expected("a field name after '.'")),
                    };
                    let span = e.span.to(self.bump_span());
                    e = Expr::new(ExprKind::Field(Box::new(e), name), span);
                }
                Tok::LBracket => {
                    self.bump();
                    let index = self.expr(0)?;
                    let end = self.expect(Tok::RBracket, "']'")?;
                    let span = e.span.to(end);
                    e = Expr::new(ExprKind::Index(Box::new(e), Box::new(index)), span);
                }
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        let start = self.span();
        let lit = |l| Ok(Expr::new(ExprKind::Literal(l), start));
        match self.peek().clone() {
            Tok::Int(n) => {
                self.bump();
                lit(Literal::Int(n))
            }
            Tok::Dec(x) => {
                self.bump();
                lit(Literal::Decimal(x))
            }
            Tok::Str(s) => {
                self.bump();
                lit(Literal::String(s))
            }
            Tok::LParen => {
                self.bump();
                if self.is_keyword("SELECT") {
                    let q = self.query(false)?;
                    let end = self.expect(Tok::RParen, "')' closing the nested SELECT")?;
                    return Ok(Expr::new(ExprKind::Subquery(Box::new(q)), start.to(end)));
                }
                let mut e = self.expr(0)?;
                let end = self.expect(Tok::RParen, "')'")?;
                e.span = start.to(end);
                Ok(e)
            }
            Tok::LBracket => {
                self.bump();
                let items = self.expr_list(Tok::RBracket, "']'")?;
                Ok(Expr::new(
                    ExprKind::Array(items),
                    start.to(self.prev_span()),
                ))
            }
            Tok::LBrace => self.object(start),
            Tok::Ident(word) => self.word(word, start),
            Tok::Star => Err(self.error_here(
                "'*' stands for the whole payload only as a SELECT item or as encode(*, …)",
            )),
            other => Err(self.error_here(format!(
                "expected an expression, found {}",
                other.describe()
            ))),
        }
    }

    fn word(&mut self, word: String, start: Span) -> Result<Expr, SqlError> {
        let lower = word.to_ascii_lowercase();
        match lower.as_str() {
            "null" => {
                self.bump();
                return Ok(Expr::new(ExprKind::Literal(Literal::Null), start));
            }
            "true" | "false" => {
                self.bump();
                return Ok(Expr::new(
                    ExprKind::Literal(Literal::Bool(lower == "true")),
                    start,
                ));
            }
            "case" => return self.case(start),
            _ => {}
        }
        if self.peek_at(1) == &Tok::LParen {
            self.bump();
            self.bump();
            if lower == "cast" {
                let value = self.expr(0)?;
                self.expect_keyword("AS")?;
                let ty = match self.peek().clone() {
                    Tok::Ident(t) => CastType::from_keyword(&t).ok_or_else(|| {
                        self.error_here(format!(
                            "unknown cast type '{t}' (supported: Int, Decimal, Bool, String and their synonyms)"
                        ))
                    })?,
                    _ => return Err(self.expected("a type name after AS")),
                };
                self.bump();
                let end = self.expect(Tok::RParen, "')' closing cast")?;
                return Ok(Expr::new(
                    ExprKind::Cast(Box::new(value), ty),
                    start.to(end),
                ));
            }
            let mut args = Vec::new();
            if self.peek() != &Tok::RParen {
                loop {
                    if self.peek() == &Tok::Star {
                        args.push(Expr::new(ExprKind::Star, self.bump_span()));
                    } else {
                        args.push(self.expr(0)?);
                    }
                    if self.peek() != &Tok::Comma {
                        break;
                    }
                    self.bump();
                }
            }
            let end = self.expect(Tok::RParen, "')' or ',' in the argument list")?;
            return Ok(Expr::new(ExprKind::Call(lower, args), start.to(end)));
        }
        if is_reserved(&word) {
            return Err(self.error_here(format!(
                "expected an expression, found keyword {}",
                word.to_ascii_uppercase()
            )));
        }
        self.bump();
        Ok(Expr::new(ExprKind::Ident(word), start))
    }

    fn case(&mut self, start: Span) -> Result<Expr, SqlError> {
        self.bump();
        let operand = if self.is_keyword("WHEN") {
            None
        } else {
            Some(Box::new(self.expr(0)?))
        };
        let mut whens = Vec::new();
        while self.eat_keyword("WHEN") {
            let when = self.expr(0)?;
            self.expect_keyword("THEN")?;
            whens.push((when, self.expr(0)?));
        }
        if whens.is_empty() {
            return Err(self.expected("WHEN"));
        }
        let otherwise = if self.eat_keyword("ELSE") {
            Some(Box::new(self.expr(0)?))
        } else {
            None
        };
        if !self.is_keyword("END") {
            return Err(self.expected(if otherwise.is_some() {
                "END"
            } else {
                "WHEN, ELSE or END"
            }));
        }
        let end = self.bump_span();
        Ok(Expr::new(
            ExprKind::Case {
                operand,
                whens,
                otherwise,
            },
            start.to(end),
        ))
    }

    fn object(&mut self, start: Span) -> Result<Expr, SqlError> {
        self.bump();
        let mut fields = Vec::new();
        if self.peek() != &Tok::RBrace {
            loop {
                let key = match self.peek().clone() {
                    Tok::Str(k) => k,
                    _ => return Err(self.expected("a quoted key in the object literal")),
                };
                self.bump();
                self.expect(Tok::Colon, "':' after the key")?;
                fields.push((key, self.expr(0)?));
                if self.peek() != &Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        let end = self.expect(Tok::RBrace, "'}' or ',' in the object literal")?;
        Ok(Expr::new(ExprKind::Object(fields), start.to(end)))
    }

    /// Comma-separated expressions up to `close` (consumed).
    fn expr_list(&mut self, close: Tok, what: &str) -> Result<Vec<Expr>, SqlError> {
        let mut items = Vec::new();
        if self.peek() != &close {
            loop {
                items.push(self.expr(0)?);
                if self.peek() != &Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        self.expect(close, &format!("{what} or ','"))?;
        Ok(items)
    }
}
