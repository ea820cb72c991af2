//! Tokenizer for the rules SQL: identifiers, quoted strings (`'…'` and
//! `"…"`, a doubled quote standing for itself), numbers, punctuation and
//! operators, each with its byte span so errors can point at the text.
//!
//! Keywords are not a token kind: the parser recognises them among the
//! identifiers (case-insensitively), because after a `.` a keyword is a
//! plain field name.

use crate::error::SqlError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Dec(f64),
    Star,
    Comma,
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Colon,
    Plus,
    Minus,
    Slash,
    Percent,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Str(_) => "a string".to_owned(),
            Tok::Int(_) | Tok::Dec(_) => "a number".to_owned(),
            Tok::Eof => "end of statement".to_owned(),
            other => format!("'{}'", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Star => "*",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Colon => ":",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Eq => "=",
            Tok::Ne => "<>",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            _ => "?",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, SqlError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Ident(src[start..i].to_owned()),
                    start,
                    end: i,
                });
                continue;
            }
            b'0'..=b'9' => {
                let (tok, end) = number(src, start)?;
                out.push(Token { tok, start, end });
                i = end;
                continue;
            }
            b'\'' | b'"' => {
                let (text, end) = string(src, start)?;
                out.push(Token {
                    tok: Tok::Str(text),
                    start,
                    end,
                });
                i = end;
                continue;
            }
            b'*' => Tok::Star,
            b',' => Tok::Comma,
            b'.' => Tok::Dot,
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b'{' => Tok::LBrace,
            b'}' => Tok::RBrace,
            b':' => Tok::Colon,
            b'+' => Tok::Plus,
            b'-' => Tok::Minus,
            b'/' => Tok::Slash,
            b'%' => Tok::Percent,
            b'=' => Tok::Eq,
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 1;
                Tok::Ne
            }
            b'<' => match bytes.get(i + 1) {
                Some(b'>') => {
                    i += 1;
                    Tok::Ne
                }
                Some(b'=') => {
                    i += 1;
                    Tok::Le
                }
                _ => Tok::Lt,
            },
            b'>' if bytes.get(i + 1) == Some(&b'=') => {
                i += 1;
                Tok::Ge
            }
            b'>' => Tok::Gt,
            _ => {
                let ch = src[start..].chars().next().unwrap_or('?');
                return Err(SqlError::new(
                    src,
                    start,
                    format!("unexpected character '{ch}'"),
                ));
            }
        };
        i += 1;
        out.push(Token { tok, start, end: i });
    }
    out.push(Token {
        tok: Tok::Eof,
        start: src.len(),
        end: src.len(),
    });
    Ok(out)
}

/// `digits [. digits] [(e|E) [+|-] digits]`; integers that do not fit an
/// i64 become decimals, as AWS keeps up to 34 digits.
fn number(src: &str, start: usize) -> Result<(Tok, usize), SqlError> {
    let b = src.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(start);
    let mut integral = true;
    if i < b.len() && b[i] == b'.' {
        let after = digits(i + 1);
        if after == i + 1 {
            return Err(SqlError::new(
                src,
                i + 1,
                "expected digits after '.' in a number",
            ));
        }
        integral = false;
        i = after;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let after = digits(j);
        if after == j {
            return Err(SqlError::new(
                src,
                j,
                "expected digits in the exponent of a number",
            ));
        }
        integral = false;
        i = after;
    }
    let text = &src[start..i];
    if integral && let Ok(n) = text.parse::<i64>() {
        return Ok((Tok::Int(n), i));
    }
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok((Tok::Dec(x), i)),
        _ => Err(SqlError::new(src, start, "number out of range")),
    }
}

fn string(src: &str, start: usize) -> Result<(String, usize), SqlError> {
    let quote = src.as_bytes()[start];
    let mut text = String::new();
    let mut i = start + 1;
    let mut run = i;
    let b = src.as_bytes();
    while i < b.len() {
        if b[i] == quote {
            text.push_str(&src[run..i]);
            if b.get(i + 1) == Some(&quote) {
                text.push(quote as char);
                i += 2;
                run = i;
                continue;
            }
            return Ok((text, i + 1));
        }
        i += 1;
    }
    Err(SqlError::new(src, start, "unterminated string literal"))
}
