//! Request targets: which resource a URL path names, and its query
//! parameters, percent-decoded. Topics may contain `/` (sent as is or as
//! `%2F`), so a topic is everything after `/topics/`, decoded once.

/// The resource a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Topic(String),
    Shadow { thing: String },
    Unknown,
}

/// Why a path or query could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("invalid percent-encoding")]
    BadEscape,
    #[error("not UTF-8")]
    NotUtf8,
}

impl Target {
    pub(crate) fn parse(path: &str) -> Result<Target, TargetError> {
        if let Some(topic) = path.strip_prefix("/topics/") {
            return Ok(Target::Topic(decode(topic)?));
        }
        if let Some(rest) = path.strip_prefix("/things/")
            && let Some(thing) = rest.strip_suffix("/shadow")
            && !thing.contains('/')
        {
            return Ok(Target::Shadow {
                thing: decode(thing)?,
            });
        }
        Ok(Target::Unknown)
    }
}

/// The query's `key=value` pairs, decoded (`+` is a space, as in forms).
pub(crate) fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, TargetError> {
    let Some(query) = query else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let plus = |s: &str| s.replace('+', " ");
            Ok((decode(&plus(key))?, decode(&plus(value))?))
        })
        .collect()
}

/// Percent-decodes `text` into UTF-8.
pub(crate) fn decode(text: &str) -> Result<String, TargetError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(TargetError::BadEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| TargetError::BadEscape)?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| TargetError::BadEscape)?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| TargetError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_keep_their_slashes_encoded_or_not() {
        assert_eq!(
            Target::parse("/topics/city/north/things/lamp-1/telemetry"),
            Ok(Target::Topic("city/north/things/lamp-1/telemetry".into()))
        );
        assert_eq!(
            Target::parse("/topics/city%2Fnorth%2Fthings%2Flamp-1%2Ftelemetry"),
            Ok(Target::Topic("city/north/things/lamp-1/telemetry".into()))
        );
        assert_eq!(
            Target::parse("/topics/%24aws%2Fthings%2Fx"),
            Ok(Target::Topic("$aws/things/x".into()))
        );
        assert_eq!(Target::parse("/topics/a%2"), Err(TargetError::BadEscape));
        assert_eq!(Target::parse("/topics/a%zz"), Err(TargetError::BadEscape));
        assert_eq!(Target::parse("/topics/%ff"), Err(TargetError::NotUtf8));
    }

    #[test]
    fn shadow_paths() {
        assert_eq!(
            Target::parse("/things/lamp-1/shadow"),
            Ok(Target::Shadow {
                thing: "lamp-1".into()
            })
        );
        assert_eq!(Target::parse("/things/a/b/shadow"), Ok(Target::Unknown));
        assert_eq!(Target::parse("/things/lamp-1"), Ok(Target::Unknown));
        assert_eq!(Target::parse("/"), Ok(Target::Unknown));
    }

    #[test]
    fn query_pairs_are_decoded() {
        assert_eq!(
            query_pairs(Some("qos=1&retain=true&name=a%24b&flag")),
            Ok(vec![
                ("qos".into(), "1".into()),
                ("retain".into(), "true".into()),
                ("name".into(), "a$b".into()),
                ("flag".into(), String::new()),
            ])
        );
        assert_eq!(query_pairs(None), Ok(Vec::new()));
    }
}
