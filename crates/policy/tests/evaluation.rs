//! Evaluation with AWS IoT semantics: wildcards, literal MQTT wildcards,
//! resource types, ARNs, policy variables, deny-wins and what a decision
//! reports.

mod common;

use civitas_policy::{
    Action, Context, DecisionKind, NamedPolicy, ResolvedPolicies, evaluate, standard_device_policy,
};
use common::*;

fn allowed(policies: &[NamedPolicy], ctx: &Context, action: Action, resource: &str) -> bool {
    let resolved = ResolvedPolicies::resolve(policies, ctx);
    let decision = resolved.check(action, resource);
    assert_eq!(decision.allowed, resolved.allows(action, resource));
    assert_eq!(decision, evaluate(policies, ctx, action, resource));
    decision.allowed
}

#[test]
fn wildcard_and_resource_type_rules() {
    use Action::*;
    // (policy action, policy resource, checked action, checked resource, allowed)
    let cases: &[(&str, &str, Action, &str, bool)] = &[
        ("iot:Publish", "topic/a/*", Publish, "a/b/c", true),
        ("iot:Publish", "topic/a/*", Publish, "a/", true),
        ("iot:Publish", "topic/a/*", Publish, "a", false),
        ("iot:Publish", "topic/a/*/c", Publish, "a/x/y/c", true),
        ("iot:Publish", "topic/a/?/c", Publish, "a/b/c", true),
        ("iot:Publish", "topic/a/?/c", Publish, "a/bb/c", false),
        ("iot:Publish", "topic/a/?/c", Publish, "a//c", false),
        ("iot:Publish", "topic/a/?", Publish, "a/é", true),
        ("iot:Publish", "topic/A", Publish, "a", false),
        ("iot:Publish", "topic/*/end", Publish, "x/y/end", true),
        ("iot:Publish", "topic/*/end", Publish, "x/y/end/more", false),
        // `+` and `#` in a resource are literal characters, not MQTT wildcards.
        ("iot:Publish", "topic/a/+/c", Publish, "a/b/c", false),
        ("iot:Publish", "topic/a/#", Publish, "a/b", false),
        (
            "iot:Subscribe",
            "topicfilter/a/+/c",
            Subscribe,
            "a/+/c",
            true,
        ),
        (
            "iot:Subscribe",
            "topicfilter/a/+/c",
            Subscribe,
            "a/b/c",
            false,
        ),
        ("iot:Subscribe", "topicfilter/a/#", Subscribe, "a/#", true),
        ("iot:Subscribe", "topicfilter/a/#", Subscribe, "a/b", false),
        ("iot:Subscribe", "topicfilter/a/#", Subscribe, "a/+", false),
        ("iot:Subscribe", "topicfilter/a/*", Subscribe, "a/#", true),
        ("iot:Subscribe", "topicfilter/a/*", Subscribe, "a/+/b", true),
        ("iot:Subscribe", "topicfilter/a/?", Subscribe, "a/#", true),
        // A resource only covers actions checked against its own type.
        ("iot:Subscribe", "topic/a/*", Subscribe, "a/b", false),
        ("iot:Publish", "topicfilter/a/*", Publish, "a/b", false),
        ("iot:*", "client/a", Publish, "a", false),
        ("iot:*", "topic/a", Connect, "a", false),
        ("iot:Connect", "client/dev-*", Connect, "dev-1", true),
        ("iot:Connect", "client/dev-*", Connect, "prod-1", false),
        ("iot:Connect", "client/dev-?", Connect, "dev-10", false),
        // Resource `*` and a wildcard resource type cover every type.
        ("iot:*", "*", Connect, "anyone", true),
        ("iot:*", "*", Subscribe, "#", true),
        (
            "iot:*",
            "arn:aws:iot:eu-west-1:123456789012:*",
            Receive,
            "x",
            true,
        ),
        (
            "iot:*",
            "arn:aws:iot:eu-west-1:123456789012:topic*",
            Publish,
            "x",
            true,
        ),
        (
            "iot:*",
            "arn:aws:iot:eu-west-1:123456789012:topic*",
            Subscribe,
            "x",
            true,
        ),
        (
            "iot:*",
            "arn:aws:iot:eu-west-1:123456789012:topic*",
            Connect,
            "x",
            false,
        ),
        (
            "iot:*",
            "arn:aws:iot:eu-west-1:123456789012:topic?/x",
            Connect,
            "x",
            false,
        ),
        (
            "iot:*",
            "arn:aws:iot:eu-west-1:123456789012:t*c/x",
            Publish,
            "x",
            true,
        ),
        (
            "iot:*",
            "arn:aws:iot:eu-west-1:123456789012:t*c/x",
            Publish,
            "y",
            false,
        ),
        // Action wildcards, case-insensitive action names.
        ("iot:Pub*", "*", Publish, "t", true),
        ("iot:Pub*", "*", Receive, "t", false),
        ("iot:*Publish", "*", RetainPublish, "t", true),
        ("IOT:publish", "*", Publish, "t", true),
        ("iot:?eceive", "*", Receive, "t", true),
        ("*", "*", Connect, "c", true),
        ("greengrass:*", "*", Publish, "t", false),
        // Shadow actions on thing resources (named shadows after a slash).
        (
            "iot:GetThingShadow",
            "thing/lamp-7",
            GetThingShadow,
            "lamp-7",
            true,
        ),
        (
            "iot:GetThingShadow",
            "thing/lamp-7",
            GetThingShadow,
            "lamp-7/config",
            false,
        ),
        (
            "iot:*ThingShadow",
            "thing/lamp-7/*",
            UpdateThingShadow,
            "lamp-7/config",
            true,
        ),
        (
            "iot:*ThingShadow",
            "thing/lamp-7/*",
            Publish,
            "lamp-7/config",
            false,
        ),
    ];
    let ctx = device();
    for &(policy_action, policy_resource, action, resource, expected) in cases {
        let policies = [policy("p", &[allow(policy_action, policy_resource)])];
        assert_eq!(
            allowed(&policies, &ctx, action, resource),
            expected,
            "{policy_action} on {policy_resource}: {action} {resource:?}"
        );
    }
}

