//! `*` / `?` wildcard matching as IAM defines it for resources and action
//! names: `*` matches any run of characters (including `/`, so it is not an
//! MQTT wildcard), `?` exactly one character. `+` and `#` are ordinary
//! characters here.
//!
//! A pattern is a sequence of tokens rather than a string so that text which
//! came from a policy variable can be pushed as literal bytes: a client id
//! containing `*` must never widen what a policy grants.
//!
//! Matching is the classic single-backtrack-point glob algorithm: on a
//! mismatch only the most recent `*` is retried, one character further on.
//! That is complete for `*`/`?` patterns and bounds the work by
//! `pattern length × text length`, so patterns such as `*a*a*a*…b` cannot
//! blow up exponentially.

/// One pattern element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Byte(u8),
    /// `?`: exactly one character (UTF-8 scalar, not byte).
    One,
    /// `*`: any run of characters, possibly empty.
    Star,
}

/// What a pattern reduces to, so callers can use a cheaper comparison than
/// the general matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `*`: matches everything.
    Any,
    /// No wildcard: byte equality.
    Exact(Box<[u8]>),
    /// Literal text followed by a single trailing `*`.
    Prefix(Box<[u8]>),
    /// Anything else.
    Glob,
}

/// A compiled `*`/`?` pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pattern {
    toks: Vec<Tok>,
}

impl Pattern {
    pub(crate) fn new() -> Self {
        Pattern::default()
    }

    /// A pattern where `*` and `?` in `text` are wildcards.
    pub(crate) fn wild(text: &str) -> Self {
        let mut pattern = Pattern::new();
        pattern.push_wild(text);
        pattern
    }

    /// Appends policy text: `*` and `?` are wildcards.
    pub(crate) fn push_wild(&mut self, text: &str) {
        for &byte in text.as_bytes() {
            match byte {
                b'*' => self.push_star(),
                b'?' => self.toks.push(Tok::One),
                other => self.toks.push(Tok::Byte(other)),
            }
        }
    }

    /// Appends text that must match itself exactly, wildcard characters
    /// included.
    pub(crate) fn push_literal(&mut self, text: &str) {
        self.toks
            .extend(text.as_bytes().iter().map(|&byte| Tok::Byte(byte)));
    }

    fn push_star(&mut self) {
        // `**` means the same as `*`; collapsing keeps the matcher's
        // restarts from revisiting equivalent states.
        if self.toks.last() != Some(&Tok::Star) {
            self.toks.push(Tok::Star);
        }
    }

    pub(crate) fn shape(&self) -> Shape {
        let literal_len = self
            .toks
            .iter()
            .take_while(|tok| matches!(tok, Tok::Byte(_)))
            .count();
        let literal: Box<[u8]> = self.toks[..literal_len]
            .iter()
            .filter_map(|tok| match tok {
                Tok::Byte(byte) => Some(*byte),
                _ => None,
            })
            .collect();
        match &self.toks[literal_len..] {
            [] => Shape::Exact(literal),
            [Tok::Star] if literal.is_empty() => Shape::Any,
            [Tok::Star] => Shape::Prefix(literal),
            _ => Shape::Glob,
        }
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        glob(&self.toks, text.as_bytes())
    }

    /// Matches against `head` immediately followed by `tail`, without
    /// building the concatenation.
    pub(crate) fn is_match_joined(&self, head: &str, tail: &str) -> bool {
        glob(
            &self.toks,
            &Joined {
                head: head.as_bytes(),
                tail: tail.as_bytes(),
            },
        )
    }
}

/// Text addressed by byte index. Always valid UTF-8 as a whole, so byte
/// indices the matcher lands on are character boundaries.
trait Text {
    fn len(&self) -> usize;
    fn byte(&self, index: usize) -> u8;
    /// First index at or after `from` holding `byte`.
    fn find(&self, from: usize, byte: u8) -> Option<usize>;

    /// Index just past the character starting at `index`, so `?` and `*`
    /// step over whole UTF-8 characters.
    fn next_char(&self, index: usize) -> usize {
        let width = match self.byte(index) {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xFF => 4,
            // A continuation byte cannot start a character in valid UTF-8;
            // step one byte so the loop still advances.
            _ => 1,
        };
        (index + width).min(self.len())
    }
}

impl Text for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn byte(&self, index: usize) -> u8 {
        self[index]
    }

    fn find(&self, from: usize, byte: u8) -> Option<usize> {
        self[from..]
            .iter()
            .position(|&b| b == byte)
            .map(|offset| from + offset)
    }
}

/// Two pieces read as one text.
struct Joined<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

impl Text for Joined<'_> {
    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    fn byte(&self, index: usize) -> u8 {
        match self.head.get(index) {
            Some(&byte) => byte,
            None => self.tail[index - self.head.len()],
        }
    }

    fn find(&self, from: usize, byte: u8) -> Option<usize> {
        let split = self.head.len();
        if from < split
            && let Some(found) = self.head.find(from, byte)
        {
            return Some(found);
        }
        self.tail
            .find(from.saturating_sub(split), byte)
            .map(|offset| split + offset)
    }
}

