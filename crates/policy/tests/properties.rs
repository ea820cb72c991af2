//! Properties: an explicit Deny is never overridden, and values substituted
//! for policy variables never act as wildcards.

mod common;

use civitas_policy::{Action, Context, DecisionKind, NamedPolicy, ResolvedPolicies};
use common::*;
use proptest::prelude::*;

/// A Deny resource built to match `topic`, in one of several forms.
fn matching_resource(topic: &str, form: usize, cut: usize, mask: &[bool]) -> String {
    let cut = cut % (topic.len() + 1);
    match form % 6 {
        0 => format!("topic/{topic}"),
        1 => "*".to_owned(),
        2 => format!("topic/{}*", &topic[..cut]),
        3 => format!("topic/*{}", &topic[cut..]),
        4 => {
            let masked: String = topic
                .chars()
                .zip(mask.iter().cycle())
                .map(|(c, &hide)| if hide { '?' } else { c })
                .collect();
            format!("topic/{masked}")
        }
        _ => format!("arn:aws:iot:*:{ACCOUNT}:top*"),
    }
}

fn allow_statement() -> impl Strategy<Value = String> {
    let action = prop::sample::select(vec!["iot:*", "iot:Publish", "*", "iot:Pub*", "iot:Receive"]);
    let resource = prop_oneof![
        Just("*".to_owned()),
        "[a-z/]{0,6}\\*?".prop_map(|r| format!("topic/{r}")),
        Just("topic/${iot:ClientId}/*".to_owned()),
        Just("topic/*".to_owned()),
        Just("arn:aws:iot:*:*:*".to_owned()),
    ];
    (action, prop::collection::vec(resource, 1..4)).prop_map(|(action, resources)| {
        let resources: Vec<&str> = resources.iter().map(String::as_str).collect();
        statement("Allow", &[action], &resources)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn explicit_deny_is_never_overridden(
        topic in "[a-z0-9/]{1,16}",
        form in 0usize..6,
        cut in 0usize..17,
        mask in prop::collection::vec(any::<bool>(), 1..8),
        allows in prop::collection::vec(allow_statement(), 0..60),
        policy_count in 1usize..5,
        deny_policy in 0usize..5,
        deny_position in 0usize..50,
    ) {
        let deny_statement = statement(
            "Deny",
            &["iot:Publish"],
            &[&matching_resource(&topic, form, cut, &mask)],
        );
        // AWS caps a document at 2048 characters, so many Allows are spread
        // over many policies, as a device with several attached policies.
        let policy_count = policy_count.max(allows.len().div_ceil(6));
        let mut grouped: Vec<Vec<String>> = vec![Vec::new(); policy_count];
        for (i, allow) in allows.into_iter().enumerate() {
            grouped[i % policy_count].push(allow);
        }
        let target = &mut grouped[deny_policy % policy_count];
        let at = deny_position % (target.len() + 1);
        target.insert(at, deny_statement);
        let policies: Vec<NamedPolicy> = grouped
            .iter()
            .enumerate()
            .filter(|(_, statements)| !statements.is_empty())
            .map(|(i, statements)| policy(&format!("p{i}"), statements))
            .collect();

        let resolved = ResolvedPolicies::resolve(&policies, &device());
        let decision = resolved.check(Action::Publish, &topic);
        prop_assert_eq!(decision.effect, DecisionKind::ExplicitDeny);
        prop_assert!(!decision.allowed);
        prop_assert!(!resolved.allows(Action::Publish, &topic));
        let statement = decision.statement.expect("deciding statement");
        prop_assert_eq!(&*statement.policy, format!("p{}", deny_policy % policy_count));
    }

    #[test]
    fn substituted_values_never_act_as_wildcards(
        value in "[ab*?+#/]{1,6}",
        request in "[ab*?+#/]{1,6}",
    ) {
        let ctx = Context {
            client_id: value.clone(),
            thing_name: Some(value.clone()),
            cert_common_name: Some(value.clone()),
            ..device()
        };
        let policies = [policy("p", &[
            allow("iot:Connect", "client/${iot:ClientId}"),
            allow("iot:Publish", "topic/t/${iot:Connection.Thing.ThingName}/x"),
            allow("iot:Subscribe", "topicfilter/${iot:Certificate.Subject.CommonName}"),
        ])];
        let resolved = ResolvedPolicies::resolve(&policies, &ctx);
        prop_assert_eq!(resolved.allows(Action::Connect, &request), request == value);
        prop_assert_eq!(
            resolved.allows(Action::Publish, &format!("t/{request}/x")),
            request == value
        );
        prop_assert_eq!(resolved.allows(Action::Subscribe, &request), request == value);
    }
}
