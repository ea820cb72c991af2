//! A subscription index for routing: a trie keyed by topic level, so that
//! finding the subscribers of a topic costs time in the topic's depth and
//! the number of wildcard branches met, not in the number of subscriptions.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

/// One level of the trie. Wildcard children are kept apart from literal
/// ones so matching never has to look them up by name.
struct Node<K, V> {
    /// The filter spelled by the path from the root to this node, kept so
    /// matches can report it without rebuilding it.
    filter: Box<str>,
    subscribers: HashMap<K, V>,
    children: HashMap<Box<str>, Node<K, V>>,
    plus: Option<Box<Node<K, V>>>,
    /// A `#` child; it has no children of its own in a valid filter.
    hash: Option<Box<Node<K, V>>>,
}

impl<K, V> Node<K, V> {
    fn new(filter: &str) -> Self {
        Node {
            filter: filter.into(),
            subscribers: HashMap::new(),
            children: HashMap::new(),
            plus: None,
            hash: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
            && self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
    }
}

/// Subscriptions by topic filter and key (for instance a session id), each
/// with a value (for instance its options). Filters are plain filters: a
/// shared subscription's `$share/{group}/` prefix is the caller's to strip.
/// Filters are expected to be valid (see [`crate::validate_topic_filter`]);
/// levels after a `#` are stored but never match.
pub struct TopicTree<K, V> {
    root: Node<K, V>,
    len: usize,
}

impl<K: Eq + Hash + Clone, V> Default for TopicTree<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone, V> TopicTree<K, V> {
    pub fn new() -> Self {
        TopicTree {
            root: Node::new(""),
            len: 0,
        }
    }

    /// Adds or replaces the value for (`filter`, `key`); returns the value
    /// it replaces.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let mut node = &mut self.root;
        let mut end = 0;
        for (i, level) in filter.split('/').enumerate() {
            end += level.len() + usize::from(i > 0);
            let path = &filter[..end];
            node = match level {
                "+" => node.plus.get_or_insert_with(|| Box::new(Node::new(path))),
                "#" => node.hash.get_or_insert_with(|| Box::new(Node::new(path))),
                _ => match node.children.entry(level.into()) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(Node::new(path)),
                },
            };
        }
        let old = node.subscribers.insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes (`filter`, `key`), pruning the nodes left empty.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let removed = remove_in(&mut self.root, filter.split('/'), key);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    pub fn get(&self, filter: &str, key: &K) -> Option<&V> {
        let mut node = &self.root;
        for level in filter.split('/') {
            node = match level {
                "+" => node.plus.as_deref()?,
                "#" => node.hash.as_deref()?,
                _ => node.children.get(level)?,
            };
        }
        node.subscribers.get(key)
    }

    /// Calls `f` with every (filter, key, value) whose filter matches the
    /// topic name `topic`. Filters starting with a wildcard level do not
    /// match topics starting with `$`.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&str, &K, &V)) {
        let dollar = topic.starts_with('$');
        walk(&self.root, topic.split('/'), dollar, &mut f);
    }

    /// Number of (filter, key) pairs.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn emit<K, V>(node: &Node<K, V>, f: &mut impl FnMut(&str, &K, &V)) {
    for (k, v) in &node.subscribers {
        f(&node.filter, k, v);
    }
}

/// Matches the remaining topic levels `rest` below `node`. `skip_wildcards`
/// is true only at the root of a `$` topic.
fn walk<'t, K, V>(
    node: &Node<K, V>,
    mut rest: std::str::Split<'t, char>,
    skip_wildcards: bool,
    f: &mut impl FnMut(&str, &K, &V),
) {
    let Some(level) = rest.next() else {
        emit(node, f);
        // "a/#" also matches "a".
        if let Some(hash) = &node.hash {
            emit(hash, f);
        }
        return;
    };
    if !skip_wildcards {
        if let Some(hash) = &node.hash {
            emit(hash, f);
        }
        if let Some(plus) = &node.plus {
            walk(plus, rest.clone(), false, f);
        }
    }
    if let Some(child) = node.children.get(level) {
        walk(child, rest, false, f);
    }
}

/// Removes `key` at the node `levels` leads to; prunes on the way back.
fn remove_in<'f, K: Eq + Hash, V>(
    node: &mut Node<K, V>,
    mut levels: std::str::Split<'f, char>,
    key: &K,
) -> Option<V> {
    let Some(level) = levels.next() else {
        return node.subscribers.remove(key);
    };
    match level {
        "+" | "#" => {
            let slot = if level == "+" {
                &mut node.plus
            } else {
                &mut node.hash
            };
            let child = slot.as_deref_mut()?;
            let removed = remove_in(child, levels, key);
            if child.is_empty() {
                *slot = None;
            }
            removed
        }
        _ => {
            let child = node.children.get_mut(level)?;
            let removed = remove_in(child, levels, key);
            if child.is_empty() {
                node.children.remove(level);
            }
            removed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches_of(t: &TopicTree<u32, ()>, topic: &str) -> Vec<(String, u32)> {
        let mut v = Vec::new();
        t.for_each_match(topic, |f, k, _| v.push((f.to_owned(), *k)));
        v.sort();
        v
    }

    #[test]
    fn insert_get_remove_prunes() {
        let mut t = TopicTree::new();
        assert!(t.is_empty());
        assert_eq!(t.insert("a/+/c", 1u32, "x"), None);
        assert_eq!(t.insert("a/+/c", 1, "y"), Some("x"));
        assert_eq!(t.insert("a/#", 2, "z"), None);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("a/+/c", &1), Some(&"y"));
        assert_eq!(t.get("a/+/c", &2), None);
        assert_eq!(t.get("a/b/c", &1), None);
        assert_eq!(t.remove("a/+/c", &2), None);
        assert_eq!(t.remove("a/+/c", &1), Some("y"));
        assert_eq!(t.remove("a/#", &2), Some("z"));
        assert_eq!(t.remove("a/#", &2), None);
        assert!(t.is_empty());
        assert!(t.root.is_empty(), "empty nodes are pruned");
    }

    #[test]
    fn matching_reports_filters() {
        let mut t = TopicTree::new();
        for (i, f) in [
            "a/b", "a/+", "a/#", "#", "+/b", "+", "a/b/c", "$SYS/#", "+/+",
        ]
        .iter()
        .enumerate()
        {
            t.insert(f, i as u32, ());
        }
        let got = matches_of(&t, "a/b");
        let want: Vec<(String, u32)> = [
            ("#", 3),
            ("+/+", 8),
            ("+/b", 4),
            ("a/#", 2),
            ("a/+", 1),
            ("a/b", 0),
        ]
        .iter()
        .map(|(f, k)| (f.to_string(), *k))
        .collect();
        assert_eq!(got, want);
        assert_eq!(
            matches_of(&t, "a"),
            vec![("#".into(), 3), ("+".into(), 5), ("a/#".into(), 2)]
        );
        assert_eq!(matches_of(&t, "$SYS/x"), vec![("$SYS/#".into(), 7)]);
    }
}
