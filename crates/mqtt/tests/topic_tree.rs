//! Topic matching: the specification's examples as a table, and the
//! subscription trie checked against brute-force matching.

use std::collections::{BTreeSet, HashMap};

use civitas_mqtt::{TopicTree, matches, validate_topic_filter, validate_topic_name};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

#[test]
fn matches_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/tennis/player1/#", "sport/tennis/player2", false),
        ("sport/#", "sport", true),
        ("sport/#", "sports", false),
        ("#", "sport/tennis", true),
        ("#", "/", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("+", "finance", true),
        ("+/tennis/#", "sport/tennis/player1", true),
        ("+/tennis/#", "sport/tennis", true),
        ("+/+/+", "a/b", false),
        ("a/b", "a/b/", false),
        ("a/b/", "a/b/", true),
        ("ACCOUNTS", "Accounts", false),
        ("a//b", "a//b", true),
        ("a/+/b", "a//b", true),
        // Topics starting with '$' are out of reach of leading wildcards.
        ("#", "$SYS/monitor/Clients", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("$SYS/#", "$SYS/monitor/Clients", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("$SYS/#", "$SYS", true),
        ("+", "$SYS", false),
        ("a/#", "a/$b", true),
        ("a/+", "a/$b", true),
    ];
    for &(filter, name, want) in cases {
        assert_eq!(validate_topic_filter(filter), Ok(()), "{filter}");
        assert_eq!(validate_topic_name(name), Ok(()), "{name}");
        assert_eq!(matches(filter, name), want, "{filter} vs {name}");
    }
}

#[test]
fn tree_on_the_table() {
    let mut tree = TopicTree::new();
    let filters = [
        "sport/tennis/player1/#",
        "sport/#",
        "#",
        "sport/tennis/+",
        "+/+",
        "/+",
        "$SYS/#",
        "+",
    ];
    for (i, f) in filters.iter().enumerate() {
        tree.insert(f, i, ());
    }
    let mut got = Vec::new();
    tree.for_each_match("sport/tennis/player1", |f, k, _| {
        got.push((f.to_owned(), *k))
    });
    got.sort();
    assert_eq!(
        got,
        vec![
            ("#".into(), 2),
            ("sport/#".into(), 1),
            ("sport/tennis/+".into(), 3),
            ("sport/tennis/player1/#".into(), 0)
        ]
    );
    let mut got = Vec::new();
    tree.for_each_match("$SYS/x", |f, _, _| got.push(f.to_owned()));
    assert_eq!(got, vec!["$SYS/#"]);
}

fn filter() -> impl Strategy<Value = String> {
    (
        vec(select(vec!["a", "b", "", "+", "$s"]), 1..4),
        any::<bool>(),
    )
        .prop_map(|(mut levels, hash)| {
            if hash {
                levels.push("#");
            }
            levels.join("/")
        })
}

fn topic() -> impl Strategy<Value = String> {
    vec(select(vec!["a", "b", "", "$s"]), 1..5).prop_map(|l| l.join("/"))
}

#[derive(Debug, Clone)]
enum Op {
    Insert(String, u8, u32),
    Remove(String, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (filter(), 0..4u8, any::<u32>()).prop_map(|(f, k, v)| Op::Insert(f, k, v)),
        1 => (filter(), 0..4u8).prop_map(|(f, k)| Op::Remove(f, k)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn tree_agrees_with_brute_force(ops in vec(op(), 0..40), topics in vec(topic(), 1..8)) {
        let mut tree = TopicTree::new();
        let mut model: HashMap<(String, u8), u32> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(f, k, v) => {
                    prop_assert_eq!(tree.insert(&f, k, v), model.insert((f, k), v));
                }
                Op::Remove(f, k) => {
                    prop_assert_eq!(tree.remove(&f, &k), model.remove(&(f, k)));
                }
            }
            prop_assert_eq!(tree.len(), model.len());
            prop_assert_eq!(tree.is_empty(), model.is_empty());
        }
        for ((f, k), v) in &model {
            prop_assert_eq!(tree.get(f, k), Some(v));
        }
        for t in &topics {
            let mut got = BTreeSet::new();
            tree.for_each_match(t, |f, k, v| {
                assert!(got.insert((f.to_owned(), *k, *v)), "reported twice");
            });
            let want: BTreeSet<_> = model
                .iter()
                .filter(|((f, _), _)| matches(f, t))
                .map(|((f, k), v)| (f.clone(), *k, *v))
                .collect();
            prop_assert_eq!(got, want, "topic {:?}", t);
        }
        // Removing everything leaves nothing to match.
        let keys: Vec<_> = model.keys().cloned().collect();
        for (f, k) in keys {
            prop_assert!(tree.remove(&f, &k).is_some());
        }
        prop_assert!(tree.is_empty());
        for t in &topics {
            tree.for_each_match(t, |f, _, _| panic!("{f} still matches"));
        }
    }

    /// Matching agrees with a direct reading of the rules: level by level,
    /// '+' takes one level, '#' the rest (including none), and '$' topics
    /// escape leading wildcards.
    #[test]
    fn matches_agrees_with_a_regex_reading(f in filter(), t in topic()) {
        let mut pattern = String::from("^");
        let levels: Vec<&str> = f.split('/').collect();
        for (i, level) in levels.iter().enumerate() {
            match *level {
                "#" if i == 0 => pattern.push_str(".*"),
                "#" => {
                    // "a/#" matches "a" too: the separator is optional.
                    pattern.truncate(pattern.len() - 1);
                    pattern.push_str("(/.*)?");
                }
                "+" => pattern.push_str("[^/]*"),
                l => pattern.push_str(&l.replace('$', "\\$")),
            }
            if i + 1 < levels.len() {
                pattern.push('/');
            }
        }
        pattern.push('$');
        let leading_wildcard = matches!(levels[0], "+" | "#");
        let want = !(t.starts_with('$') && leading_wildcard) && simple_regex(&pattern, &t);
        prop_assert_eq!(matches(&f, &t), want, "{} vs {} ({})", f, t, pattern);
    }
}

/// A tiny backtracking matcher for the patterns built above: literals,
/// `\$`, `.*`, `[^/]*`, `(/.*)?`, anchored by `^` and `$`.
fn simple_regex(pattern: &str, text: &str) -> bool {
    let p = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .unwrap_or(pattern);
    fn go(p: &str, t: &str) -> bool {
        if p.is_empty() {
            return t.is_empty();
        }
        if let Some(rest) = p.strip_prefix(".*") {
            return (0..=t.len()).any(|i| t.is_char_boundary(i) && go(rest, &t[i..]));
        }
        if let Some(rest) = p.strip_prefix("[^/]*") {
            let end = t.find('/').unwrap_or(t.len());
            return (0..=end).any(|i| t.is_char_boundary(i) && go(rest, &t[i..]));
        }
        if let Some(rest) = p.strip_prefix("(/.*)?") {
            return go(rest, t)
                || t.strip_prefix('/')
                    .is_some_and(|t| go(&format!(".*{rest}"), t));
        }
        if let Some(rest) = p.strip_prefix("\\$") {
            return t.strip_prefix('$').is_some_and(|t| go(rest, t));
        }
        let mut chars = p.chars();
        let c = chars.next().unwrap_or_default();
        t.strip_prefix(c).is_some_and(|t| go(chars.as_str(), t))
    }
    go(p, text)
}
