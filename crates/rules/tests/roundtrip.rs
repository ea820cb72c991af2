//! Printing is the inverse of parsing: for generated syntax trees,
//! `parse(print(tree))` is the tree again, and so printing a parsed
//! statement and parsing it back changes nothing.

use civitas_rules::ast::{
    BinaryOp, CastType, Expr, ExprKind, From, Literal, Query, Select, SelectItem, Span, UnaryOp,
};
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "select", "from", "where", "as", "and", "or", "not", "case", "when", "then", "else", "end",
    "is", "in", "null", "true", "false", "value", "cast",
];

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_filter("not a keyword", |s| {
        !WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
    })
}

fn e(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        (0..=i64::MAX).prop_map(Literal::Int),
        (0.0f64..1e300).prop_map(Literal::Decimal),
        any::<String>().prop_map(Literal::String),
        "[a'\"/ ]{0,4}".prop_map(Literal::String),
    ]
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    prop_oneof![
        Just(BinaryOp::Or),
        Just(BinaryOp::And),
        Just(BinaryOp::Eq),
        Just(BinaryOp::Ne),
        Just(BinaryOp::Lt),
        Just(BinaryOp::Le),
        Just(BinaryOp::Gt),
        Just(BinaryOp::Ge),
        Just(BinaryOp::Add),
        Just(BinaryOp::Sub),
        Just(BinaryOp::Mul),
        Just(BinaryOp::Div),
        Just(BinaryOp::Rem),
    ]
}

fn cast_type() -> impl Strategy<Value = CastType> {
    prop_oneof![
        Just(CastType::Int),
        Just(CastType::Decimal),
        Just(CastType::Bool),
        Just(CastType::String),
    ]
}

fn expr() -> impl Strategy<Value = Expr> + Clone {
    let leaf = prop_oneof![
        literal().prop_map(|l| e(ExprKind::Literal(l))),
        name().prop_map(|n| e(ExprKind::Ident(n))),
    ];
    leaf.prop_recursive(4, 48, 4, |inner| {
        let arg = prop_oneof![4 => inner.clone(), 1 => Just(e(ExprKind::Star))];
        prop_oneof![
            (inner.clone(), name()).prop_map(|(b, n)| e(ExprKind::Field(Box::new(b), n))),
            (inner.clone(), inner.clone())
                .prop_map(|(b, i)| e(ExprKind::Index(Box::new(b), Box::new(i)))),
            (name(), prop::collection::vec(arg, 0..3))
                .prop_map(|(n, args)| e(ExprKind::Call(n.to_ascii_lowercase(), args))),
            (inner.clone(), cast_type()).prop_map(|(v, t)| e(ExprKind::Cast(Box::new(v), t))),
            inner
                .clone()
                .prop_map(|v| e(ExprKind::Unary(UnaryOp::Neg, Box::new(v)))),
            inner
                .clone()
                .prop_map(|v| e(ExprKind::Unary(UnaryOp::Not, Box::new(v)))),
            (binary_op(), inner.clone(), inner.clone()).prop_map(|(op, a, b)| e(ExprKind::Binary(
                op,
                Box::new(a),
                Box::new(b)
            ))),
            (inner.clone(), any::<bool>(), any::<bool>()).prop_map(|(x, negated, undefined)| {
                e(ExprKind::Is {
                    expr: Box::new(x),
                    negated,
                    undefined,
                })
            }),
            (
                inner.clone(),
                any::<bool>(),
                prop::collection::vec(inner.clone(), 1..3)
            )
                .prop_map(|(x, negated, list)| e(ExprKind::In {
                    expr: Box::new(x),
                    negated,
                    list,
                })),
            (
                prop::option::of(inner.clone()),
                prop::collection::vec((inner.clone(), inner.clone()), 1..3),
                prop::option::of(inner.clone()),
            )
                .prop_map(|(operand, whens, otherwise)| e(ExprKind::Case {
                    operand: operand.map(Box::new),
                    whens,
                    otherwise: otherwise.map(Box::new),
                })),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| e(ExprKind::Array(v))),
            prop::collection::vec((any::<String>(), inner.clone()), 0..3)
                .prop_map(|f| e(ExprKind::Object(f))),
            (
                select(inner.clone()),
                inner.clone(),
                prop::option::of(inner.clone())
            )
                .prop_map(|(select, from, filter)| e(ExprKind::Subquery(Box::new(
                    Query {
                        select,
                        from: From::Expr(from),
                        filter,
                    }
                )))),
        ]
    })
}

fn select(inner: impl Strategy<Value = Expr> + Clone) -> impl Strategy<Value = Select> {
    let item = prop_oneof![
        1 => Just(SelectItem::Star(Span::default())),
        4 => (inner.clone(), prop::option::of(name()))
            .prop_map(|(expr, alias)| SelectItem::Expr { expr, alias }),
    ];
    prop_oneof![
        inner.prop_map(Select::Value),
        prop::collection::vec(item, 1..4).prop_map(Select::Items),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    (select(expr()), "[a-z+#/]{1,12}", prop::option::of(expr())).prop_map(
        |(select, filter, where_)| Query {
            select,
            from: From::Topic {
                filter,
                span: Span::default(),
            },
            filter: where_,
        },
    )
}

fn parse_clean(sql: &str) -> Query {
    let mut q = Query::parse(sql).unwrap_or_else(|e| panic!("{sql}\n{e}"));
    q.clear_spans();
    q
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_then_parse_gives_the_tree_back(tree in query()) {
        let text = tree.to_string();
        let parsed = parse_clean(&text);
        prop_assert_eq!(&parsed, &tree, "{}", text);
        let again = parse_clean(&parsed.to_string());
        prop_assert_eq!(again, parsed);
    }
}

#[test]
fn parsed_statements_are_stable_under_printing() {
    for sql in [
        "SELECT * FROM 'a/#'",
        "SELECT a.b.c, x[0][1].y AS z, VALUE FROM 'a'",
        "SELECT VALUE - - 1 FROM 'a' WHERE NOT NOT a",
        "SELECT (1).a AS x, ('s').b AS y, 1.5 AS z FROM 'a'",
        "SELECT (SELECT VALUE v FROM ('x')) AS q FROM 'a'",
        "SELECT a FROM 'a' WHERE a = b = c AND (d OR e) AND f IS NULL IS NOT UNDEFINED",
        "SELECT a FROM 'a' WHERE 1 - (2 - 3) - 4 = -(5 * (6 % 7)) / 8",
        "SELECT a FROM 'a' WHERE x NOT IN (1, (2 + 3), 'x''y', [1], {'k': 2}) OR NOT y IN (1)",
    ] {
        let first = parse_clean(sql);
        let printed = first.to_string();
        assert_eq!(parse_clean(&printed), first, "{sql} -> {printed}");
    }
}
