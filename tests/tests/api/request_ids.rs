//! `x-request-id` on every response of every route; a caller's usable id is kept and is
//! the id the GraphQL layer records (audit events), a missing or unusable one replaced.

use serde_json::json;
use tests::{TestApp, on_both_backends, valid_code};

fn is_uuid(value: Option<&str>) -> bool {
    value.is_some_and(|v| uuid::Uuid::parse_str(v).is_ok())
}

async fn get_with(app: &TestApp, path: &str, id: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(format!("{}{path}", app.address));
    if let Some(id) = id {
        req = req.header("x-request-id", id);
    }
    req.send().await.unwrap()
}

fn request_id(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn every_response_carries_a_request_id(app: TestApp) {
    let mut seen = std::collections::HashSet::new();
    for (path, status) in [
        ("/no/such/path", 404),
        ("/healthz", 200),
        ("/readyz", 200),
        ("/schema.graphql", 200),
        ("/.well-known/jwks.json", 200),
        // A GET that asks for an upgrade without a WebSocket handshake is refused.
        ("/graphql/ws", 400),
    ] {
        let resp = get_with(&app, path, None).await;
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let id = request_id(&resp);
        assert!(is_uuid(id.as_deref()), "{path}: {id:?}");
        assert!(seen.insert(id), "{path}: the id repeats");
    }
    let answer = app
        .post_graphql(None, &json!({ "query": "{ __typename }" }), &[])
        .await;
    assert_eq!(answer.status, 200);
    assert!(is_uuid(answer.header("x-request-id")));
    // Refusals made before GraphQL runs carry one too.
    let refused = app.post_graphql_raw(None, b"not json".to_vec(), &[]).await;
    assert_eq!(refused.status, 400);
    assert!(is_uuid(refused.header("x-request-id")));
}

async fn a_callers_request_id_is_kept_and_recorded(app: TestApp) {
    let resp = get_with(&app, "/no/such/path", Some("edge-7f3a")).await;
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(request_id(&resp).as_deref(), Some("edge-7f3a"));
    let resp = get_with(&app, "/healthz", Some("edge-7f3b")).await;
    assert_eq!(request_id(&resp).as_deref(), Some("edge-7f3b"));

    // The GraphQL layer uses the same id: the audit event of a mutation carries it.
    let id = format!("partner-gw:{}", uuid::Uuid::new_v4().simple());
    let admin = app.admin();
    let body = upsert(&valid_code("441802", 71), "请求编号测试公司");
    let answer = app
        .post_graphql(Some(&admin), &body, &[("x-request-id", &id)])
        .await;
    answer.gql().data();
    assert_eq!(answer.header("x-request-id"), Some(id.as_str()));
    assert_eq!(
        app.count_where("audit_events", &format!("request_id = '{id}'"))
            .await,
        1
    );

    // Unusable ids (a space, too long) are replaced by a new one.
    for bad in ["has space".to_string(), "x".repeat(129)] {
        let answer = app
            .post_graphql(
                None,
                &json!({ "query": "{ __typename }" }),
                &[("x-request-id", &bad)],
            )
            .await;
        assert_eq!(answer.status, 200);
        assert!(is_uuid(answer.header("x-request-id")), "{bad}");
    }
}

/// Caller-chosen ids may collide: a keyed retry asks whether its abandoned attempt
/// committed by that attempt's request id, and only the caller's own audit events count.
async fn another_callers_events_with_the_same_id_do_not_count(app: TestApp) {
    let other = app.token(api::auth::Role::Admin, "admin-other");
    let shared = "shared-edge-id-1";
    let committed = app
        .post_graphql(
            Some(&other),
            &upsert(&valid_code("441802", 72), "别人的请求"),
            &[("x-request-id", shared)],
        )
        .await;
    committed.gql().data();
    assert_eq!(
        app.count_where("audit_events", &format!("request_id = '{shared}'"))
            .await,
        1
    );

    // admin-city's attempt with the same id died before committing anything.
    let body = upsert(&valid_code("441802", 73), "自己的请求");
    let hash = api::domain::idempotency::fingerprint(&body);
    let stale = (chrono::Utc::now() - chrono::Duration::minutes(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    app.sql(&format!(
        "INSERT INTO idempotency_keys (subject, key, request_hash, response, created_at) VALUES ('admin:admin-city', 'dead-shared', '{hash}', '{{\"state\":\"pending\",\"request_id\":\"{shared}\"}}', '{stale}')"
    ))
    .await;
    let retry = app
        .post_graphql(
            Some(&app.admin()),
            &body,
            &[("idempotency-key", "dead-shared")],
        )
        .await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(
        retry.body["data"]["upsertOperator"]["version"], 1,
        "{}",
        retry.body
    );
}

fn upsert(uscc: &str, name: &str) -> serde_json::Value {
    json!({
        "query": "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id version } }",
        "variables": { "i": { "uscc": uscc, "name": name } }
    })
}

on_both_backends!(
    every_response_carries_a_request_id,
    a_callers_request_id_is_kept_and_recorded,
    another_callers_events_with_the_same_id_do_not_count,
);
