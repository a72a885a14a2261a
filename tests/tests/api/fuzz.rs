//! Property tests over HTTP: arbitrary GraphQL documents, variables and bodies never make
//! the server panic, answer 500, or send an error without a code (or with INTERNAL).

use api::config::Settings;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tests::{HttpAnswer, TestApp, on_both_backends_with};

const CASES: u32 = 300;

fn generous_limits(settings: &mut Settings) {
    settings.limits.public_rate_per_second = 0;
    settings.limits.rate_per_second = 0;
}

/// Pieces of GraphQL, including this schema's names, to build plausible garbage from.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "{",
    "}",
    "(",
    ")",
    ":",
    "$",
    "...",
    "@",
    "[",
    "]",
    "=",
    "!",
    ",",
    "|",
    "&",
    "query",
    "mutation",
    "subscription",
    "fragment",
    "on",
    "schema",
    "type",
    "operator",
    "upsertOperator",
    "uscc",
    "input",
    "name",
    "id",
    "version",
    "formerNames",
    "legalRepresentative",
    "expectedVersion",
    "checkDigitOverrideReason",
    "regionCode",
    "__typename",
    "__schema",
    "__type",
    "types",
    "fields",
    "ofType",
    "kind",
    "QueryRoot",
    "MutationRoot",
    "Operator",
    "UpsertOperatorInput",
    "String",
    "Int",
    "Boolean",
    "ID",
    "skip",
    "include",
    "deprecated",
    "if",
    "\"91110000101623741K\"",
    "\"x\"",
    "\"\"",
    "\"\\u0000\"",
    "\"\"\"block\"\"\"",
    "0",
    "-1",
    "1.5e308",
    "99999999999999999999",
    "true",
    "false",
    "null",
    "a",
    "b",
    "F",
    "$i",
    "$u",
    "#comment\n",
    "\n",
    "\t",
];

fn document() -> impl Strategy<Value = String> {
    prop_oneof![
        // Token soup: mostly-GraphQL garbage.
        4 => prop::collection::vec(prop::sample::select(TOKENS), 0..60)
            .prop_map(|t| t.join(" ")),
        // Valid documents with a random cut or insertion.
        3 => (prop::sample::select(VALID), any::<prop::sample::Index>(), prop::sample::select(TOKENS))
            .prop_map(|(doc, at, token)| {
                let cut = at.index(doc.len() + 1);
                let cut = (0..=cut).rev().find(|&i| doc.is_char_boundary(i)).unwrap_or(0);
                format!("{}{token}{}", &doc[..cut], &doc[cut..])
            }),
        // Anything at all.
        2 => "\\PC{0,300}",
    ]
}

const VALID: &[&str] = &[
    "{ __typename }",
    "query($u: String!) { operator(uscc: $u) { id uscc name formerNames legalRepresentative version } }",
    "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id version } }",
    "query A { ...F } fragment F on QueryRoot { __typename }",
    "{ __type(name: \"Operator\") { fields { name type { kind ofType { name } } } } }",
    "{ operator(uscc: \"91110000101623741K\") @include(if: true) { id } }",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,40}".prop_map(Value::String),
        Just(json!("91110000101623741K")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(&["i", "u", "uscc", "name", "expectedVersion", "x"][..])
                    .prop_map(str::to_string),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn variables() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        json_value(),
        // Shaped like this schema's inputs, with wrong or odd values.
        (json_value(), json_value(), json_value()).prop_map(|(u, n, v)| {
            json!({ "u": u, "i": { "uscc": u, "name": n, "expectedVersion": v } })
        }),
    ]
}

/// What every answer must satisfy, whatever was sent.
fn check(answer: &HttpAnswer) -> Result<(), TestCaseError> {
    prop_assert!(
        answer.status < 500,
        "status {}: {}",
        answer.status,
        answer.body
    );
    let responses: Vec<&Value> = match &answer.body {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for r in responses {
        prop_assert!(r.is_object(), "not a GraphQL answer: {}", answer.body);
        for err in r["errors"].as_array().into_iter().flatten() {
            let code = err["extensions"]["code"].as_str();
            prop_assert!(code.is_some(), "an error without a code: {}", err);
            prop_assert_ne!(code, Some("INTERNAL"), "{}", err);
        }
    }
    Ok(())
}

fn run<S: Strategy>(name: &str, strategy: S, case: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    tokio::task::block_in_place(|| {
        if let Err(err) = runner.run(&strategy, case) {
            panic!("{name}: {err}");
        }
    });
}

async fn arbitrary_documents_and_variables(app: TestApp) {
    let handle = tokio::runtime::Handle::current();
    let admin = app.admin();
    let strategy = (
        document(),
        variables(),
        prop::option::of(prop_oneof![Just("A".to_string()), "\\PC{0,10}"]),
        any::<bool>(),
    );
    run(
        "documents",
        strategy,
        |(query, variables, operation, as_admin)| {
            let mut body = json!({ "query": query, "variables": variables });
            if let Some(op) = operation {
                body["operationName"] = json!(op);
            }
            let token = as_admin.then_some(admin.as_str());
            let answer = handle.block_on(app.post_graphql(token, &body, &[]));
            check(&answer)
        },
    );
}

async fn arbitrary_bodies(app: TestApp) {
    let handle = tokio::runtime::Handle::current();
    let strategy = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        // Batches of odd members.
        prop::collection::vec(
            prop_oneof![json_value(), document().prop_map(|q| json!({ "query": q }))],
            0..12
        )
        .prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ];
    run("bodies", strategy, |bytes| {
        let answer = handle.block_on(app.post_graphql_raw(None, bytes, &[]));
        check(&answer)
    });
}

on_both_backends_with!(
    arbitrary_documents_and_variables => generous_limits,
    arbitrary_bodies => generous_limits,
);
