//! Each built-in function on ordinary and edge-case arguments, table
//! driven: an expression, evaluated with `SELECT VALUE` against one
//! payload, and the JSON it should give (None for Undefined).

mod common;

use common::value;
use serde_json::{Value as Json, json};

const DOC: &str = r#"{"s":"Hello","n":-5,"d":2.5,"nd":-2.5,"t":true,"nul":null,
  "arr":[1,2,3],"obj":{"a":1},"ns":"-1.5","big":9223372036854775807,"w":10.0,
  "uni":"héllo wörld","e":[{"n":"temperature","v":22.5},{"n":"light","v":135}]}"#;

fn check(cases: &[(&str, Option<Json>)]) {
    let mut failures = Vec::new();
    for (expr, want) in cases {
        let got = value(expr, DOC);
        if &got != want {
            failures.push(format!("{expr}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn context_functions() {
    check(&[
        (
            "topic()",
            Some(json!("city/oslo/things/sensor-1/telemetry")),
        ),
        ("topic(1)", Some(json!("city"))),
        ("topic(4)", Some(json!("sensor-1"))),
        ("topic(5)", Some(json!("telemetry"))),
        ("topic(6)", None),
        ("topic(2.9)", Some(json!("oslo"))),
        ("topic('2')", Some(json!("oslo"))),
        ("topic(n)", None),
        ("topic(nul)", None),
        ("clientid()", Some(json!("sensor-1"))),
        ("principal()", Some(json!("ab12cd"))),
        ("timestamp()", Some(json!(1_481_825_251_155_i64))),
        (
            "newuuid()",
            Some(json!("123e4567-e89b-12d3-a456-426614174000")),
        ),
        ("traceid()", Some(json!("trace-1"))),
        (
            "get_thing_shadow('lamp').state.reported.alarm",
            Some(json!("ON")),
        ),
        (
            "get_thing_shadow('lamp', 'arn:aws:iam::1:role/r').state.reported.alarm",
            Some(json!("ON")),
        ),
        (
            "get_thing_shadow('lamp', 'cfg', 'arn:aws:iam::1:role/r').state.desired.mode",
            Some(json!(2)),
        ),
        ("get_thing_shadow('nobody')", None),
        ("get_thing_shadow(n)", None),
    ]);
}

#[test]
fn string_functions() {
    check(&[
        ("concat()", None),
        ("concat(1)", Some(json!("1"))),
        ("concat(arr)", Some(json!([1, 2, 3]))),
        ("concat([1, 2, 3], 4)", Some(json!([1, 2, 3, 4]))),
        (
            "concat([1, 2, 3], 'hello')",
            Some(json!([1, 2, 3, "hello"])),
        ),
        ("concat('con', 'cat')", Some(json!("concat"))),
        ("concat(1, 'hello')", Some(json!("1hello"))),
        ("concat('he', 'is', 'man')", Some(json!("heisman"))),
        (
            "concat([1, 2, 3], 'hello', [4, 5, 6])",
            Some(json!([1, 2, 3, "hello", 4, 5, 6])),
        ),
        ("concat(s, d, t)", Some(json!("Hello2.5true"))),
        ("concat(s, missing)", None),
        ("concat(s, nul)", None),
        ("concat(obj, '!')", Some(json!("{\"a\":1}!"))),
        ("lower('HELLO')", Some(json!("hello"))),
        ("lower(['HELLO'])", Some(json!("[\"hello\"]"))),
        ("upper(['hello'])", Some(json!("[\"HELLO\"]"))),
        ("upper(uni)", Some(json!("HÉLLO WÖRLD"))),
        ("upper(nul)", None),
        ("lower(missing)", None),
        ("upper(d)", Some(json!("2.5"))),
        ("substring('012345', 0)", Some(json!("012345"))),
        ("substring('012345', 2)", Some(json!("2345"))),
        ("substring('012345', 2.745)", Some(json!("2345"))),
        ("substring(123, 2)", Some(json!("3"))),
        ("substring('012345', -1)", Some(json!("012345"))),
        ("substring(true, 1.2)", Some(json!("rue"))),
        ("substring(false, -2.411E247)", Some(json!("false"))),
        ("substring('012345', 1, 3)", Some(json!("12"))),
        ("substring('012345', -50, 50)", Some(json!("012345"))),
        ("substring('012345', 3, 1)", Some(json!(""))),
        ("substring('012345', '1', '2')", Some(json!("1"))),
        ("substring(uni, 1, 4)", Some(json!("éll"))),
        ("substring(s, t)", None),
        ("substring(nul, 1)", None),
        ("startswith('ranger', 'ran')", Some(json!(true))),
        ("startswith('ranger', 'ger')", Some(json!(false))),
        ("startswith(123, 1)", Some(json!(true))),
        ("startswith(s, nul)", None),
        ("endswith('cat', 'at')", Some(json!(true))),
        ("endswith(d, 5)", Some(json!(true))),
        ("endswith(missing, 'x')", None),
        ("regexp_matches('aaaa', 'a{2,}')", Some(json!(true))),
        ("regexp_matches('aaaa', 'b')", Some(json!(false))),
        ("regexp_matches(s, '^H.*o$')", Some(json!(true))),
        ("regexp_matches(n, '^-\\d$')", Some(json!(true))),
        ("regexp_matches(nul, 'a')", None),
        ("regexp_matches(s, ns)", Some(json!(false))),
        ("regexp_matches(s, concat('(', ''))", None),
        ("regexp_replace('abcd', 'bc', 'x')", Some(json!("axd"))),
        ("regexp_replace('abcd', 'b(.*)d', '$1')", Some(json!("ac"))),
        (
            "regexp_replace('a1b22', '[0-9]+', '#')",
            Some(json!("a#b#")),
        ),
        ("regexp_replace('abc', '(b)', '\\$1')", Some(json!("a$1c"))),
        (
            "regexp_replace('abc', '(b)', '$1$1x')",
            Some(json!("abbxc")),
        ),
        (
            "regexp_replace('abc', concat('(', 'b)'), concat('[$', '1]'))",
            Some(json!("a[b]c")),
        ),
        ("regexp_replace('abc', 'b', concat('$', '9'))", None),
        ("regexp_replace(missing, 'b', 'x')", None),
    ]);
}

#[test]
fn math_functions() {
    check(&[
        ("abs(-5)", Some(json!(5))),
        ("abs(n)", Some(json!(5))),
        ("abs(nd)", Some(json!(2.5))),
        ("abs('-5.123')", Some(json!(5.123))),
        ("abs('x')", None),
        ("abs(t)", None),
        ("abs(nul)", None),
        ("abs(arr)", None),
        ("round(1.2)", Some(json!(1))),
        ("round(1.5)", Some(json!(2))),
        ("round(1.7)", Some(json!(2))),
        ("round(-1.1)", Some(json!(-1))),
        ("round(-1.5)", Some(json!(-2))),
        ("round(n)", Some(json!(-5))),
        ("round(ns)", Some(json!(-2))),
        ("round(s)", None),
        ("floor(1.2)", Some(json!(1))),
        ("floor(-1.2)", Some(json!(-2))),
        ("floor('7')", Some(json!(7))),
        ("ceil(1.2)", Some(json!(2))),
        ("ceil(-1.2)", Some(json!(-1))),
        ("ceil(t)", None),
        ("power(2, 5)", Some(json!(32))),
        ("power(2, -1)", Some(json!(0.5))),
        ("power('9', 0.5)", Some(json!(3))),
        ("power(s, 2)", None),
        ("power(-8, 0.5)", None),
        ("sqrt(9)", Some(json!(3))),
        ("sqrt(2)", Some(json!(std::f64::consts::SQRT_2))),
        ("sqrt(-1)", None),
        ("sqrt('16')", Some(json!(4))),
        ("sqrt(obj)", None),
        ("mod(8, 3)", Some(json!(2))),
        ("mod(-8, 3)", Some(json!(-2))),
        ("mod(8.5, 3)", Some(json!(2.5))),
        ("mod('8', '3')", Some(json!(2))),
        ("mod(8, 0)", None),
        ("mod(8, missing)", None),
        ("mod(t, 2)", None),
    ]);
}

#[test]
fn cast_and_type_tests() {
    check(&[
        ("cast(true AS Int)", Some(json!(1))),
        ("cast(false AS Integer)", Some(json!(0))),
        ("cast(2.7 AS Int)", Some(json!(2))),
        ("cast(-2.7 AS Int)", Some(json!(-2))),
        ("cast('12.9' AS Int)", Some(json!(12))),
        ("cast('5E2' AS Int)", Some(json!(500))),
        ("cast('abc' AS Int)", None),
        ("cast(arr AS Int)", None),
        ("cast(nul AS Int)", None),
        ("cast(3 AS Decimal)", Some(json!(3))),
        ("cast('-1.25' AS Decimal)", Some(json!(-1.25))),
        ("cast(true AS Double)", Some(json!(1))),
        ("cast(obj AS Decimal)", None),
        ("cast(0 AS Bool)", Some(json!(false))),
        ("cast(-3 AS Boolean)", Some(json!(true))),
        ("cast(0.5 AS Bool)", Some(json!(true))),
        ("cast('TRUE' AS Bool)", Some(json!(true))),
        ("cast('False' AS Bool)", Some(json!(false))),
        ("cast('yes' AS Bool)", None),
        ("cast(nul AS Bool)", None),
        ("cast(42 AS String)", Some(json!("42"))),
        ("cast(d AS varchar)", Some(json!("2.5"))),
        ("cast(0.0000001 AS String)", Some(json!("1e-7"))),
        ("cast(t AS Text)", Some(json!("true"))),
        ("cast(arr AS String)", Some(json!("[1,2,3]"))),
        ("cast(obj AS nvarchar)", Some(json!("{\"a\":1}"))),
        ("cast(nul AS String)", None),
        ("cast(missing AS String)", None),
        ("isNull(5)", Some(json!(false))),
        ("isNull(nul)", Some(json!(true))),
        ("isNull(NULL)", Some(json!(true))),
        ("isNull(missing)", Some(json!(false))),
        ("isUndefined(5)", Some(json!(false))),
        ("isUndefined(floor(arr))", Some(json!(true))),
        ("isUndefined(missing)", Some(json!(true))),
        ("isUndefined(nul)", Some(json!(false))),
        ("ISNULL(nul)", Some(json!(true))),
        ("get(arr, 1)", Some(json!(2))),
        ("get(arr, '2')", Some(json!(3))),
        ("get(arr, 3)", None),
        ("get(arr, -1)", None),
        ("get(obj, 'a')", Some(json!(1))),
        ("get(obj, 1)", None),
        ("get('abc', 1)", Some(json!("b"))),
        ("get(['a', 'b', 'c'], 1)", Some(json!("b"))),
        ("get({'a': 'b'}, 'a')", Some(json!("b"))),
        ("get(n, 0)", None),
        ("arr[0]", Some(json!(1))),
        ("e[1].v", Some(json!(135))),
        ("e[5].v", None),
    ]);
}

#[test]
fn encoding_and_hashing() {
    check(&[
        ("encode('hello', 'base64')", Some(json!("aGVsbG8="))),
        ("encode(n, 'BASE64')", Some(json!("LTU="))),
        ("encode(missing, 'base64')", None),
        ("decode('aGVsbG8=', 'base64')", Some(json!("hello"))),
        (
            "decode('eyAidGVtcGVyYXR1cmUiOiAzMyB9Cg==', 'base64').temperature",
            Some(json!(33)),
        ),
        ("decode('ODA=', 'base64')", Some(json!(80))),
        ("decode('***', 'base64')", Some(Json::Null)),
        ("decode(nul, 'base64')", None),
        (
            "md5('hello')",
            Some(json!("5d41402abc4b2a76b9719d911017c592")),
        ),
        (
            "sha1('hello')",
            Some(json!("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")),
        ),
        (
            "sha224('hello')",
            Some(json!(
                "ea09ae9cc6768c50fcee903ed054556e5bfc8347907f12598aa24193"
            )),
        ),
        (
            "sha256('hello')",
            Some(json!(
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
            )),
        ),
        (
            "sha384('')",
            Some(json!(
                "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"
            )),
        ),
        (
            "sha512('')",
            Some(json!(
                "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
            )),
        ),
        ("md5(123)", Some(json!("202cb962ac59075b964b07152d234b70"))),
        ("sha256(nul)", None),
        ("md5(missing)", None),
    ]);
}

#[test]
fn parse_time_formats_epoch_milliseconds() {
    check(&[
        (
            "parse_time('yyyy.MM.dd G ''at'' HH:mm:ss z', 100000000)",
            Some(json!("1970.01.02 AD at 03:46:40 UTC")),
        ),
        (
            "parse_time(\"yyyy.MM.dd G 'at' HH:mm:ss z\", 100000000, '-06:00')",
            Some(json!("1970.01.01 AD at 21:46:40 -06:00")),
        ),
        (
            "parse_time('yyyy', timestamp(), 'UTC')",
            Some(json!("2016")),
        ),
        (
            "parse_time('yyyy-MM-dd''T''HH:mm:ss.SSSZZ', timestamp())",
            Some(json!("2016-12-15T18:07:31.155+00:00")),
        ),
        (
            "parse_time('EEE, d MMM yy h:mm a Z', timestamp(), '+0530')",
            Some(json!("Thu, 15 Dec 16 11:37 PM +0530")),
        ),
        (
            "parse_time('EEEE MMMM D e k K S SSSSS zzzz', timestamp())",
            Some(json!(
                "Thursday December 350 4 18 6 1 15500 Coordinated Universal Time"
            )),
        ),
        ("parse_time('HH:mm', 0, 'GMT+02')", Some(json!("02:00"))),
        (
            "parse_time('HH:mm ZZZ', 0, 'Etc/UTC')",
            Some(json!("00:00 UTC")),
        ),
        ("parse_time('HH:mm', '3600000')", Some(json!("01:00"))),
        (
            "parse_time('yyyy-MM-dd', -86400000)",
            Some(json!("1969-12-31")),
        ),
        ("parse_time('HH', 0, concat('Mars', '/Olympus'))", None),
        ("parse_time(concat('Q', 'Q'), 0)", None),
        ("parse_time(concat('yyyy', ''), 0)", Some(json!("1970"))),
        ("parse_time('yyyy', s)", None),
        ("parse_time('yyyy', 1e20)", None),
    ]);
}