#[test]
fn arn_region_and_account() {
    // (resource ARN, allowed for a context in eu-west-1 / 123456789012)
    let cases = [
        ("arn:aws:iot:eu-west-1:123456789012:topic/t", true),
        ("arn:aws-cn:iot:eu-west-1:123456789012:topic/t", true),
        ("arn:aws:iot:*:*:topic/t", true),
        ("arn:aws:iot:eu-*:123456789012:topic/t", true),
        ("arn:aws:iot:eu-west-?:1234567890??:topic/t", true),
        ("arn:aws:iot:us-east-1:123456789012:topic/t", false),
        ("arn:aws:iot:eu-west-1:210987654321:topic/t", false),
        ("arn:aws:iot:eu-west-1:*:topic/t", true),
        ("arn:aws:iot::123456789012:topic/t", false),
        // A region wildcard does not reach across the colon into the topic.
        ("arn:aws:iot:*:topic/t", false),
    ];
    let ctx = device();
    for (resource, expected) in cases {
        let document = format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"iot:Publish","Resource":"{resource}"}}}}"#
        );
        let Ok(document) = civitas_policy::PolicyDocument::parse(&document) else {
            assert!(!expected, "{resource} should parse");
            continue;
        };
        let policies = [NamedPolicy {
            name: "p".into(),
            version: 1,
            document,
        }];
        assert_eq!(
            allowed(&policies, &ctx, Action::Publish, "t"),
            expected,
            "{resource}"
        );
    }
}

#[test]
fn every_variable_is_substituted() {
    use Action::*;
    // (resource with a variable, checked action, checked resource)
    let cases = [
        ("client/${iot:ClientId}", Connect, "lamp-7"),
        (
            "client/${iot:Connection.Thing.ThingName}",
            Connect,
            "lamp-7",
        ),
        (
            "topic/types/${iot:Connection.Thing.ThingTypeName}/x",
            Publish,
            "types/streetlight/x",
        ),
        (
            "topic/d/${iot:Connection.Thing.Attributes[district]}",
            Publish,
            "d/north",
        ),
        (
            "topic/attached/${iot:Connection.Thing.IsAttached}",
            Publish,
            "attached/true",
        ),
        (
            "topic/cn/${iot:Certificate.Subject.CommonName}",
            Publish,
            "cn/lamp-7.devices.example",
        ),
        (
            "topic/sn/${iot:Certificate.SerialNumber}",
            Publish,
            "sn/4f2a",
        ),
        (
            "topic/${iot:ClientId}/${iot:ClientId}",
            Publish,
            "lamp-7/lamp-7",
        ),
        ("topic/lit/${*}/${?}/${$}", Publish, "lit/*/?/$"),
        (
            "topic/d/${iot:Connection.Thing.Attributes[zone], 'none'}",
            Publish,
            "d/none",
        ),
        ("topicfilter/${iot:ClientId}/#", Subscribe, "lamp-7/#"),
    ];
    let ctx = device();
    for (resource, action, checked) in cases {
        let policies = [policy("p", &[allow("iot:*", resource)])];
        assert!(
            allowed(&policies, &ctx, action, checked),
            "{resource}: {checked}"
        );
        let near_miss = format!("{checked}x");
        assert!(
            !allowed(&policies, &ctx, action, &near_miss),
            "{resource}: {near_miss}"
        );
    }
}

