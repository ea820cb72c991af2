//! Statements outside the supported subset are refused with the line and
//! column of the offending text and a message saying what was wrong.

use civitas_rules::Rule;

#[test]
fn refused_statements_point_at_the_problem() {
    // (sql, line, column, message)
    let cases: &[(&str, u32, u32, &str)] = &[
        ("SELECT a, b c FROM 't'", 1, 13, "expected FROM"),
        ("SELECT temperature x FROM 't'", 1, 20, "expected FROM"),
        ("", 1, 1, "expected SELECT"),
        ("UPDATE t SET a = 1", 1, 1, "expected SELECT"),
        (
            "SELECT * FROM t",
            1,
            15,
            "expected a quoted topic filter such as 'a/+/b'",
        ),
        (
            "SELECT * FROM 'a/#/b'",
            1,
            15,
            "invalid topic filter: '#' must be alone in the last level of a topic filter",
        ),
        (
            "SELECT * FROM 'a/b+'",
            1,
            15,
            "invalid topic filter: '+' must be alone in its level of a topic filter",
        ),
        (
            "SELECT * FROM ''",
            1,
            15,
            "invalid topic filter: topic is empty",
        ),
        (
            "SELECT * FROM '$share/g/a'",
            1,
            15,
            "a rule cannot read from a shared subscription",
        ),
        (
            "SELECT * FROM 'a' WHERE",
            1,
            24,
            "expected an expression, found end of statement",
        ),
        (
            "SELECT * FROM 'a' WHERE x = 1 LIMIT 5",
            1,
            31,
            "unexpected 'LIMIT' after the end of the statement",
        ),
        (
            "SELECT * FROM 'a'\nWHERE x = 'open",
            2,
            11,
            "unterminated string literal",
        ),
        (
            "SELECT a\n  FROM 'x'\n  WHERE a # 2",
            3,
            11,
            "unexpected character '#'",
        ),
        (
            "SELECT 1. AS x FROM 'a'",
            1,
            10,
            "expected digits after '.' in a number",
        ),
        (
            "SELECT 1e AS x FROM 'a'",
            1,
            10,
            "expected digits in the exponent of a number",
        ),
        (
            "SELECT nosuch(a) AS x FROM 'a'",
            1,
            8,
            "unsupported function nosuch()",
        ),
        (
            "SELECT aws_lambda('arn', *) AS x FROM 'a'",
            1,
            8,
            "unsupported function aws_lambda()",
        ),
        (
            "SELECT upper(a, b) AS x FROM 'a'",
            1,
            8,
            "upper() takes 1 argument, found 2",
        ),
        (
            "SELECT substring(a) AS x FROM 'a'",
            1,
            8,
            "substring() takes 2 to 3 arguments, found 1",
        ),
        (
            "SELECT timestamp(1) AS x FROM 'a'",
            1,
            8,
            "timestamp() takes 0 arguments, found 1",
        ),
        (
            "SELECT topic(0) AS x FROM 'a'",
            1,
            14,
            "topic levels are numbered from 1",
        ),
        (
            "SELECT upper(*) AS x FROM 'a'",
            1,
            14,
            "'*' as an argument is only supported in encode(*, 'base64')",
        ),
        (
            "SELECT encode(*, 'hex') AS x FROM 'a'",
            1,
            18,
            "the only supported encoding is the literal 'base64'",
        ),
        (
            "SELECT VALUE * FROM 'a'",
            1,
            14,
            "'*' stands for the whole payload only as a SELECT item or as encode(*, …)",
        ),
        (
            "SELECT a + * FROM 'a'",
            1,
            12,
            "'*' stands for the whole payload only as a SELECT item or as encode(*, …)",
        ),
        (
            "SELECT upper(a) FROM 'a'",
            1,
            8,
            "name this expression with AS (only fields are named after themselves)",
        ),
        ("SELECT a AS FROM 'a'", 1, 13, "expected a name after AS"),
        (
            "SELECT a AS b.c FROM 'a'",
            1,
            14,
            "a dotted alias (nested output key) is not supported; use an object literal",
        ),
        (
            "SELECT cast(a AS Float) AS x FROM 'a'",
            1,
            18,
            "unknown cast type 'Float' (supported: Int, Decimal, Bool, String and their synonyms)",
        ),
        (
            "SELECT CASE WHEN a THEN 1 AS x FROM 'a'",
            1,
            27,
            "expected WHEN, ELSE or END",
        ),
        ("SELECT CASE a END AS x FROM 'a'", 1, 15, "expected WHEN"),
        (
            "SELECT a FROM 'a' WHERE a IS 5",
            1,
            30,
            "expected NULL or UNDEFINED after IS",
        ),
        (
            "SELECT a FROM 'a' WHERE a IN ()",
            1,
            31,
            "IN needs at least one value",
        ),
        (
            "SELECT a FROM 'a' WHERE a IN 1",
            1,
            30,
            "expected '(' after IN",
        ),
        (
            "SELECT (SELECT v FROM 'x') AS y FROM 'a'",
            1,
            23,
            "a nested SELECT reads FROM a JSON path of the message, not a topic",
        ),
        (
            "SELECT (SELECT v FROM e AS y FROM 'a'",
            1,
            25,
            "expected ')' closing the nested SELECT",
        ),
        (
            "SELECT regexp_matches(a, '(') AS m FROM 'a'",
            1,
            26,
            "unsupported regular expression",
        ),
        (
            "SELECT regexp_matches(a, '(?<=x)y') AS m FROM 'a'",
            1,
            26,
            "unsupported regular expression",
        ),
        (
            "SELECT regexp_replace(a, '(b)', '$2') AS m FROM 'a'",
            1,
            33,
            "invalid replacement",
        ),
        (
            "SELECT parse_time('yyyy-QQ', 0) AS t FROM 'a'",
            1,
            19,
            "unsupported letter 'Q' in the time pattern",
        ),
        (
            "SELECT parse_time('yyyy', 0, 'America/Belize') AS t FROM 'a'",
            1,
            30,
            "unsupported time zone 'America/Belize'",
        ),
        (
            "SELECT a FROM 'a' WHERE a = ",
            1,
            29,
            "expected an expression, found end of statement",
        ),
        ("SELECT a FROM 'a' WHERE (a = 1", 1, 31, "expected ')'"),
        (
            "SELECT {'k' 1} AS o FROM 'a'",
            1,
            13,
            "expected ':' after the key",
        ),
        (
            "SELECT {k: 1} AS o FROM 'a'",
            1,
            9,
            "expected a quoted key in the object literal",
        ),
        (
            "SELECT a. FROM 'a'",
            1,
            11,
            "expected a field name after '.'",
        ),
        ("SELECT a[1 FROM 'a'", 1, 12, "expected ']'"),
        (
            "SELECT a FROM 'a' WHERE b = SELECT",
            1,
            29,
            "expected an expression, found keyword SELECT",
        ),
        (
            "SELECT a FROM 'a' WHERE é = 1",
            1,
            25,
            "unexpected character 'é'",
        ),
        ("SELECT é, a b FROM 'a'", 1, 8, "unexpected character 'é'"),
    ];
    for (sql, line, column, message) in cases {
        let err = match Rule::parse(sql) {
            Ok(rule) => panic!("{sql:?} was accepted as {}", rule.to_sql()),
            Err(e) => e,
        };
        assert_eq!(
            (err.position.line, err.position.column),
            (*line, *column),
            "{sql:?}: {err}"
        );
        assert!(err.message.starts_with(message), "{sql:?}: {err}");
    }
}

