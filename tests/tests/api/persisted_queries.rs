//! Automatic persisted queries (Apollo's protocol) over POST, GET and the WebSocket, on
//! both backends: a hash alone is `PERSISTED_QUERY_NOT_FOUND` until its text was sent
//! once, then runs; a wrong hash is refused; and a persisted document meets exactly the
//! guards its text would (cost budget by role, GET never a mutation, the input guard,
//! depth, the Idempotency-Key).

use api::config::Settings;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tests::{HttpAnswer, TestApp, on_both_backends, on_both_backends_with, valid_code};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const GRJ: &str = "application/graphql-response+json";
const OPERATOR: &str = "query Operator($u: String!) { operator(uscc: $u) { uscc name } }";
const UPSERT: &str =
    "mutation Upsert($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id uscc } }";
const PUBLIC_PAGE: &str = "publicListings(first: 500) { edges { cursor node { id uscc operatorName listCode listName authority penaltyDocNo decisionDocNo decisionDate listedAt expiresAt violationCategory reason legalBasis } } pageInfo { hasNextPage endCursor } }";

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn extension(text: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": sha(text)}})
}

/// A hash-only request for `text`.
fn hash_only(text: &str, variables: Value) -> Value {
    json!({"variables": variables, "extensions": extension(text)})
}

/// The text with its hash: runs and registers the text.
fn with_text(text: &str, variables: Value) -> Value {
    json!({"query": text, "variables": variables, "extensions": extension(text)})
}

