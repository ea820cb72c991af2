//! Rule administration as the CLI sends it: JSON requests in, JSON
//! responses out, and `rule test` showing what every action would
//! receive without doing anything.

use civitas_rules_runtime::{ActionDeps, RuleCatalog, RuleRequest, RulesEngine};
use serde_json::{Value, json};

fn call(engine: &RulesEngine, request: Value) -> Value {
    let request: RuleRequest = serde_json::from_value(request).expect("a request");
    serde_json::to_value(engine.execute(request)).expect("a response")
}

const LAMP_RULE: &str = r#"{
  "sql": "SELECT power_w, topic(4) AS lamp FROM 'city/+/things/+/telemetry' WHERE power_w > 150",
  "actions": [
    {"republish": {"topic": "city/${topic(2)}/alerts/${topic(4)}", "qos": 1,
                   "headers": {"contentType": "application/json",
                               "userProperties": [{"key": "lamp", "value": "${topic(4)}"}]}}},
    {"shadow": {"thingName": "${topic(4)}", "shadowName": "power"}},
    {"store": {"thingName": "${topic(4)}", "metrics": ["power_w"]}},
    {"metric": {"metricNamespace": "city", "metricName": "power_w", "metricValue": "${power_w}"}},
    {"alarm": {"alarmName": "${topic(4)}", "stateValue": "ALARM", "stateReason": "${power_w} W"}},
    {"webhook": {"url": "https://hooks.example.org/${topic(4)}",
                 "headers": [{"key": "authorization", "value": "Bearer t"}]}}
  ],
  "errorAction": {"republish": {"topic": "city/rule-errors"}}
}"#;

#[test]
fn rules_are_administered_with_json_requests() {
    let engine = RulesEngine::offline(RuleCatalog::in_memory(), ActionDeps::default());
    let document: Value = serde_json::from_str(LAMP_RULE).unwrap();

    let bad = call(
        &engine,
        json!({"op": "create", "name": "lamp", "document": {"sql": "SELECT * FRM 'a'"}}),
    );
    assert_eq!(bad["type"], "error");
    assert_eq!(bad["data"]["code"], "invalid");
    assert!(
        bad["data"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("invalid rule: sql: line 1, column")),
        "{bad}"
    );

    let created = call(
        &engine,
        json!({"op": "create", "name": "lamp", "document": document}),
    );
    assert_eq!(created["type"], "rule", "{created}");
    assert_eq!(created["data"]["topicFilter"], "city/+/things/+/telemetry");
    assert_eq!(
        created["data"]["actions"],
        json!([
            "republish",
            "shadow",
            "store",
            "cloudwatchMetric",
            "cloudwatchAlarm",
            "http"
        ])
    );
    assert_eq!(created["data"]["errorAction"], "republish");
    let again = call(
        &engine,
        json!({"op": "create", "name": "lamp", "document": document}),
    );
    assert_eq!(again["data"]["code"], "already_exists");

    let disabled = call(&engine, json!({"op": "disable", "name": "lamp"}));
    assert_eq!(disabled["data"]["enabled"], false);
    assert_eq!(disabled["data"]["document"]["ruleDisabled"], true);
    let listed = call(&engine, json!({"op": "list"}));
    assert_eq!(listed["type"], "rules");
    assert_eq!(listed["data"][0]["name"], "lamp");

    let deleted = call(&engine, json!({"op": "delete", "name": "lamp"}));
    assert_eq!(deleted, json!({"type": "deleted"}));
    let missing = call(&engine, json!({"op": "get", "name": "lamp"}));
    assert_eq!(missing["data"]["code"], "not_found");
}

#[test]
fn rule_test_shows_what_each_action_would_receive() {
    let engine = RulesEngine::offline(RuleCatalog::in_memory(), ActionDeps::default());
    let document: Value = serde_json::from_str(LAMP_RULE).unwrap();
    call(
        &engine,
        json!({"op": "create", "name": "lamp", "document": document}),
    );
    let report = call(
        &engine,
        json!({"op": "test", "name": "lamp",
               "topic": "city/centre/things/lamp-7/telemetry",
               "payload": "{\"power_w\": 180, \"lux\": 3}", "client_id": "lamp-7"}),
    );
    assert_eq!(report["type"], "test", "{report}");
    let r = &report["data"];
    assert_eq!(r["topicMatches"], true);
    assert_eq!(r["passed"], true);
    assert_eq!(r["output"], json!({"power_w": 180, "lamp": "lamp-7"}));
    let actions = r["actions"].as_array().unwrap();
    assert_eq!(
        actions[0]["invocation"],
        json!({"action": "republish", "topic": "city/centre/alerts/lamp-7", "qos": 1,
               "headers": {"contentType": "application/json",
                           "userProperties": [["lamp", "lamp-7"]]},
               "payload": "{\"lamp\":\"lamp-7\",\"power_w\":180}"})
    );
    assert_eq!(
        actions[1]["invocation"],
        json!({"action": "shadow", "thingName": "lamp-7", "shadowName": "power",
               "document": {"state": {"reported": {"power_w": 180, "lamp": "lamp-7"}}}})
    );
    assert_eq!(
        actions[2]["invocation"],
        json!({"action": "store", "thing": "lamp-7", "timestampMs": actions[2]["invocation"]["timestampMs"],
               "metrics": [["power_w", 180.0]]})
    );
    assert_eq!(
        actions[3]["invocation"],
        json!({"action": "metric", "namespace": "city", "name": "power_w", "value": 180.0})
    );
    assert_eq!(
        actions[4]["invocation"],
        json!({"action": "alarm", "name": "lamp-7", "state": "ALARM", "reason": "180 W"})
    );
    assert_eq!(
        actions[5]["invocation"],
        json!({"action": "http", "url": "https://hooks.example.org/lamp-7",
               "headers": [["authorization", "Bearer t"], ["content-type", "application/json"]],
               "body": "{\"lamp\":\"lamp-7\",\"power_w\":180}"})
    );
    assert!(r.get("errorAction").is_none(), "nothing fails: {r}");

    // Below the threshold nothing runs; a document not stored can be
    // tested too, and a failing action shows what the error action gets.
    let quiet = call(
        &engine,
        json!({"op": "test", "name": "lamp", "topic": "city/a/things/b/telemetry",
               "payload": "{\"power_w\": 10}"}),
    );
    assert_eq!(quiet["data"]["passed"], false);
    assert!(quiet["data"]["actions"].as_array().unwrap().is_empty());
    let looping = call(
        &engine,
        json!({"op": "test", "topic": "in/x", "payload": "{}",
               "document": {"sql": "SELECT * FROM 'in/#'",
                            "actions": [{"republish": {"topic": "in/y"}}],
                            "errorAction": {"republish": {"topic": "errors"}}}}),
    );
    let d = &looping["data"];
    assert_eq!(d["rule"], "test");
    assert!(
        d["actions"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("would trigger the rule again")),
        "{d}"
    );
    let error_doc: Value =
        serde_json::from_str(d["errorAction"]["invocation"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(error_doc["ruleName"], "test");
    assert_eq!(error_doc["clientId"], "n/a");
    assert_eq!(error_doc["failures"][0]["failedAction"], "RepublishAction");
}
