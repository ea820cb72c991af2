//! Topic names, topic filters and shared subscriptions (MQTT 5 section 4.7
//! and 4.8.2): syntax checks and wildcard matching of one filter against
//! one name. Routing over many filters lives in [`crate::tree`].

/// Why a topic name, topic filter or shared subscription is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic is empty")]
    Empty,
    #[error("topic is longer than 65535 bytes")]
    TooLong,
    #[error("topic name contains a wildcard ('+' or '#')")]
    WildcardInName,
    #[error("topic contains U+0000")]
    NullCharacter,
    #[error("'#' must be alone in the last level of a topic filter")]
    MisplacedMultiLevelWildcard,
    #[error("'+' must be alone in its level of a topic filter")]
    MisplacedSingleLevelWildcard,
    #[error("shared subscription without a share name")]
    EmptyShareName,
    #[error("share name contains a wildcard")]
    WildcardInShareName,
    #[error("shared subscription without a topic filter")]
    MissingSharedFilter,
}

const MAX_LEN: usize = 65_535;

fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_LEN {
        return Err(TopicError::TooLong);
    }
    if s.contains('\0') {
        return Err(TopicError::NullCharacter);
    }
    Ok(())
}

/// A topic name as PUBLISH carries it: non-empty, at most 65535 bytes, no
/// wildcard, no U+0000.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    check_common(name)?;
    if name.contains(['+', '#']) {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// A topic filter as SUBSCRIBE carries it: `#` only as the whole last
/// level, `+` only as a whole level.
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter)?;
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::MisplacedMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::MisplacedSingleLevelWildcard);
        }
    }
    Ok(())
}

/// Whether the first level of `filter` is a wildcard, which never matches
/// a topic name starting with `$` (MQTT 5 section 4.7.2).
pub(crate) fn starts_with_wildcard_level(filter: &str) -> bool {
    matches!(filter.split('/').next(), Some("+" | "#"))
}

/// Whether the (valid) topic filter `filter` matches the topic name `name`.
pub fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && starts_with_wildcard_level(filter) {
        return false;
    }
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            // `#` also matches the parent level: "a/#" matches "a".
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(nl)) if fl == nl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A shared subscription `$share/{group}/{filter}`, borrowed from the
/// filter string SUBSCRIBE carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    pub group: &'a str,
    pub filter: &'a str,
}

const SHARE_PREFIX: &str = "$share/";

/// Splits a shared subscription into its share name and filter. `Ok(None)`
/// for an ordinary filter (which the caller still has to validate).
pub fn parse_shared(filter: &str) -> Result<Option<SharedFilter<'_>>, TopicError> {
    let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
        return Ok(None);
    };
    let (group, inner) = rest.split_once('/').ok_or(if rest.is_empty() {
        TopicError::EmptyShareName
    } else {
        TopicError::MissingSharedFilter
    })?;
    if group.is_empty() {
        return Err(TopicError::EmptyShareName);
    }
    if group.contains(['+', '#']) {
        return Err(TopicError::WildcardInShareName);
    }
    if inner.is_empty() {
        return Err(TopicError::MissingSharedFilter);
    }
    validate_topic_filter(inner)?;
    Ok(Some(SharedFilter {
        group,
        filter: inner,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_topic_name("a/b/c"), Ok(()));
        assert_eq!(validate_topic_name("/"), Ok(()));
        assert_eq!(validate_topic_name("$SYS/x"), Ok(()));
        assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_name("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(validate_topic_name("a#"), Err(TopicError::WildcardInName));
        assert_eq!(validate_topic_name("a\0b"), Err(TopicError::NullCharacter));
        assert_eq!(validate_topic_name(&"x".repeat(65_535)), Ok(()));
        assert_eq!(
            validate_topic_name(&"x".repeat(65_536)),
            Err(TopicError::TooLong)
        );
    }

    #[test]
    fn filters() {
        for ok in [
            "#", "+", "a/#", "a/+/b", "+/+", "/", "//", "+/", "a/+/#", "$share",
        ] {
            assert_eq!(validate_topic_filter(ok), Ok(()), "{ok}");
        }
        for (bad, err) in [
            ("", TopicError::Empty),
            ("a/#/b", TopicError::MisplacedMultiLevelWildcard),
            ("a#", TopicError::MisplacedMultiLevelWildcard),
            ("a/b#", TopicError::MisplacedMultiLevelWildcard),
            ("##", TopicError::MisplacedMultiLevelWildcard),
            ("a+", TopicError::MisplacedSingleLevelWildcard),
            ("a/+b/c", TopicError::MisplacedSingleLevelWildcard),
            ("a\0", TopicError::NullCharacter),
        ] {
            assert_eq!(validate_topic_filter(bad), Err(err), "{bad}");
        }
    }

    #[test]
    fn shared() {
        assert_eq!(
            parse_shared("$share/g/a/+"),
            Ok(Some(SharedFilter {
                group: "g",
                filter: "a/+"
            }))
        );
        assert_eq!(
            parse_shared("$share/g/#"),
            Ok(Some(SharedFilter {
                group: "g",
                filter: "#"
            }))
        );
        assert_eq!(parse_shared("a/b"), Ok(None));
        assert_eq!(parse_shared("$sharex/g/a"), Ok(None));
        assert_eq!(parse_shared("$share"), Ok(None));
        assert_eq!(parse_shared("$share/"), Err(TopicError::EmptyShareName));
        assert_eq!(parse_shared("$share//a"), Err(TopicError::EmptyShareName));
        assert_eq!(
            parse_shared("$share/g"),
            Err(TopicError::MissingSharedFilter)
        );
        assert_eq!(
            parse_shared("$share/g/"),
            Err(TopicError::MissingSharedFilter)
        );
        assert_eq!(
            parse_shared("$share/g+/a"),
            Err(TopicError::WildcardInShareName)
        );
        assert_eq!(
            parse_shared("$share/#/a"),
            Err(TopicError::WildcardInShareName)
        );
        assert_eq!(
            parse_shared("$share/g/a/#/b"),
            Err(TopicError::MisplacedMultiLevelWildcard)
        );
    }
}
