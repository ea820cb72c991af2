//! The AWS IoT actions civitas authorizes, and the `Action` element of a
//! statement: `iot:Publish`, `iot:*`, `iot:Pub*`, `iot:?eceive`, `*`.
//!
//! As in IAM, the service prefix and action name are case-insensitive and
//! may contain `*` and `?`. Any well-formed action is accepted and kept,
//! including ones civitas does not evaluate yet (other `iot:` actions,
//! `greengrass:*`), so that AWS documents load unchanged; which of the
//! evaluated actions a statement covers is worked out once at parse time.

use std::fmt;

use crate::arn::ResourceType;
use crate::pattern::Pattern;

/// An action civitas checks; each is checked against one resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `iot:Connect`, on `client/<client id>`.
    Connect,
    /// `iot:Publish`, on `topic/<topic name>`.
    Publish,
    /// `iot:Subscribe`, on `topicfilter/<filter as sent>`.
    Subscribe,
    /// `iot:Receive`, on `topic/<topic name>` for each delivered message.
    Receive,
    /// `iot:RetainPublish`, on `topic/<topic name>` for a retained publish.
    RetainPublish,
    /// `iot:GetRetainedMessage`, on `topic/<topic name>`.
    GetRetainedMessage,
    /// `iot:GetThingShadow`, on `thing/<thing>` or `thing/<thing>/<shadow>`.
    GetThingShadow,
    /// `iot:UpdateThingShadow`, on `thing/<thing>` or `thing/<thing>/<shadow>`.
    UpdateThingShadow,
    /// `iot:DeleteThingShadow`, on `thing/<thing>` or `thing/<thing>/<shadow>`.
    DeleteThingShadow,
    /// `iot:ListNamedShadowsForThing`, on `thing/<thing>`.
    ListNamedShadowsForThing,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::Connect,
        Action::Publish,
        Action::Subscribe,
        Action::Receive,
        Action::RetainPublish,
        Action::GetRetainedMessage,
        Action::GetThingShadow,
        Action::UpdateThingShadow,
        Action::DeleteThingShadow,
        Action::ListNamedShadowsForThing,
    ];

    /// The action as written in policies, e.g. `iot:Publish`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Connect => "iot:Connect",
            Action::Publish => "iot:Publish",
            Action::Subscribe => "iot:Subscribe",
            Action::Receive => "iot:Receive",
            Action::RetainPublish => "iot:RetainPublish",
            Action::GetRetainedMessage => "iot:GetRetainedMessage",
            Action::GetThingShadow => "iot:GetThingShadow",
            Action::UpdateThingShadow => "iot:UpdateThingShadow",
            Action::DeleteThingShadow => "iot:DeleteThingShadow",
            Action::ListNamedShadowsForThing => "iot:ListNamedShadowsForThing",
        }
    }

    /// Parses an exact action name, case-insensitively (`iot:publish`).
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|action| action.name().eq_ignore_ascii_case(name))
    }

    /// The kind of resource this action is checked against.
    pub fn resource_type(self) -> ResourceType {
        match self {
            Action::Connect => ResourceType::Client,
            Action::Publish
            | Action::Receive
            | Action::RetainPublish
            | Action::GetRetainedMessage => ResourceType::Topic,
            Action::Subscribe => ResourceType::TopicFilter,
            Action::GetThingShadow
            | Action::UpdateThingShadow
            | Action::DeleteThingShadow
            | Action::ListNamedShadowsForThing => ResourceType::Thing,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    fn bit(self) -> u16 {
        1 << self.index()
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of evaluated actions a statement's `Action` element covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ActionSet(u16);

impl ActionSet {
    pub(crate) fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    /// Adds the evaluated actions one `Action` entry matches, or explains
    /// why the entry is not an action.
    pub(crate) fn add_pattern(&mut self, text: &str) -> Result<(), String> {
        if !is_action_syntax(text) {
            return Err(format!(
                "{text:?} is not an action (expected SERVICE:NAME, e.g. \"iot:Publish\", or \"*\")"
            ));
        }
        let pattern = Pattern::wild(&text.to_ascii_lowercase());
        for action in Action::ALL {
            if pattern.is_match(&action.name().to_ascii_lowercase()) {
                self.0 |= action.bit();
            }
        }
        Ok(())
    }
}

fn is_action_syntax(text: &str) -> bool {
    if text == "*" {
        return true;
    }
    let Some((service, name)) = text.split_once(':') else {
        return false;
    };
    let service_ok = !service.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'*' | b'?'));
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*' | b'?'));
    service_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> ActionSet {
        let mut set = ActionSet::default();
        for pattern in patterns {
            set.add_pattern(pattern).unwrap();
        }
        set
    }

    fn members(set: ActionSet) -> Vec<Action> {
        Action::ALL
            .into_iter()
            .filter(|a| set.contains(*a))
            .collect()
    }

    #[test]
    fn action_patterns_table() {
        use Action::*;
        let cases: &[(&[&str], &[Action])] = &[
            (&["iot:Publish"], &[Publish]),
            (&["IOT:publish"], &[Publish]),
            (&["iot:Pub*"], &[Publish]),
            (&["iot:*Publish"], &[Publish, RetainPublish]),
            (&["iot:?eceive"], &[Receive]),
            (&["iot:*"], &Action::ALL),
            (&["*"], &Action::ALL),
            (&["i?t:Connect"], &[Connect]),
            (
                &["iot:*ThingShadow"],
                &[GetThingShadow, UpdateThingShadow, DeleteThingShadow],
            ),
            (&["iot:Connect", "iot:Subscribe"], &[Connect, Subscribe]),
            // Kept, but not an action civitas evaluates.
            (&["greengrass:*"], &[]),
            (&["iot:CreateThing"], &[]),
            (&["iot:Publishh"], &[]),
        ];
        for (patterns, expected) in cases {
            assert_eq!(members(set(patterns)), *expected, "{patterns:?}");
        }
    }

    #[test]
    fn malformed_actions_are_refused() {
        for text in [
            "",
            "Publish",
            "iot:",
            ":Publish",
            "iot:Pub lish",
            "iot:${x}",
            "iot:a:b",
        ] {
            let mut set = ActionSet::default();
            assert!(set.add_pattern(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(action));
            assert_eq!(
                Action::from_name(&action.name().to_uppercase()),
                Some(action)
            );
        }
        assert_eq!(Action::from_name("iot:*"), None);
    }
}