#[test]
fn substituted_values_are_literal() {
    let ctx = Context {
        client_id: "dev*?".into(),
        thing_name: Some("*".into()),
        ..device()
    };
    let policies = [policy(
        "p",
        &[
            allow(
                "iot:Publish",
                "topic/things/${iot:Connection.Thing.ThingName}/x",
            ),
            allow("iot:Connect", "client/${iot:ClientId}"),
        ],
    )];
    assert!(allowed(&policies, &ctx, Action::Publish, "things/*/x"));
    assert!(!allowed(
        &policies,
        &ctx,
        Action::Publish,
        "things/lamp-7/x"
    ));
    assert!(!allowed(&policies, &ctx, Action::Publish, "things//x"));
    assert!(allowed(&policies, &ctx, Action::Connect, "dev*?"));
    assert!(!allowed(&policies, &ctx, Action::Connect, "dev-1"));
    assert!(!allowed(&policies, &ctx, Action::Connect, "devXY"));
}

#[test]
fn statements_with_unset_variables_are_ignored() {
    let unbound = Context {
        thing_name: None,
        thing_type: None,
        attributes: Default::default(),
        is_attached: false,
        cert_common_name: None,
        cert_serial_number: None,
        ..device()
    };
    let thing_topic = "topic/things/${iot:Connection.Thing.ThingName}/*";

    // An Allow that cannot resolve grants nothing.
    let policies = [policy("p", &[allow("iot:Publish", thing_topic)])];
    let decision =
        ResolvedPolicies::resolve(&policies, &unbound).check(Action::Publish, "things/x/y");
    assert_eq!(decision.effect, DecisionKind::ImplicitDeny);
    assert!(ResolvedPolicies::resolve(&policies, &unbound).is_empty());

    // A Deny that cannot resolve denies nothing, as on AWS.
    let policies = [policy(
        "p",
        &[allow("iot:*", "*"), deny("iot:Publish", thing_topic)],
    )];
    assert!(allowed(&policies, &unbound, Action::Publish, "things/x/y"));
    assert!(!allowed(
        &policies,
        &device(),
        Action::Publish,
        "things/lamp-7/y"
    ));

    // The whole statement goes, including its resources without variables.
    let both = statement("Allow", &["iot:Publish"], &["topic/open", thing_topic]);
    let policies = [policy("p", &[both])];
    assert!(!allowed(&policies, &unbound, Action::Publish, "open"));
    assert!(allowed(&policies, &device(), Action::Publish, "open"));

    // Unknown keys never resolve; a default value makes the statement apply.
    for resource in [
        "topic/${aws:username}",
        "topic/${iot:Certificate.Subject.Organization}",
        "topic/${iot:Connection.Thing.Attributes[District]}",
    ] {
        let policies = [policy("p", &[allow("iot:Publish", resource)])];
        assert!(
            ResolvedPolicies::resolve(&policies, &device()).is_empty(),
            "{resource}"
        );
    }
    let policies = [policy(
        "p",
        &[allow("iot:Publish", "topic/${aws:username, 'guest'}")],
    )];
    assert!(allowed(&policies, &unbound, Action::Publish, "guest"));
}

#[test]
fn explicit_deny_wins_across_policies() {
    let ctx = device();
    let open = policy("open", &[allow("iot:*", "*")]);
    let locked = policy(
        "locked",
        &[
            allow("iot:Publish", "topic/secret/public"),
            deny("iot:Publish", "topic/secret/*"),
        ],
    );
    for policies in [
        [open.clone(), locked.clone()],
        [locked.clone(), open.clone()],
    ] {
        let resolved = ResolvedPolicies::resolve(&policies, &ctx);
        let decision = resolved.check(Action::Publish, "secret/public");
        assert!(!decision.allowed);
        assert_eq!(decision.effect, DecisionKind::ExplicitDeny);
        let statement = decision.statement.expect("deciding statement");
        assert_eq!((&*statement.policy, statement.index), ("locked", 1));
        assert!(resolved.check(Action::Publish, "other").allowed);
        assert!(resolved.check(Action::Receive, "secret/public").allowed);
    }
}

