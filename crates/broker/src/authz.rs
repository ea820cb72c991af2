//! Topic authorization for one connection.
//!
//! The listener's [`Permissions`] are resolved once per connection (the
//! `${client_id}` variable substituted) so that each PUBLISH and SUBSCRIBE
//! costs only a few level-by-level comparisons. Permission patterns cover
//! `$`-topics too: unlike a subscription, an allow entry of `#` means
//! everything.

use crate::config::Permissions;
use crate::router::split_shared;

/// What one connection may do. Resolved once per connection (and again
/// when the registry changes), so that each check is cheap.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// May the client publish to this topic name?
    fn may_publish(&self, topic: &str) -> bool;
    /// May the client publish a retained message to this topic?
    fn may_retain(&self, topic: &str) -> bool {
        self.may_publish(topic)
    }
    /// May the client subscribe with this filter, exactly as sent
    /// (`$share/group/filter` included)?
    fn may_subscribe(&self, filter: &str) -> bool;
    /// May a message on this topic be delivered to the client?
    fn may_receive(&self, topic: &str) -> bool;
}

impl Authorizer for Grants {
    fn may_publish(&self, topic: &str) -> bool {
        Grants::may_publish(self, topic)
    }
    fn may_subscribe(&self, filter: &str) -> bool {
        Grants::may_subscribe(self, split_shared(filter).1)
    }
    fn may_receive(&self, topic: &str) -> bool {
        Grants::may_receive(self, topic)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Grants {
    publish: Vec<String>,
    subscribe: Vec<String>,
    deny_publish: Vec<String>,
    deny_subscribe: Vec<String>,
}

impl Grants {
    pub fn resolve(permissions: &Permissions, client_id: &str) -> Grants {
        let subst = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|p| p.replace("${client_id}", client_id))
                .collect()
        };
        let mut publish = subst(&permissions.publish);
        let mut subscribe = subst(&permissions.subscribe);
        for extra in &permissions.identities {
            if extra.identities.iter().any(|i| i == client_id) {
                publish.extend(subst(&extra.publish));
                subscribe.extend(subst(&extra.subscribe));
            }
        }
        Grants {
            publish,
            subscribe,
            deny_publish: subst(&permissions.deny_publish),
            deny_subscribe: subst(&permissions.deny_subscribe),
        }
    }

    /// May the client publish to this topic name?
    pub fn may_publish(&self, topic: &str) -> bool {
        !self.deny_publish.iter().any(|p| covers(p, topic))
            && self.publish.iter().any(|p| covers(p, topic))
    }

    /// May the client subscribe with this (plain, non-shared) filter?
    /// Allowed when some allow pattern covers every topic the filter can
    /// match and no deny pattern covers it.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        !self.deny_subscribe.iter().any(|p| covers(p, filter))
            && self.subscribe.iter().any(|p| covers(p, filter))
    }

    /// May a message on this topic be delivered to the client? A broad
    /// subscription must not leak topics that a deny entry carves out.
    pub fn may_receive(&self, topic: &str) -> bool {
        !self.deny_subscribe.iter().any(|p| covers(p, topic))
    }
}

/// Does `pattern` cover every topic that `target` (a name or a filter)
/// stands for?
fn covers(pattern: &str, target: &str) -> bool {
    let mut p = pattern.split('/');
    let mut t = target.split('/');
    loop {
        match (p.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(pl), Some(tl)) if pl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_levels() {
        assert!(covers("#", "$aws/things/x/shadow/get"));
        assert!(covers("a/+/c", "a/b/c"));
        assert!(covers("a/+/c", "a/+/c"));
        assert!(!covers("a/+/c", "a/#"));
        assert!(!covers("a/+/c", "a/b/c/d"));
        assert!(covers("a/#", "a"));
        assert!(!covers("a/b", "a/+"));
        assert!(!covers("a/b", "a"));
    }

    #[test]
    fn device_default_is_own_subtree() {
        let g = Grants::resolve(&Permissions::device_default(), "lamp-1");
        assert!(g.may_publish("city/north/things/lamp-1/telemetry"));
        assert!(!g.may_publish("city/north/things/lamp-2/telemetry"));
        assert!(g.may_subscribe("city/+/things/lamp-1/cmd/#"));
        assert!(!g.may_subscribe("city/#"));
        assert!(g.may_publish("$aws/things/lamp-1/shadow/update"));
    }

    #[test]
    fn identity_grants_add_to_base() {
        let p = Permissions::device_default();
        let cc = Grants::resolve(&p, "control-center");
        assert!(cc.may_subscribe("city/#"));
        assert!(cc.may_publish("city/north/things/lamp-1/cmd/power"));
        let lamp = Grants::resolve(&p, "lamp-1");
        assert!(!lamp.may_subscribe("city/#"));
    }

    #[test]
    fn deny_wins() {
        let mut p = Permissions::allow_all();
        p.deny_subscribe.push("test/nosubscribe".into());
        let g = Grants::resolve(&p, "c");
        assert!(!g.may_subscribe("test/nosubscribe"));
        assert!(g.may_subscribe("test/#"));
        assert!(!g.may_receive("test/nosubscribe"));
        assert!(g.may_receive("test/other"));
    }
}