fn glob<T: Text + ?Sized>(pattern: &[Tok], text: &T) -> bool {
    let len = text.len();
    let (mut px, mut tx) = (0, 0);
    // Where to resume after a mismatch: the position of the latest `*` and
    // the text index it should next try to start after. Only the latest `*`
    // matters: whatever an earlier one could absorb, the later one can too.
    let mut restart: Option<(usize, usize)> = None;
    loop {
        match pattern.get(px) {
            Some(Tok::Star) => {
                if let Some(Tok::Byte(next)) = pattern.get(px + 1) {
                    // Skip straight to where the literal after the `*` can
                    // match. Pattern literals start on a character (a `*` is
                    // one), so the byte found starts a character too. If it
                    // occurs nowhere further on, no placement of this or any
                    // earlier `*` can succeed.
                    match text.find(tx, *next) {
                        Some(found) => tx = found,
                        None => return false,
                    }
                }
                restart = (tx < len).then(|| (px, text.next_char(tx)));
                px += 1;
                continue;
            }
            Some(Tok::One) if tx < len => {
                tx = text.next_char(tx);
                px += 1;
                continue;
            }
            Some(Tok::Byte(byte)) if tx < len && text.byte(tx) == *byte => {
                tx += 1;
                px += 1;
                continue;
            }
            None if tx == len => return true,
            _ => {}
        }
        match restart {
            Some((star, resume)) => {
                px = star;
                tx = resume;
            }
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Obviously-correct exponential reference over characters.
    fn naive(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('*', rest)) => (0..=text.len()).any(|skip| naive(rest, &text[skip..])),
            Some(('?', rest)) => !text.is_empty() && naive(rest, &text[1..]),
            Some((c, rest)) => text.first() == Some(c) && naive(rest, &text[1..]),
        }
    }

    #[test]
    fn wildcard_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "a/b/c", true),
            ("a/*", "a/", true),
            ("a/*", "a/b/c", true),
            ("a/*", "a", false),
            ("a/*/c", "a/b/x/c", true),
            ("a/*/c", "a//c", true),
            ("a/?/c", "a/b/c", true),
            ("a/?/c", "a//c", false),
            ("a/?/c", "a/bb/c", false),
            ("?", "é", true),
            ("??", "é", false),
            ("a?c", "a€c", true),
            ("*é", "xxé", true),
            ("a+b", "a+b", true),
            ("a/+/c", "a/b/c", false),
            ("a/#", "a/#", true),
            ("a/#", "a/b", false),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("abc", "ab", false),
            ("*c", "abc", true),
            ("*c", "abcd", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("**", "x", true),
            ("*?*", "", false),
            ("*?*", "x", true),
            ("", "", true),
            ("", "x", false),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                Pattern::wild(pattern).is_match(text),
                expected,
                "pattern {pattern:?} against {text:?}"
            );
        }
    }

    #[test]
    fn literal_text_never_acts_as_wildcard() {
        let mut pattern = Pattern::new();
        pattern.push_literal("a*?");
        assert!(pattern.is_match("a*?"));
        assert!(!pattern.is_match("abc"));
        assert_eq!(pattern.shape(), Shape::Exact(b"a*?".to_vec().into()));
    }

    #[test]
    fn joined_text_matches_like_its_concatenation() {
        let pattern = Pattern::wild("top*c/x*");
        assert!(pattern.is_match_joined("topic/", "x/y"));
        assert!(!pattern.is_match_joined("topic/", "y"));
        assert!(Pattern::wild("*").is_match_joined("", ""));
        assert!(Pattern::wild("t?pic/é").is_match_joined("topic/", "é"));
    }

    #[test]
    fn shapes() {
        assert_eq!(Pattern::wild("*").shape(), Shape::Any);
        assert_eq!(Pattern::wild("***").shape(), Shape::Any);
        assert_eq!(
            Pattern::wild("ab").shape(),
            Shape::Exact(b"ab".to_vec().into())
        );
        assert_eq!(
            Pattern::wild("ab*").shape(),
            Shape::Prefix(b"ab".to_vec().into())
        );
        assert_eq!(Pattern::wild("a*b").shape(), Shape::Glob);
        assert_eq!(Pattern::wild("a?").shape(), Shape::Glob);
        assert_eq!(Pattern::wild("*a").shape(), Shape::Glob);
    }

    #[test]
    fn pathological_patterns_stay_polynomial() {
        // With a backtracking matcher that retries every star this would
        // take ~ text_len^stars steps; here it is at most a few million.
        let text = "a".repeat(10_000);
        let started = std::time::Instant::now();
        for pattern in [
            format!("{}b", "*a".repeat(40)),
            format!("{}?b", "*a".repeat(40)),
            format!("*{}b", "a".repeat(1_000)),
            format!("{}b", "*a?".repeat(40)),
        ] {
            let compiled = Pattern::wild(&pattern);
            assert!(!compiled.is_match(&text), "{pattern}");
            assert!(compiled.is_match(&format!("{text}ab")), "{pattern}");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }

    proptest! {
        #[test]
        fn agrees_with_naive_matcher(
            pattern in "[ab*?é/]{0,8}",
            text in "[abé/]{0,10}",
        ) {
            let pc: Vec<char> = pattern.chars().collect();
            let tc: Vec<char> = text.chars().collect();
            prop_assert_eq!(Pattern::wild(&pattern).is_match(&text), naive(&pc, &tc));
        }

        #[test]
        fn split_point_of_joined_text_does_not_matter(
            pattern in "[ab*?/]{0,8}",
            text in "[ab/]{0,10}",
            split in 0usize..11,
        ) {
            let split = split.min(text.len());
            let (head, tail) = text.split_at(split);
            let compiled = Pattern::wild(&pattern);
            prop_assert_eq!(compiled.is_match_joined(head, tail), compiled.is_match(&text));
        }
    }
}
