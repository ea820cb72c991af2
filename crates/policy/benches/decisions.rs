//! Policy decisions per second for one device holding a 20-statement policy
//! (Allows and Denies, exact, prefix and glob resources, policy variables):
//! resolve once, as on CONNECT, then check many topics, as on PUBLISH,
//! SUBSCRIBE and delivery.
//!
//! Run with `cargo bench -p civitas-policy --bench decisions`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use civitas_policy::{Action, Context, NamedPolicy, PolicyDocument, ResolvedPolicies};

/// (effect, action, resource after `arn:aws:iot:*:*:`, or `*`); `{T}`
/// stands for the thing-name variable and `{C}` for the client-id variable.
/// Topic names are terse because AWS caps a document at 2048 characters,
/// which 20 statements nearly fill.
const STATEMENTS: [(&str, &str, &str); 20] = [
    ("Allow", "iot:Connect", "client/{C}"),
    ("Allow", "iot:Publish", "topic/c/*/t/{T}/tm"),
    ("Allow", "iot:Publish", "topic/c/*/t/{C}/ev/*"),
    ("Allow", "iot:Publish", "topic/$aws/things/{C}/shadow/*"),
    ("Allow", "iot:Receive", "topic/c/*/t/{C}/*"),
    ("Allow", "iot:Receive", "topic/$aws/things/{C}/*"),
    ("Allow", "iot:Subscribe", "topicfilter/c/*/t/{C}/*"),
    ("Allow", "iot:Subscribe", "topicfilter/$aws/things/{C}/*"),
    (
        "Allow",
        "iot:Publish",
        "topic/zone/${iot:Connection.Thing.Attributes[zone]}/*",
    ),
    ("Allow", "iot:Receive", "topic/all/*"),
    ("Allow", "iot:Subscribe", "topicfilter/all/#"),
    (
        "Allow",
        "iot:Publish",
        "topic/ty/${iot:Connection.Thing.ThingTypeName}/?/up",
    ),
    ("Allow", "iot:GetThingShadow", "thing/{C}"),
    ("Allow", "iot:UpdateThingShadow", "thing/{C}"),
    ("Deny", "iot:Publish", "topic/c/*/t/*/adm/*"),
    ("Deny", "iot:Subscribe", "topicfilter/c/+/t/+/#"),
    ("Deny", "iot:*", "topic/$aws/things/{C}/jobs/*"),
    ("Deny", "iot:Receive", "topic/all/int/*"),
    ("Deny", "iot:RetainPublish", "*"),
    ("Deny", "iot:Connect", "client/*-off"),
];

fn policy() -> NamedPolicy {
    let statements = STATEMENTS.map(|(effect, action, resource)| {
        let resource = resource
            .replace("{T}", "${iot:Connection.Thing.ThingName}")
            .replace("{C}", "${iot:ClientId}");
        let resource = match resource.as_str() {
            "*" => resource,
            _ => format!("arn:aws:iot:*:*:{resource}"),
        };
        (effect, action, resource)
    });
    let statements: Vec<String> = statements
        .iter()
        .map(|(effect, action, resource)| {
            format!(r#"{{"Effect":"{effect}","Action":"{action}","Resource":"{resource}"}}"#)
        })
        .collect();
    let json = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    );
    NamedPolicy {
        name: "bench".to_owned(),
        version: 1,
        document: PolicyDocument::parse(&json).unwrap_or_else(|e| panic!("{e}")),
    }
}

fn main() {
    let policies = [policy()];
    let ctx = Context {
        region: "eu-west-1".to_owned(),
        account: "123456789012".to_owned(),
        client_id: "lamp-000123".to_owned(),
        thing_name: Some("lamp-000123".to_owned()),
        thing_type: Some("streetlight".to_owned()),
        attributes: BTreeMap::from([("zone".to_owned(), "north".to_owned())]),
        is_attached: true,
        cert_common_name: None,
        cert_serial_number: None,
    };

    let started = Instant::now();
    let resolves = 20_000;
    for _ in 0..resolves {
        black_box(ResolvedPolicies::resolve(
            black_box(&policies),
            black_box(&ctx),
        ));
    }
    let per_resolve = started.elapsed() / resolves;
    println!("resolve (once per connection): {per_resolve:?}");

    let resolved = ResolvedPolicies::resolve(&policies, &ctx);
    let requests: Vec<(Action, String)> = (0..64)
        .flat_map(|i| {
            [
                (Action::Publish, "c/north/t/lamp-000123/tm".to_owned()),
                (Action::Publish, format!("c/north/t/lamp-000123/ev/{i}")),
                (Action::Publish, format!("c/north/t/lamp-000999/ev/{i}")),
                (Action::Publish, format!("c/north/t/lamp-000123/adm/{i}")),
                (Action::Receive, format!("all/weather/{i}")),
                (Action::Receive, format!("all/int/{i}")),
                (Action::Subscribe, "c/+/t/lamp-000123/#".to_owned()),
                (
                    Action::Subscribe,
                    format!("$aws/things/lamp-000123/shadow/update/{i}"),
                ),
                (Action::Publish, format!("ty/streetlight/{}/up", i % 10)),
                (Action::Connect, "lamp-000123".to_owned()),
            ]
        })
        .collect();
    let allowed = requests
        .iter()
        .filter(|(action, resource)| resolved.allows(*action, resource))
        .count();

    for (label, with_statement) in [
        ("check (with deciding statement)", true),
        ("allows (verdict only)", false),
    ] {
        let mut decisions: u64 = 0;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(1) {
            for (action, resource) in &requests {
                if with_statement {
                    black_box(resolved.check(*action, black_box(resource)));
                } else {
                    black_box(resolved.allows(*action, black_box(resource)));
                }
            }
            decisions += requests.len() as u64;
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "{label}: {:.2} M decisions/s ({:.0} ns each; {allowed}/{} requests allowed)",
            decisions as f64 / elapsed / 1e6,
            elapsed * 1e9 / decisions as f64,
            requests.len()
        );
    }
}
