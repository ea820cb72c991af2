//! A subscription index for routing: a trie keyed by topic level, so that
//! finding the subscribers of a topic costs time in the topic's depth and
//! the number of wildcard branches met, not in the number of subscriptions.
//!
//! Filters and topics come from clients and may have tens of thousands of
//! levels, so nothing here recurses per level (matching, pruning and even
//! dropping use explicit stacks) and no node stores more than its own
//! filter.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::str::Split;

/// One level of the trie. Wildcard children are kept apart from literal
/// ones so matching never has to look them up by name.
struct Node<K, V> {
    /// The filter ending here, present while it has subscribers, so
    /// matches can report it without rebuilding it.
    filter: Option<Box<str>>,
    subscribers: HashMap<K, V>,
    children: HashMap<Box<str>, Node<K, V>>,
    plus: Option<Box<Node<K, V>>>,
    /// A `#` child; it has no children of its own in a valid filter.
    hash: Option<Box<Node<K, V>>>,
}

impl<K, V> Node<K, V> {
    fn new() -> Self {
        Node {
            filter: None,
            subscribers: HashMap::new(),
            children: HashMap::new(),
            plus: None,
            hash: None,
        }
    }

    /// Number of subscribers and children.
    fn degree(&self) -> usize {
        self.subscribers.len()
            + self.children.len()
            + usize::from(self.plus.is_some())
            + usize::from(self.hash.is_some())
    }

    fn child(&self, level: &str) -> Option<&Node<K, V>> {
        match level {
            "+" => self.plus.as_deref(),
            "#" => self.hash.as_deref(),
            _ => self.children.get(level),
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Node<K, V>> {
        match level {
            "+" => self.plus.as_deref_mut(),
            "#" => self.hash.as_deref_mut(),
            _ => self.children.get_mut(level),
        }
    }

    fn child_or_insert(&mut self, level: &str) -> &mut Node<K, V> {
        match level {
            "+" => self.plus.get_or_insert_with(|| Box::new(Node::new())),
            "#" => self.hash.get_or_insert_with(|| Box::new(Node::new())),
            _ => match self.children.entry(level.into()) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(Node::new()),
            },
        }
    }

    fn remove_child(&mut self, level: &str) {
        match level {
            "+" => self.plus = None,
            "#" => self.hash = None,
            _ => {
                self.children.remove(level);
            }
        }
    }

    fn detach_children(&mut self, out: &mut Vec<Node<K, V>>) {
        out.extend(self.children.drain().map(|(_, c)| c));
        if let Some(p) = self.plus.take() {
            out.push(*p);
        }
        if let Some(h) = self.hash.take() {
            out.push(*h);
        }
    }
}

impl<K, V> Drop for Node<K, V> {
    fn drop(&mut self) {
        // The default drop would recurse once per level of a deep chain.
        let mut stack = Vec::new();
        self.detach_children(&mut stack);
        while let Some(mut node) = stack.pop() {
            node.detach_children(&mut stack);
        }
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
            root: Node::new(),
            len: 0,
        }
    }

