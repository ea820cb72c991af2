//! Every way a policy document is refused, with the exact message.

use civitas_policy::{MAX_DOCUMENT_CHARS, PolicyDocument, PolicyError};

/// A document whose only statement is `statement`.
fn with_statement(statement: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)
}

const OK: &str = r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}"#;

#[test]
fn malformed_documents_and_their_messages() {
    let arn = "arn:aws:iot:eu-west-1:123456789012";
    let cases: Vec<(String, String)> = vec![
        // Document level.
        ("".into(), "policy document is not valid JSON: EOF while parsing a value at line 1 column 0".into()),
        ("{".into(), "policy document is not valid JSON: EOF while parsing an object at line 1 column 1".into()),
        ("[]".into(), "policy document: must be a JSON object".into()),
        ("\"x\"".into(), "policy document: must be a JSON object".into()),
        (
            r#"{"Version":"2012-10-17","Statement":[],"Extra":1}"#.into(),
            "Extra: unknown field (expected Version, Id and Statement)".into(),
        ),
        (
            format!(r#"{{"Statement":[{OK}]}}"#),
            "Version: missing; policies must declare \"Version\": \"2012-10-17\"".into(),
        ),
        (
            format!(r#"{{"Version":"2008-10-17","Statement":[{OK}]}}"#),
            "Version: \"2008-10-17\" is not supported; use \"2012-10-17\"".into(),
        ),
        (
            format!(r#"{{"Version":20121017,"Statement":[{OK}]}}"#),
            "Version: must be a string".into(),
        ),
        (
            format!(r#"{{"Version":"2012-10-17","Id":1,"Statement":[{OK}]}}"#),
            "Id: must be a string".into(),
        ),
        (r#"{"Version":"2012-10-17"}"#.into(), "Statement: missing".into()),
        (r#"{"Version":"2012-10-17","Statement":[]}"#.into(), "Statement: must not be empty".into()),
        (
            r#"{"Version":"2012-10-17","Statement":"x"}"#.into(),
            "Statement: must be an object or an array of objects".into(),
        ),
        (
            format!(r#"{{"Version":"2012-10-17","Statement":[{OK},"x"]}}"#),
            "Statement[1]: must be an object".into(),
        ),
        (
            r#"{"Version":"2012-10-17","Version":"2012-10-17","Statement":[]}"#.into(),
            "policy document is not valid JSON: duplicate field \"Version\" at line 1 column 33".into(),
        ),
        (
            with_statement(r#"{"Effect":"Deny","Action":"iot:*","Resource":"*","Effect":"Allow"}"#),
            "policy document is not valid JSON: duplicate field \"Effect\" at line 1 column 94".into(),
        ),
        // Statement fields.
        (
            with_statement(r#"{"Sid":7,"Effect":"Allow","Action":"iot:*","Resource":"*"}"#),
            "Statement[0].Sid: must be a string".into(),
        ),
        (
            with_statement(r#"{"Sid":"S1","Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{}}"#),
            "Statement[0].Condition (Sid \"S1\"): conditions are not supported; civitas evaluates \
             Effect, Action and Resource (use policy variables in Resource instead)"
                .into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","NotAction":"iot:*","Resource":"*"}"#),
            "Statement[0].NotAction: is not supported".into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Action":"iot:*","NotResource":"*"}"#),
            "Statement[0].NotResource: is not supported".into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Action":"iot:*","Resource":"*","Principal":"*"}"#),
            "Statement[0].Principal: is not supported".into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","action":"iot:*","Resource":"*"}"#),
            "Statement[0].action: unknown field (expected Sid, Effect, Action and Resource)".into(),
        ),
        (
            with_statement(r#"{"Action":"iot:*","Resource":"*"}"#),
            "Statement[0].Effect: missing (must be \"Allow\" or \"Deny\")".into(),
        ),
        (
            with_statement(r#"{"Effect":"allow","Action":"iot:*","Resource":"*"}"#),
            "Statement[0].Effect: \"allow\" must be \"Allow\" or \"Deny\"".into(),
        ),
        (
            with_statement(r#"{"Effect":true,"Action":"iot:*","Resource":"*"}"#),
            "Statement[0].Effect: must be a string".into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Resource":"*"}"#),
            "Statement[0].Action: missing".into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#),
            "Statement[0].Action: must not be empty".into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Action":{"a":1},"Resource":"*"}"#),
            "Statement[0].Action: must be a string or an array of strings".into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Action":["iot:Publish",3],"Resource":"*"}"#),
            "Statement[0].Action[1]: must be a string".into(),
        ),
        (
            with_statement(r#"{"Sid":"P","Effect":"Allow","Action":"Publish","Resource":"*"}"#),
            "Statement[0].Action (Sid \"P\"): \"Publish\" is not an action (expected SERVICE:NAME, \
             e.g. \"iot:Publish\", or \"*\")"
                .into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Action":["iot:Publish",""],"Resource":"*"}"#),
            "Statement[0].Action[1]: \"\" is not an action (expected SERVICE:NAME, e.g. \
             \"iot:Publish\", or \"*\")"
                .into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Action":"iot:*"}"#),
            "Statement[0].Resource: missing".into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Action":"iot:*","Resource":[]}"#),
            "Statement[0].Resource: must not be empty".into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Action":"iot:*","Resource":null}"#),
            "Statement[0].Resource: must be a string or an array of strings".into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Action":"iot:*","Resource":["*",1]}"#),
            "Statement[0].Resource[1]: must be a string".into(),
        ),
        // Resources.
        (
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{OK},{OK},{{"Effect":"Allow","Action":"iot:*","Resource":["arn:aws:iot:x"]}}]}}"#
            ),
            "Statement[2].Resource[0]: \"arn:aws:iot:x\" is not an IoT ARN".into(),
        ),
        (
            with_statement(r#"{"Sid":"R","Effect":"Allow","Action":"iot:*","Resource":"topic/a"}"#),
            "Statement[0].Resource (Sid \"R\"): \"topic/a\" is not an IoT ARN".into(),
        ),
        (
            with_statement(r#"{"Effect":"Allow","Action":"iot:*","Resource":"arn:aws:s3:::b/k"}"#),
            "Statement[0].Resource: \"arn:aws:s3:::b/k\" is not an IoT ARN".into(),
        ),
        (
            with_statement(&format!(
                r#"{{"Effect":"Allow","Action":"iot:*","Resource":"{arn}:topics/a"}}"#
            )),
            format!("Statement[0].Resource: unknown resource type \"topics\" in \"{arn}:topics/a\""),
        ),
        (
            with_statement(&format!(
                r#"{{"Effect":"Allow","Action":"iot:*","Resource":"{arn}:topic/${{iot:ClientId"}}"#
            )),
            format!(
                "Statement[0].Resource: \"{arn}:topic/${{iot:ClientId\": unterminated policy variable"
            ),
        ),
        (
            with_statement(&format!(
                r#"{{"Effect":"Allow","Action":"iot:*","Resource":"{arn}:topic/${{}}"}}"#
            )),
            format!(
                "Statement[0].Resource: \"{arn}:topic/${{}}\": malformed policy variable \"${{}}\" \
                 (expected ${{key}} or ${{key, 'default'}})"
            ),
        ),
        (
            with_statement(
                r#"{"Effect":"Allow","Action":"iot:*","Resource":"arn:aws:iot:${iot:ClientId}:1:topic/a"}"#,
            ),
            "Statement[0].Resource: policy variables are not allowed in the region or account of \
             \"arn:aws:iot:${iot:ClientId}:1:topic/a\""
                .into(),
        ),
    ];
    for (json, message) in cases {
        let error = PolicyDocument::parse(&json).expect_err(&json);
        assert_eq!(error.to_string(), message, "{json}");
    }
}

#[test]
fn size_limit_counts_characters_without_whitespace() {
    let statement = r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/xxxxxxxxxx"}"#;
    let build = |count: usize, padding: &str| {
        let statements = vec![statement; count].join(&format!(",{padding}"));
        format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
    };
    let count = (1..)
        .find(|&n| build(n, "").len() > MAX_DOCUMENT_CHARS)
        .unwrap();
    let largest = build(count - 1, "");
    assert!(PolicyDocument::parse(&largest).is_ok());
    // Whitespace is not counted, however much there is.
    assert!(PolicyDocument::parse(&build(count - 1, &"\n ".repeat(500))).is_ok());
    let too_large = build(count, "");
    assert_eq!(
        PolicyDocument::parse(&too_large),
        Err(PolicyError::TooLarge {
            chars: too_large.len(),
            limit: MAX_DOCUMENT_CHARS
        })
    );
    assert_eq!(
        PolicyDocument::parse(&too_large).unwrap_err().to_string(),
        format!(
            "policy document has {} characters excluding whitespace; the limit is 2048",
            too_large.len()
        )
    );
    // Exactly at the limit is fine.
    let padded = format!(
        r#"{{"Version":"2012-10-17","Id":"{}","Statement":{statement}}}"#,
        "i".repeat(0)
    );
    let exact = padded.replace(
        r#""Id":"""#,
        &format!(
            r#""Id":"{}""#,
            "i".repeat(MAX_DOCUMENT_CHARS - padded.len())
        ),
    );
    assert_eq!(exact.len(), MAX_DOCUMENT_CHARS);
    assert!(PolicyDocument::parse(&exact).is_ok());
}

#[test]
fn error_location_is_structured() {
    let error = PolicyDocument::parse(&with_statement(
        r#"{"Sid":"S","Effect":"Allow","Action":"iot:*","Resource":["*","arn:aws:iot:x"]}"#,
    ))
    .unwrap_err();
    let PolicyError::Invalid { location, problem } = error else {
        panic!("expected an Invalid error, got {error:?}");
    };
    assert_eq!(location.statement, Some(0));
    assert_eq!(location.sid.as_deref(), Some("S"));
    assert_eq!(location.field, "Resource[1]");
    assert_eq!(problem, "\"arn:aws:iot:x\" is not an IoT ARN");
}
