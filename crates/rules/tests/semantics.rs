//! Statement-level behaviour: SELECT shapes, Undefined propagation,
//! WHERE, nested SELECT, CASE, operator precedence and types, binary
//! payloads, topic matching and the errors a rule can raise.

mod common;

use civitas_rules::{EvalContext, EvalError, Output, Rule};
use common::{message, run, run_json, try_run, value};
use serde_json::json;

const SENML: &str = r#"{"e":[{"n":"temperature","u":"Cel","t":1234,"v":22.5},
  {"n":"light","u":"lm","t":1235,"v":135},{"n":"acidity","u":"pH","t":1235,"v":7}]}"#;

#[test]
fn select_shapes_follow_aws_examples() {
    let doc = r#"{"color":"red","temperature":50}"#;
    let cases = [
        (
            "SELECT * FROM 'city/#'",
            json!({"color":"red","temperature":50}),
        ),
        ("SELECT color FROM 'city/#'", json!({"color":"red"})),
        (
            "SELECT color AS my_color FROM 'city/#'",
            json!({"my_color":"red"}),
        ),
        (
            "SELECT color as my_color, temperature as fahrenheit FROM 'city/#'",
            json!({"my_color":"red","fahrenheit":50}),
        ),
        (
            "SELECT *, 15 as speed FROM 'city/#'",
            json!({"color":"red","temperature":50,"speed":15}),
        ),
        ("SELECT VALUE color FROM 'city/#'", json!("red")),
        (
            "SELECT (temperature - 32) * 5 / 9 AS celsius, upper(color) as my_color FROM 'city/#'",
            json!({"celsius":10,"my_color":"RED"}),
        ),
        ("SELECT NULL AS n FROM 'city/#'", json!({"n":null})),
        (
            "SELECT missing, color FROM 'city/#'",
            json!({"color":"red"}),
        ),
        ("SELECT missing FROM 'city/#'", json!({})),
        (
            "SELECT [color, temperature, missing] AS l FROM 'city/#'",
            json!({"l":["red",50]}),
        ),
        (
            "SELECT {'c': color, 'm': missing} AS o FROM 'city/#'",
            json!({"o":{"c":"red"}}),
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(run_json(sql, doc), Some(want), "{sql}");
    }
    assert_eq!(
        run_json(
            "SELECT color.red as red_value FROM 'a/#'"
                .replace("a/#", "city/#")
                .as_str(),
            r#"{"color":{"red":255,"green":0,"blue":0}}"#
        ),
        Some(json!({"red_value":255}))
    );
    assert_eq!(
        run_json(
            "SELECT VALUE arr FROM 'city/#'",
            r#"{"a":{"b":"c"},"arr":[1,2,3,4]}"#
        ),
        Some(json!([1, 2, 3, 4]))
    );
    assert_eq!(
        run_json(
            "SELECT {'latitude': get(lat_long, 0), 'longitude': get(lat_long, 1)} AS lat_long FROM 'city/#'",
            r#"{"lat_long":[47.606,-122.332]}"#
        ),
        Some(json!({"lat_long":{"latitude":47.606,"longitude":-122.332}}))
    );
}

#[test]
fn undefined_propagates_and_drops_keys() {
    let doc = r#"{"a":1,"s":"x","nul":null}"#;
    for expr in [
        "missing",
        "missing + 1",
        "1 + missing",
        "missing * 2",
        "-missing",
        "missing = 1",
        "missing <> 1",
        "missing < 1",
        "missing AND true",
        "false AND missing",
        "true OR missing",
        "NOT missing",
        "missing.deeper.still",
        "missing[0]",
        "a.b",
        "a[0]",
        "s + missing",
        "CASE missing WHEN 1 THEN 'x' ELSE 'y' END",
        "CASE WHEN a = 2 THEN 'x' END",
        "missing IN (1, 2)",
        "upper(missing)",
        "nul + 1",
        "true + 1",
        "'x' < 'y'",
        "[1] < [2]",
        "1 / 0",
        "1.5 / 0",
        "1 % 0",
        "s + nul",
    ] {
        assert_eq!(value(expr, doc), None, "{expr} should be Undefined");
    }
    // Undefined is not Null, and IS tests are never Undefined.
    assert_eq!(value("missing IS UNDEFINED", doc), Some(json!(true)));
    assert_eq!(value("missing IS NULL", doc), Some(json!(false)));
    assert_eq!(value("nul IS NULL", doc), Some(json!(true)));
    assert_eq!(value("nul IS NOT UNDEFINED", doc), Some(json!(true)));
    assert_eq!(value("a IS NOT NULL", doc), Some(json!(true)));
    assert_eq!(value("nul = NULL", doc), Some(json!(true)));
    assert_eq!(value("nul <> NULL", doc), Some(json!(false)));
    // WHERE with Undefined drops the message, as does NOT of Undefined.
    assert_eq!(run("SELECT a FROM 'city/#' WHERE missing > 3", doc), None);
    assert_eq!(
        run("SELECT a FROM 'city/#' WHERE NOT (missing > 3)", doc),
        None
    );
    assert_eq!(run("SELECT a FROM 'city/#' WHERE missing <> 3", doc), None);
    assert_eq!(
        run_json("SELECT a FROM 'city/#' WHERE missing IS UNDEFINED", doc),
        Some(json!({"a":1}))
    );
    // A lone Undefined VALUE is the empty payload.
    assert_eq!(
        run("SELECT VALUE missing FROM 'city/#'", doc),
        Some(Output::Raw(Vec::new()))
    );
}

#[test]
fn operators_follow_aws_type_tables() {
    let doc = r#"{"i":7,"d":2.5,"s":"6","w":10.0,"big":9223372036854775807}"#;
    let cases = [
        ("7 / 2", json!(3)),
        ("-7 / 2", json!(-3)),
        ("7 % 3", json!(1)),
        ("-7 % 3", json!(-1)),
        ("7.0 / 2", json!(3)),
        ("i / 2.0", json!(3)),
        ("w / 4", json!(2)),
        ("d * 2", json!(5)),
        ("0.1 + 0.2", json!(0.3)),
        ("0.3 - 0.1", json!(0.2)),
        ("1.1 * 1.1", json!(1.21)),
        ("0.3 / 0.1", json!(3)),
        ("s / 4", json!(1.5)),
        ("s - 1", json!(5)),
        ("s * d", json!(15)),
        ("s + 1", json!("61")),
        ("1 + s", json!("16")),
        ("'a' + true", json!("atrue")),
        ("'n' + [1]", json!("n[1]")),
        ("big + 1", json!(9_223_372_036_854_775_808.0)),
        ("-i", json!(-7)),
        ("-s", json!(-6)),
        ("1 = 1.0", json!(true)),
        ("i = '7'", json!(false)),
        ("i <> '7'", json!(true)),
        ("i > '6.5'", json!(true)),
        ("'10' > '9'", json!(true)),
        ("i != 7", json!(false)),
        ("[1, 2] = [1, 2]", json!(true)),
        ("[1, 2] = [2, 1]", json!(false)),
        ("{'a': 1, 'b': [2]} = {'b': [2.0], 'a': 1}", json!(true)),
        ("'true' AND true", json!(true)),
        ("'FALSE' OR false", json!(false)),
        ("NOT 'false'", json!(true)),
        ("i IN (1, 7, 9)", json!(true)),
        ("i NOT IN (1, 9)", json!(true)),
        ("i IN ('7')", json!(false)),
        ("i IN (missing, 7)", json!(true)),
    ];
    for (expr, want) in cases {
        assert_eq!(value(expr, doc), Some(want), "{expr}");
    }
    assert_eq!(value("1 AND true", doc), None);
    assert_eq!(value("true OR 1", doc), None);
    assert_eq!(value("NOT 1", doc), None);
}

#[test]
fn precedence_and_associativity() {
    let cases = [
        ("1 + 2 * 3", json!(7)),
        ("(1 + 2) * 3", json!(9)),
        ("10 - 4 - 3", json!(3)),
        ("10 - (4 - 3)", json!(9)),
        ("100 / 10 / 5", json!(2)),
        ("2 * 3 % 4", json!(2)),
        ("-2 * 3", json!(-6)),
        ("- (2 + 3)", json!(-5)),
        ("1 + 2 = 3", json!(true)),
        ("1 < 2 = true", json!(true)),
        ("true OR false AND false", json!(true)),
        ("(true OR false) AND false", json!(false)),
        ("NOT false AND false", json!(false)),
        ("NOT (false AND false)", json!(true)),
        ("NOT 1 = 2", json!(true)),
        ("1 + 1 IN (2, 3)", json!(true)),
        ("1 + 1 IS NOT NULL", json!(true)),
        ("false OR 1 + 1 = 2 AND NOT 3 < 2", json!(true)),
    ];
    for (expr, want) in cases {
        assert_eq!(value(expr, "{}"), Some(want), "{expr}");
    }
}

#[test]
fn case_expressions() {
    let doc = r#"{"color":"yellow","t":35}"#;
    let simple = "CASE color WHEN 'green' THEN 'go' WHEN 'yellow' THEN 'caution' WHEN 'red' THEN 'stop' ELSE 'you are not at a stop light' END";
    assert_eq!(value(simple, doc), Some(json!("caution")));
    assert_eq!(
        value(simple, r#"{"color":"blue"}"#),
        Some(json!("you are not at a stop light"))
    );
    assert_eq!(
        value(simple, "{}"),
        None,
        "an Undefined operand makes the CASE Undefined"
    );
    assert_eq!(value("CASE color WHEN 'blue' THEN 1 END", doc), None);
    assert_eq!(
        value("CASE t WHEN 35.0 THEN 'eq' END", doc),
        Some(json!("eq"))
    );
    assert_eq!(
        value("CASE t WHEN missing THEN 1 WHEN 35 THEN 2 END", doc),
        Some(json!(2))
    );
    let searched = "CASE WHEN t > 40 THEN 'hot' WHEN t > 30 THEN 'warm' ELSE 'cold' END";
    assert_eq!(value(searched, doc), Some(json!("warm")));
    assert_eq!(value(searched, r#"{"t":10}"#), Some(json!("cold")));
    assert_eq!(
        value(searched, "{}"),
        Some(json!("cold")),
        "Undefined conditions are not true"
    );
    assert_eq!(value("CASE WHEN 'TRUE' THEN 1 END", doc), Some(json!(1)));
    assert_eq!(value("CASE WHEN 1 THEN 1 ELSE 2 END", doc), Some(json!(2)));
}

#[test]
fn nested_selects_follow_aws_examples() {
    assert_eq!(
        run_json(
            "SELECT (SELECT VALUE n FROM e) as sensors FROM 'city/#'",
            SENML
        ),
        Some(json!({"sensors":["temperature","light","acidity"]}))
    );
    assert_eq!(
        run_json(
            "SELECT (SELECT v FROM e WHERE n = 'temperature') as temperature FROM 'city/#'",
            SENML
        ),
        Some(json!({"temperature":[{"v":22.5}]}))
    );
    assert_eq!(
        run_json(
            "SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v as temperature FROM 'city/#'",
            SENML
        ),
        Some(json!({"temperature":22.5}))
    );
    assert_eq!(
        run_json(
            "SELECT (SELECT * FROM e WHERE v > 100) AS big FROM 'city/#'",
            SENML
        ),
        Some(json!({"big":[{"n":"light","u":"lm","t":1235,"v":135}]}))
    );
    assert_eq!(
        run_json(
            "SELECT (SELECT *, topic(2) AS city FROM e WHERE t = 1234) AS x FROM 'city/#'",
            SENML
        ),
        Some(json!({"x":[{"n":"temperature","u":"Cel","t":1234,"v":22.5,"city":"oslo"}]}))
    );
    assert_eq!(
        run_json(
            "SELECT (SELECT n, missing FROM e WHERE v < 10) AS x FROM 'city/#'",
            SENML
        ),
        Some(json!({"x":[{"n":"acidity"}]}))
    );
    // VALUE of elements without the key leaves them out.
    assert_eq!(
        run_json(
            "SELECT (SELECT VALUE u FROM e) AS u FROM 'city/#'",
            r#"{"e":[{"u":1},{},{"u":3}]}"#
        ),
        Some(json!({"u":[1,3]}))
    );
    // Nested selects nest, and WHERE may use them.
    assert_eq!(
        run_json(
            "SELECT (SELECT VALUE (SELECT VALUE x * 2 FROM xs) FROM rows) AS m FROM 'city/#'",
            r#"{"rows":[{"xs":[{"x":1},{"x":2}]},{"xs":[{"x":3}]}]}"#,
        ),
        Some(json!({"m":[[2,4],[6]]}))
    );
    assert_eq!(
        run_json(
            "SELECT VALUE 1 FROM 'city/#' WHERE get((SELECT VALUE v FROM e WHERE n = 'light'), 0) > 100",
            SENML
        ),
        Some(json!(1))
    );
    assert_eq!(
        run_json(
            "SELECT (SELECT VALUE n FROM nope) AS x FROM 'city/#'",
            SENML
        ),
        Some(json!({}))
    );
    assert_eq!(
        run_json(
            "SELECT (SELECT VALUE n FROM e[0]) AS x FROM 'city/#'",
            SENML
        ),
        Some(json!({}))
    );
    assert_eq!(
        run_json(
            "SELECT (SELECT VALUE v FROM e WHERE n = 'none') AS x FROM 'city/#'",
            SENML
        ),
        Some(json!({"x":[]}))
    );
}

#[test]
fn binary_payloads_behave_as_aws_documents() {
    let bytes: &[u8] = &[0x00, 0xff, 0x10, b'x'];
    let payload = String::from_utf8_lossy(bytes); // only for the JSON cases below
    let rule = Rule::parse("SELECT * FROM 'city/#'").unwrap();
    let ctx = EvalContext::default();
    assert_eq!(
        rule.evaluate(&message(bytes), &ctx).unwrap(),
        Some(Output::Raw(bytes.to_vec()))
    );
    let rule =
        Rule::parse("SELECT encode(*, 'base64') AS data, timestamp() AS ts FROM 'city/#'").unwrap();
    assert_eq!(
        rule.evaluate(&message(bytes), &ctx).unwrap(),
        Some(Output::Json(
            json!({"data":"AP8QeA==","ts":1_481_825_251_155_i64})
        ))
    );
    // Field references on a binary payload are Undefined: WHERE is false.
    let rule = Rule::parse("SELECT * FROM 'city/#' WHERE device_type = 'thermostat'").unwrap();
    assert_eq!(rule.evaluate(&message(bytes), &ctx).unwrap(), None);
    let rule = Rule::parse("SELECT * FROM 'city/#' WHERE timestamp() % 5 = 0").unwrap();
    assert_eq!(
        rule.evaluate(&message(bytes), &ctx).unwrap(),
        Some(Output::Raw(bytes.to_vec()))
    );
    // A JSON scalar is not an object payload either; decode() reads it.
    assert_eq!(
        run("SELECT * FROM 'city/#'", "80"),
        Some(Output::Raw(b"80".to_vec()))
    );
    assert_eq!(
        run_json(
            "SELECT decode(encode(*, 'base64'), 'base64') AS value FROM 'city/#' WHERE decode(encode(*, 'base64'), 'base64') > 50",
            "80"
        ),
        Some(json!({"value":80}))
    );
    // Adding keys needs an object (or empty) payload.
    assert!(matches!(
        try_run("SELECT *, principal() AS p FROM 'city/#'", &payload),
        Err(EvalError::PayloadNotObject)
    ));
    assert_eq!(
        run_json("SELECT *, principal() AS p FROM 'city/#'", ""),
        Some(json!({"p":"ab12cd"}))
    );
    assert_eq!(
        run("SELECT * FROM 'city/#'", ""),
        Some(Output::Raw(Vec::new()))
    );
}

#[test]
fn output_bytes() {
    let out = run("SELECT a FROM 'city/#'", r#"{"a":[1,"x"]}"#).unwrap();
    assert_eq!(out.to_bytes(), br#"{"a":[1,"x"]}"#);
    assert_eq!(out.as_json(), Some(&json!({"a":[1,"x"]})));
}

#[test]
fn failures_that_stop_a_rule() {
    let rule = Rule::parse("SELECT newuuid() AS id FROM 'city/#'").unwrap();
    let err = rule
        .evaluate(&message(b"{}"), &EvalContext::default())
        .unwrap_err();
    assert!(matches!(err, EvalError::MissingSource("newuuid")), "{err}");
    let rule = Rule::parse("SELECT get_thing_shadow('lamp') AS s FROM 'city/#'").unwrap();
    let err = rule
        .evaluate(&message(b"{}"), &EvalContext::default())
        .unwrap_err();
    assert!(matches!(err, EvalError::MissingSource("get_thing_shadow")));
    let err = try_run(
        "SELECT * FROM 'city/#' WHERE get_thing_shadow('broken').x = 1",
        "{}",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "get_thing_shadow('broken') failed: store unavailable"
    );
    // traceid() without a source is Undefined, as for non-MQTT messages.
    let rule = Rule::parse("SELECT traceid() AS t, clientid() AS c FROM 'city/#'").unwrap();
    let mut msg = message(b"{}");
    msg.client_id = None;
    assert_eq!(
        rule.evaluate(&msg, &EvalContext::default()).unwrap(),
        Some(Output::Json(json!({"c":"n/a"})))
    );
}

#[test]
fn topics_and_filters() {
    let rule = Rule::parse("SELECT * FROM 'city/+/things/+/telemetry'").unwrap();
    assert_eq!(rule.from_filter(), "city/+/things/+/telemetry");
    assert!(rule.matches_topic("city/oslo/things/t1/telemetry"));
    assert!(!rule.matches_topic("city/oslo/things/t1/telemetry/x"));
    assert!(!rule.matches_topic("city/oslo/things/telemetry"));
    let all = Rule::parse("SELECT * FROM '#'").unwrap();
    assert!(all.matches_topic("a/b"));
    assert!(
        !all.matches_topic("$aws/things/x/shadow/update"),
        "wildcards skip $ topics"
    );
    let sub = Rule::parse("SELECT * FROM 'a/#'").unwrap();
    assert!(sub.matches_topic("a"));
    assert!(sub.matches_topic("a/b/c"));
    // Basic Ingest: topic() does not see the $aws/rules/{rule}/ prefix.
    let rule = Rule::parse("SELECT topic() AS t, topic(3) AS f FROM 'x'").unwrap();
    let mut msg = message(b"{}");
    msg.topic = "$aws/rules/BuildingManager/Buildings/Building5/Floor2/Room201/Lights";
    assert_eq!(
        rule.evaluate(&msg, &EvalContext::default()).unwrap(),
        Some(Output::Json(
            json!({"t":"Buildings/Building5/Floor2/Room201/Lights","f":"Floor2"})
        ))
    );
}

#[test]
fn normalised_text() {
    let cases = [
        (
            "select a as b, * from \"t/#\" where x=1 and not y<>2",
            "SELECT a AS b, * FROM 't/#' WHERE x = 1 AND NOT y <> 2",
        ),
        (
            "SELECT VALUE (1+2)*3 - -4 FROM 'a'",
            "SELECT VALUE (1 + 2) * 3 - -4 FROM 'a'",
        ),
        (
            "SELECT isnull(a) AS n, ISUNDEFINED(b) AS u, Cast(c as integer) AS c FROM 'a' WHERE d != 'it''s'",
            "SELECT isNull(a) AS n, isUndefined(b) AS u, cast(c AS Int) AS c FROM 'a' WHERE d <> 'it''s'",
        ),
        (
            "SELECT (select value n from e where v>1) AS s, get(x,'k-1')[0].y AS g FROM 'a'",
            "SELECT (SELECT VALUE n FROM e WHERE v > 1) AS s, get(x, 'k-1')[0].y AS g FROM 'a'",
        ),
        (
            "SELECT case when a then 1.50 else {'k':[1,null]} end AS c FROM 'a' WHERE a is not undefined",
            "SELECT CASE WHEN a THEN 1.5 ELSE {'k': [1, NULL]} END AS c FROM 'a' WHERE a IS NOT UNDEFINED",
        ),
        (
            "SELECT a FROM 'a' WHERE (a OR b) AND (c = (d = e)) AND - - f > 1",
            "SELECT a FROM 'a' WHERE (a OR b) AND c = (d = e) AND - -f > 1",
        ),
    ];
    for (sql, want) in cases {
        let rule = Rule::parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(rule.to_sql(), want);
        let again = Rule::parse(&rule.to_sql()).unwrap();
        assert_eq!(again.to_sql(), want);
    }
}

#[test]
fn keywords_as_field_names() {
    assert_eq!(
        run_json("SELECT value FROM 'city/#'", r#"{"value":1}"#),
        Some(json!({"value":1}))
    );
    assert_eq!(
        run_json(
            "SELECT value, undefined FROM 'city/#'",
            r#"{"value":1,"undefined":2}"#
        ),
        Some(json!({"value":1,"undefined":2}))
    );
    assert_eq!(
        value("get(o, 'select')", r#"{"o":{"select":3}}"#),
        Some(json!(3))
    );
    assert_eq!(value("o.value", r#"{"o":{"value":4}}"#), Some(json!(4)));
}

#[test]
fn rules_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Rule>();
    assert_send_sync::<Output>();
}

#[test]
fn statements_sharing_one_document_see_the_payload_as_each_would_alone() {
    use civitas_rules::Document;
    let payload = br#"{"color":"red","temperature":50}"#;
    let msg = message(payload);
    let ctx = EvalContext::default();
    let star = Rule::parse("SELECT * FROM 'city/#'").unwrap();
    let star_plus = Rule::parse("SELECT *, topic(2) AS level FROM 'city/#'").unwrap();
    let field = Rule::parse("SELECT VALUE temperature FROM 'city/#'").unwrap();
    let topic_only = Rule::parse("SELECT VALUE topic(1) FROM 'city/#'").unwrap();
    let rules = [&topic_only, &field, &star, &field, &star_plus, &field];
    let mut doc = Document::new(payload);
    for rule in rules {
        // `SELECT *` takes the parsed object; what reads after it still
        // sees the payload.
        assert_eq!(
            rule.evaluate_in(&msg, &mut doc, &ctx).unwrap(),
            rule.evaluate(&msg, &ctx).unwrap(),
            "{}",
            rule.to_sql()
        );
    }
    // A binary payload is binary to every statement sharing it.
    let binary = message(&[0xff, 0x00]);
    let mut doc = Document::new(&[0xff, 0x00]);
    assert_eq!(
        field.evaluate_in(&binary, &mut doc, &ctx).unwrap(),
        Some(Output::Raw(Vec::new()))
    );
    assert_eq!(
        star.evaluate_in(&binary, &mut doc, &ctx).unwrap(),
        Some(Output::Raw(vec![0xff, 0x00]))
    );
}