    /// Adds or replaces the value for (`filter`, `key`); returns the value
    /// it replaces.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.child_or_insert(level);
        }
        if node.filter.is_none() {
            node.filter = Some(filter.into());
        }
        let old = node.subscribers.insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes (`filter`, `key`), pruning the nodes left empty.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.child_mut(level)?;
        }
        let removed = node.subscribers.remove(key)?;
        self.len -= 1;
        if node.subscribers.is_empty() {
            node.filter = None;
            if node.degree() == 0 {
                self.prune(filter);
            }
        }
        Some(removed)
    }

    /// Cuts off the longest chain at the end of `filter`'s path whose
    /// nodes hold nothing but the rest of that chain.
    fn prune(&mut self, filter: &str) {
        let mut cut = None;
        let mut node = &self.root;
        let mut levels = filter.split('/').enumerate().peekable();
        while let Some((i, level)) = levels.next() {
            let Some(child) = node.child(level) else {
                return;
            };
            let keeps_only_path = if levels.peek().is_some() { 1 } else { 0 };
            if child.degree() == keeps_only_path {
                cut.get_or_insert(i);
            } else {
                cut = None;
            }
            node = child;
        }
        let Some(cut) = cut else {
            return;
        };
        let mut parent = &mut self.root;
        let mut levels = filter.split('/');
        for level in levels.by_ref().take(cut) {
            match parent.child_mut(level) {
                Some(next) => parent = next,
                None => return,
            }
        }
        if let Some(level) = levels.next() {
            parent.remove_child(level);
        }
    }

    pub fn get(&self, filter: &str, key: &K) -> Option<&V> {
        let mut node = &self.root;
        for level in filter.split('/') {
            node = node.child(level)?;
        }
        node.subscribers.get(key)
    }

    /// Calls `f` with every (filter, key, value) whose filter matches the
    /// topic name `topic`. Filters starting with a wildcard level do not
    /// match topics starting with `$`.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&str, &K, &V)) {
        // Each pending entry: a node reached and the topic levels left.
        // Every trie node is visited at most once per topic.
        let mut pending: Vec<(&Node<K, V>, Split<'_, char>)> = Vec::new();
        let mut levels = topic.split('/');
        // The root is handled apart: only there do '$' topics skip the
        // wildcard children.
        if let Some(first) = levels.next() {
            if !topic.starts_with('$') {
                if let Some(hash) = &self.root.hash {
                    emit(hash, &mut f);
                }
                if let Some(plus) = &self.root.plus {
                    pending.push((plus, levels.clone()));
                }
            }
            if let Some(child) = self.root.children.get(first) {
                pending.push((child, levels));
            }
        }
        while let Some((node, mut rest)) = pending.pop() {
            let Some(level) = rest.next() else {
                emit(node, &mut f);
                // "a/#" also matches "a".
                if let Some(hash) = &node.hash {
                    emit(hash, &mut f);
                }
                continue;
            };
            if let Some(hash) = &node.hash {
                emit(hash, &mut f);
            }
            if let Some(plus) = &node.plus {
                pending.push((plus, rest.clone()));
            }
            if let Some(child) = node.children.get(level) {
                pending.push((child, rest));
            }
        }
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
    let filter = node.filter.as_deref().unwrap_or_default();
    for (k, v) in &node.subscribers {
        f(filter, k, v);
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
        assert_eq!(t.root.degree(), 0, "empty nodes are pruned");
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

    #[test]
    fn pruning_keeps_shared_prefixes() {
        let mut t = TopicTree::new();
        t.insert("a/b/c/d", 1u32, ());
        t.insert("a/b", 2, ());
        t.insert("a/b/x", 3, ());
        assert_eq!(t.remove("a/b/c/d", &1), Some(()));
        let b = t
            .root
            .child("a")
            .and_then(|a| a.child("b"))
            .expect("a/b stays");
        assert!(b.child("c").is_none(), "the c/d chain is gone");
        assert!(b.child("x").is_some());
        assert_eq!(t.remove("a/b", &2), Some(()));
        assert_eq!(t.remove("a/b/x", &3), Some(()));
        assert_eq!(t.root.degree(), 0);
    }

    #[test]
    fn very_deep_filters_and_topics_do_not_exhaust_the_stack() {
        // 65535 bytes is the longest filter MQTT can carry.
        let depth = 32_000;
        let deep_plus = vec!["+"; depth].join("/");
        let deep_topic = vec!["a"; depth].join("/");
        let mut t = TopicTree::new();
        t.insert(&deep_plus, 1u32, ());
        t.insert(&deep_topic, 2, ());
        t.insert(&format!("{deep_topic}/#"), 3, ());
        let mut n = 0;
        t.for_each_match(&deep_topic, |_, _, _| n += 1);
        assert_eq!(n, 3);
        assert_eq!(t.remove(&deep_topic, &2), Some(()));
        assert_eq!(t.remove(&format!("{deep_topic}/#"), &3), Some(()));
        t.insert(&deep_topic, 2, ());
        // Dropping a tree with deep chains must not recurse either.
        drop(t);
    }
}
