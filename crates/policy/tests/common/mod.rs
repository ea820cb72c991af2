//! Builders shared by the integration tests.

#![allow(dead_code)]

use std::collections::BTreeMap;

use civitas_policy::{Context, NamedPolicy, PolicyDocument};

pub const REGION: &str = "eu-west-1";
pub const ACCOUNT: &str = "123456789012";

/// `resource` as an ARN in the test region and account, unless it already
/// is one or is `*`.
pub fn arn(resource: &str) -> String {
    if resource == "*" || resource.starts_with("arn:") {
        resource.to_owned()
    } else {
        format!("arn:aws:iot:{REGION}:{ACCOUNT}:{resource}")
    }
}

pub fn statement(effect: &str, actions: &[&str], resources: &[&str]) -> String {
    let actions: Vec<String> = actions.iter().map(|a| format!("{a:?}")).collect();
    let resources: Vec<String> = resources.iter().map(|r| format!("{:?}", arn(r))).collect();
    format!(
        r#"{{"Effect":"{effect}","Action":[{}],"Resource":[{}]}}"#,
        actions.join(","),
        resources.join(",")
    )
}

pub fn allow(action: &str, resource: &str) -> String {
    statement("Allow", &[action], &[resource])
}

pub fn deny(action: &str, resource: &str) -> String {
    statement("Deny", &[action], &[resource])
}

pub fn document(statements: &[String]) -> PolicyDocument {
    let json = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    );
    PolicyDocument::parse(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

pub fn policy(name: &str, statements: &[String]) -> NamedPolicy {
    NamedPolicy {
        name: name.to_owned(),
        version: 1,
        document: document(statements),
    }
}

/// A device `lamp-7` of type `streetlight` in district `north`, connected
/// with a client id equal to its thing name.
pub fn device() -> Context {
    Context {
        region: REGION.to_owned(),
        account: ACCOUNT.to_owned(),
        client_id: "lamp-7".to_owned(),
        thing_name: Some("lamp-7".to_owned()),
        thing_type: Some("streetlight".to_owned()),
        attributes: BTreeMap::from([("district".to_owned(), "north".to_owned())]),
        is_attached: true,
        cert_common_name: Some("lamp-7.devices.example".to_owned()),
        cert_serial_number: Some("4f2a".to_owned()),
    }
}