#[test]
fn decisions_name_the_deciding_statement() {
    let ctx = device();
    let document = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Telemetry","Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/t/*"},
        {"Effect":"Allow","Action":"iot:Publish","Resource":"*"},
        {"Sid":"NoAdmin","Effect":"Deny","Action":"iot:*","Resource":"arn:aws:iot:*:*:topic/admin/*"}]}"#;
    let policies = [NamedPolicy {
        name: "fleet".into(),
        version: 3,
        document: civitas_policy::PolicyDocument::parse(document).unwrap(),
    }];
    let resolved = ResolvedPolicies::resolve(&policies, &ctx);

    let decision = resolved.check(Action::Publish, "t/1");
    assert_eq!(decision.effect, DecisionKind::Allow);
    let statement = decision.statement.clone().unwrap();
    assert_eq!(
        (
            &*statement.policy,
            statement.version,
            statement.index,
            statement.sid.as_deref()
        ),
        ("fleet", 3, 0, Some("Telemetry"))
    );
    assert_eq!(
        decision.to_string(),
        "allowed by policy \"fleet\" version 3 Statement[0] (Sid \"Telemetry\")"
    );

    let decision = resolved.check(Action::Publish, "other");
    assert_eq!(decision.statement.as_ref().map(|s| s.index), Some(1));

    let decision = resolved.check(Action::Publish, "admin/x");
    assert_eq!(
        decision.to_string(),
        "explicitly denied by policy \"fleet\" version 3 Statement[2] (Sid \"NoAdmin\")"
    );

    let decision = resolved.check(Action::Subscribe, "t/1");
    assert_eq!(decision.effect, DecisionKind::ImplicitDeny);
    assert_eq!(decision.statement, None);
    assert_eq!(decision.to_string(), "denied: no statement allows it");

    let nothing = ResolvedPolicies::resolve(&[], &ctx);
    assert!(nothing.is_empty());
    assert!(!nothing.allows(Action::Connect, "lamp-7"));
}

#[test]
fn standard_device_policy_confines_a_device_to_its_own_topics() {
    use Action::*;
    let policies = [NamedPolicy {
        name: "civitas-device".into(),
        version: 1,
        document: standard_device_policy(),
    }];
    let cases = [
        (Connect, "lamp-7", true),
        (Connect, "lamp-8", false),
        (Publish, "city/north/things/lamp-7/telemetry", true),
        (Publish, "city/north/things/lamp-7/a/b", true),
        (Publish, "city/north/things/lamp-8/telemetry", false),
        (Publish, "city/north/things/lamp-7", false),
        (Publish, "$aws/things/lamp-7/shadow/update", true),
        (Publish, "$aws/things/lamp-8/shadow/update", false),
        (Receive, "$aws/things/lamp-7/shadow/update/delta", true),
        (Receive, "city/north/things/lamp-7/cmd", true),
        (RetainPublish, "city/north/things/lamp-7/status", false),
        (Subscribe, "city/+/things/lamp-7/#", true),
        (Subscribe, "city/north/things/lamp-7/cmd", true),
        (Subscribe, "$aws/things/lamp-7/shadow/update/accepted", true),
        (Subscribe, "city/+/things/+/#", false),
        (Subscribe, "#", false),
        (Subscribe, "$aws/things/lamp-8/shadow/#", false),
        (GetThingShadow, "lamp-7", true),
        (UpdateThingShadow, "lamp-7/settings", true),
        (DeleteThingShadow, "lamp-7", true),
        (GetThingShadow, "lamp-8", false),
        (UpdateThingShadow, "lamp-8/settings", false),
        (ListNamedShadowsForThing, "lamp-7", false),
    ];
    let ctx = device();
    for (action, resource, expected) in cases {
        assert_eq!(
            allowed(&policies, &ctx, action, resource),
            expected,
            "{action} {resource}"
        );
    }
    // Without a thing binding the policy grants nothing at all.
    let unbound = Context {
        thing_name: None,
        ..device()
    };
    assert!(ResolvedPolicies::resolve(&policies, &unbound).is_empty());
}