fn code_of(answer: &HttpAnswer) -> &str {
    answer.body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// GET /graphql with the parameters Apollo's `useGETForHashedQueries` sends.
async fn get_hash_only(
    app: &TestApp,
    token: Option<&str>,
    text: &str,
    variables: Value,
) -> (u16, Value) {
    let mut req = app.client.get(format!("{}/graphql", app.address)).query(&[
        ("variables", variables.to_string()),
        ("extensions", extension(text).to_string()),
    ]);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn a_hash_alone_runs_once_its_text_was_sent(app: TestApp) {
    let admin = app.admin();
    let code = valid_code("441802", 61);
    app.create_operator(&code, "持久化查询测试公司").await;
    let vars = json!({"u": code});

    // Unknown: the code and message Apollo clients look for; a request error (no data),
    // 200 for application/json and 400 for graphql-response+json.
    let unknown = app
        .post_graphql(Some(&admin), &hash_only(OPERATOR, vars.clone()), &[])
        .await;
    assert_eq!(unknown.status, 200, "{}", unknown.body);
    assert_eq!(code_of(&unknown), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(
        unknown.body["errors"][0]["message"],
        "PersistedQueryNotFound"
    );
    assert!(unknown.body.get("data").is_none(), "{}", unknown.body);
    let unknown = app
        .post_graphql(
            Some(&admin),
            &hash_only(OPERATOR, vars.clone()),
            &[("accept", GRJ)],
        )
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    let (status, body) = get_hash_only(&app, Some(&admin), OPERATOR, vars.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // The text with its hash runs and registers it.
    let registered = app
        .post_graphql(Some(&admin), &with_text(OPERATOR, vars.clone()), &[])
        .await;
    assert_eq!(
        registered.body["data"]["operator"]["uscc"],
        code.as_str(),
        "{}",
        registered.body
    );

    // From now on the hash alone runs, with any variables, over POST, GET and WebSocket.
    let other = valid_code("441802", 62);
    app.create_operator(&other, "持久化查询另一公司").await;
    let by_hash = app
        .post_graphql(Some(&admin), &hash_only(OPERATOR, json!({"u": other})), &[])
        .await;
    assert_eq!(by_hash.status, 200, "{}", by_hash.body);
    assert_eq!(
        by_hash.body["data"]["operator"]["name"], "持久化查询另一公司",
        "{}",
        by_hash.body
    );
    let (status, body) = get_hash_only(&app, Some(&admin), OPERATOR, vars.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["operator"]["uscc"], code.as_str(), "{body}");

    let mut ws = connect(&app, &admin).await;
    send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": hash_only(OPERATOR, vars.clone())}),
    )
    .await;
    let next = next_message(&mut ws).await;
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(
        next["payload"]["data"]["operator"]["uscc"],
        code.as_str(),
        "{next}"
    );
    // Over the socket an unknown hash is the operation's error, with the same code.
    send(&mut ws, json!({"id": "2", "type": "subscribe", "payload": hash_only("{ lists { code } }", json!({}))})).await;
    let error = loop {
        let msg = next_message(&mut ws).await;
        if msg["id"] == "2" {
            break msg;
        }
    };
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    ws.close(None).await.ok();

    // Batches resolve each operation.
    let batch = json!([hash_only(OPERATOR, vars.clone()), {"query": "{ __typename }"}]);
    let answer = app.post_graphql(Some(&admin), &batch, &[]).await;
    assert_eq!(
        answer.body[0]["data"]["operator"]["uscc"],
        code.as_str(),
        "{}",
        answer.body
    );
    assert_eq!(answer.body[1]["data"]["__typename"], "QueryRoot");
    // One unknown hash in a batch: nothing runs, each operation says why.
    let batch = json!([hash_only("{ lists { code } }", json!({})), {"query": "{ __typename }"}]);
    let answer = app.post_graphql(Some(&admin), &batch, &[]).await;
    assert_eq!(
        answer.body[0]["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{}",
        answer.body
    );
    assert_eq!(
        answer.body[1]["errors"][0]["extensions"]["code"], "BATCH_NOT_RUN",
        "{}",
        answer.body
    );
}

async fn a_wrong_or_malformed_hash_is_refused(app: TestApp) {
    let admin = app.admin();
    let text = "{ lists { code } }";
    let wrong = json!({"query": text, "extensions": extension("{ somethingElse }")});
    let answer = app
        .post_graphql(Some(&admin), &wrong, &[("accept", GRJ)])
        .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(
        code_of(&answer),
        "PERSISTED_QUERY_HASH_MISMATCH",
        "{}",
        answer.body
    );
    assert!(answer.body.get("data").is_none());
    // Neither hash was registered by it.
    for hash_of in [text, "{ somethingElse }"] {
        let answer = app
            .post_graphql(Some(&admin), &hash_only(hash_of, json!({})), &[])
            .await;
        assert_eq!(
            code_of(&answer),
            "PERSISTED_QUERY_NOT_FOUND",
            "{}",
            answer.body
        );
    }
    for bad in [
        json!({"persistedQuery": {"version": 2, "sha256Hash": sha(text)}}),
        json!({"persistedQuery": {"version": 1, "sha256Hash": "not-hex"}}),
        json!({"persistedQuery": "yes"}),
    ] {
        let answer = app
            .post_graphql(
                Some(&admin),
                &json!({"query": text, "extensions": bad}),
                &[],
            )
            .await;
        assert_eq!(
            code_of(&answer),
            "PERSISTED_QUERY_INVALID",
            "{bad}: {}",
            answer.body
        );
    }
}

/// The guards run on every request of a persisted document, for its caller.
async fn a_persisted_document_meets_the_same_guards(app: TestApp) {
    let admin = app.admin();
    let auditor = app.auditor();

    // The cost budget is the caller's: two 500-row public pages fit an auditor's budget,
    // not the public's, whether the public sends the text or the hash.
    let two_pages = format!("{{ a: {PUBLIC_PAGE} b: {PUBLIC_PAGE} }}");
    let registered = app
        .post_graphql(Some(&auditor), &with_text(&two_pages, json!({})), &[])
        .await;
    assert_eq!(registered.status, 200, "{}", registered.body);
    assert!(
        registered.body["data"]["a"].is_object(),
        "{}",
        registered.body
    );
    let by_hash = app
        .post_graphql(Some(&auditor), &hash_only(&two_pages, json!({})), &[])
        .await;
    assert!(by_hash.body["data"]["b"].is_object(), "{}", by_hash.body);
    let sent = app
        .post_graphql(None, &json!({"query": two_pages}), &[])
        .await;
    assert_eq!(code_of(&sent), "QUERY_TOO_COMPLEX", "{}", sent.body);
    let public = app
        .post_graphql(None, &hash_only(&two_pages, json!({})), &[])
        .await;
    assert_eq!(code_of(&public), "QUERY_TOO_COMPLEX", "{}", public.body);
    assert_eq!(
        public.body["errors"][0]["extensions"]["details"],
        sent.body["errors"][0]["extensions"]["details"]
    );

    // A mutation registered over POST (where it runs) is still refused over GET.
    let code = valid_code("441802", 63);
    let input = json!({"i": {"uscc": code, "name": "持久化变更测试公司"}});
    let ran = app
        .post_graphql(Some(&admin), &with_text(UPSERT, input.clone()), &[])
        .await;
    assert_eq!(
        ran.body["data"]["upsertOperator"]["uscc"],
        code.as_str(),
        "{}",
        ran.body
    );
    let other = valid_code("441802", 64);
    let (status, body) = get_hash_only(
        &app,
        Some(&admin),
        UPSERT,
        json!({"i": {"uscc": other, "name": "不应写入公司"}}),
    )
    .await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "METHOD_NOT_ALLOWED"
    );
    assert_eq!(app.count("operators").await, 1, "the GET must not write");

    // A mutation retried by hash under the same Idempotency-Key is the same request.
    let keyed = valid_code("441802", 65);
    let input = json!({"i": {"uscc": keyed, "name": "持久化幂等测试公司"}});
    let key = [("idempotency-key", "apq-key-1")];
    let first = app
        .post_graphql(Some(&admin), &with_text(UPSERT, input.clone()), &key)
        .await;
    assert!(
        first.body["data"]["upsertOperator"]["id"].is_string(),
        "{}",
        first.body
    );
    let again = app
        .post_graphql(Some(&admin), &hash_only(UPSERT, input.clone()), &key)
        .await;
    assert_eq!(
        again.header("idempotent-replayed"),
        Some("true"),
        "{}",
        again.body
    );
    assert_eq!(again.body, first.body);
    let plain = json!({"query": UPSERT, "variables": input});
    let third = app.post_graphql(Some(&admin), &plain, &key).await;
    assert_eq!(
        third.header("idempotent-replayed"),
        Some("true"),
        "{}",
        third.body
    );
    assert_eq!(app.count("operators").await, 2);

    // The input guard and the depth limit refuse the hash as they refuse the text.
    let control = "{ operator(uscc: \"9144\\u0007\") { id } }";
    let sent = app
        .post_graphql(Some(&admin), &with_text(control, json!({})), &[])
        .await;
    assert_eq!(code_of(&sent), "BAD_USER_INPUT", "{}", sent.body);
    let by_hash = app
        .post_graphql(Some(&admin), &hash_only(control, json!({})), &[])
        .await;
    assert_eq!(code_of(&by_hash), "BAD_USER_INPUT", "{}", by_hash.body);
    // Nested past the parser's bound: refused before validation, by hash as by text.
    let deep = format!("{{ {}__typename{} }}", "a { ".repeat(40), " }".repeat(40));
    let sent = app
        .post_graphql(Some(&admin), &with_text(&deep, json!({})), &[])
        .await;
    let refused = code_of(&sent).to_string();
    assert_eq!(refused, "QUERY_TOO_DEEP", "{}", sent.body);
    let by_hash = app
        .post_graphql(Some(&admin), &hash_only(&deep, json!({})), &[])
        .await;
    assert_eq!(code_of(&by_hash), refused, "{}", by_hash.body);
}

/// Two 500-row pages cost more than the default buckets hold: this test is about the
/// budget, not the rate.
fn generous_rates(settings: &mut Settings) {
    settings.limits.rate_per_second = 100_000;
    settings.limits.rate_burst = 100_000;
    settings.limits.public_rate_per_second = 100_000;
    settings.limits.public_rate_burst = 100_000;
}

fn persisted_queries_off(settings: &mut Settings) {
    settings.limits.persisted_queries = 0;
}

/// Off: Apollo clients are told so, and fall back to sending texts.
async fn persisted_queries_can_be_turned_off(app: TestApp) {
    let text = "{ __typename }";
    for body in [with_text(text, json!({})), hash_only(text, json!({}))] {
        let answer = app.post_graphql(None, &body, &[]).await;
        assert_eq!(
            code_of(&answer),
            "PERSISTED_QUERY_NOT_SUPPORTED",
            "{}",
            answer.body
        );
        assert_eq!(
            answer.body["errors"][0]["message"],
            "PersistedQueryNotSupported"
        );
    }
    let plain = app.post_graphql(None, &json!({"query": text}), &[]).await;
    assert_eq!(plain.body["data"]["__typename"], "QueryRoot");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, token: &str) -> Ws {
    let mut req = app.ws_url("/graphql/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    let ack = next_message(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

/// The next text message (pings skipped), within five seconds.
async fn next_message(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("the socket is open")
            .expect("a readable message");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

on_both_backends!(
    a_hash_alone_runs_once_its_text_was_sent,
    a_wrong_or_malformed_hash_is_refused,
);
on_both_backends_with!(
    a_persisted_document_meets_the_same_guards => generous_rates,
    persisted_queries_can_be_turned_off => persisted_queries_off,
);