#[test]
fn display_reads_line_column_message() {
    let err = Rule::parse("SELECT a + b c FROM 't'").unwrap_err();
    assert_eq!(err.to_string(), "line 1, column 14: expected FROM");
    let err = Rule::parse("SELECT a\nFROM 't'\nWHERE a = 'x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 3, column 11: unterminated string literal"
    );
}

#[test]
fn nesting_depth_is_bounded() {
    let deep = format!(
        "SELECT VALUE {}1{} FROM 'a'",
        "(".repeat(500),
        ")".repeat(500)
    );
    let err = Rule::parse(&deep).unwrap_err();
    assert!(err.message.contains("nested too deeply"), "{err}");
    let ok = format!(
        "SELECT VALUE {}1{} FROM 'a'",
        "(".repeat(20),
        ")".repeat(20)
    );
    assert!(Rule::parse(&ok).is_ok());
}

#[test]
fn supported_statements_parse() {
    for sql in [
        "SELECT * FROM 'a/+/b/#'",
        "select *, 15 as speed from '#'",
        "SELECT VALUE arr FROM 'topic'",
        "SELECT value FROM 'a'",
        "SELECT value, other FROM 'a'",
        "SELECT (SELECT VALUE n FROM e) AS sensors FROM 'my/topic'",
        "SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v AS temperature FROM 'topic'",
        "SELECT {'latitude': get(lat_long, 0), 'longitude': get(lat_long, 1)} AS lat_long FROM 'a/b'",
        "SELECT [lat, long] AS lat_long FROM 'a/b'",
        "SELECT * FROM 'iot/rules' WHERE get(get(get(mydata, \"item2\"), \"0\"), \"my-key\") = \"myValue\"",
        "SELECT parse_time(\"yyyy.MM.dd G 'at' HH:mm:ss z\", timestamp()) AS ts FROM 'A/B'",
        "SELECT * FROM 'a' WHERE get_thing_shadow('MyThing', 'arn:aws:iam::123456789012:role/R').state.reported.alarm = 'ON'",
        "SELECT CASE color WHEN 'green' THEN 'go' WHEN 'yellow' THEN 'caution' ELSE 'stop' END AS instructions FROM 'a'",
        "SELECT * FROM 'a' WHERE a IS NOT NULL AND b IS UNDEFINED AND c NOT IN (1, 2) AND d != 3",
        "SELECT cast(a AS varchar) AS s, cast(b AS Integer) AS i, cast(c AS Boolean) AS b, cast(d AS Double) AS d FROM 'a'",
        "SELECT decode(encode(*, 'base64'), 'base64') AS value FROM 'topic/subtopic' WHERE decode(encode(*, 'base64'), 'base64') > 50",
    ] {
        if let Err(e) = Rule::parse(sql) {
            panic!("{sql}: {e}");
        }
    }
}
