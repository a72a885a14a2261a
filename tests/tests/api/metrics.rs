//! `GET /metrics` after a mixed run: every family is there with non-zero values (pool
//! waits and WebSocket subscriptions included), and the endpoint is not public.

use futures_util::{SinkExt, StreamExt};
use sea_orm::TransactionTrait;
use serde_json::json;
use sha2::Digest;
use tests::{TestApp, on_both_backends, on_both_backends_with, valid_code};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn scrape(app: &TestApp, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = app.client.get(format!("{}/metrics", app.address));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The sum of the samples of `name` whose labels include every pair of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, sample) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let matches = metric == name
                && labels
                    .iter()
                    .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| sample.parse::<f64>().ok()).flatten()
        })
        .sum()
}

async fn every_family_has_values_after_a_mixed_run(app: TestApp) {
    let admin = app.admin();
    // A pool wait: every connection of the main pool is held (transactions standing for
    // busy requests) while a mutation begins its write; it waits, then runs once they end.
    let mut held = Vec::new();
    for _ in 0..app.state.settings.database.max_connections {
        held.push(app.state.db.begin().await.unwrap());
    }
    let waiting = {
        let client = app.client.clone();
        let url = format!("{}/graphql", app.address);
        let body = json!({"query": format!(
            "mutation {{ upsertOperator(input: {{uscc: \"{}\", name: \"指标等待公司\"}}) {{ id }} }}",
            valid_code("441802", 84)
        )});
        let token = admin.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for tx in held {
        tx.rollback().await.unwrap();
    }
    let waited = waiting.await.unwrap();
    assert!(
        waited["data"]["upsertOperator"]["id"].is_string(),
        "{waited}"
    );
    // A persisted query registered, then run by its hash.
    let persisted = "query MetricsPersisted { __typename }";
    let hash = hex::encode(sha2::Sha256::digest(persisted.as_bytes()));
    let extensions = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    app.post_json(
        Some(&admin),
        &json!({"query": persisted, "extensions": extensions}),
    )
    .await
    .data();
    app.post_json(Some(&admin), &json!({"extensions": extensions}))
        .await
        .data();
    // A mutation (the audit chain gets a head), a named query, a refused document, a
    // refused body, an unmatched path.
    app.create_operator(&valid_code("441802", 81), "指标测试公司")
        .await;
    app.gql(Some(&admin), "query MetricsProbe { __typename }", json!({}))
        .await
        .data();
    let refused = app
        .gql(
            Some(&admin),
            "query MetricsBroken { noSuchField }",
            json!({}),
        )
        .await;
    refused.assert_error("GRAPHQL_VALIDATION_FAILED");
    // A check: checks by domain and decision, the record group, the shared lookup.
    let partner = app
        .partner(
            "metrics-partner",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    app.gql(
        Some(&partner),
        "query($u: String!) { check(uscc: $u, domain: PROCUREMENT) { decision } }",
        json!({"u": valid_code("441802", 81)}),
    )
    .await
    .data();
    let bad_body = app.post_graphql_raw(None, b"not json".to_vec(), &[]).await;
    assert_eq!(bad_body.status, 400);
    assert_eq!(app.get("/no/such/page").await.status().as_u16(), 404);
    // A subscription connection, open while the metrics are read.
    let mut req = app.ws_url("/graphql/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {admin}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let ack = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ack.to_string().contains("connection_ack"), "{ack}");
    // A subscription, streaming while the metrics are read.
    let subscribe = json!({"id": "feed", "type": "subscribe",
        "payload": {"query": "subscription { registryChanged { cursor } }"}});
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();

    // The subscription starts in a task of its own: scrape until it is counted.
    let mut scraped = scrape(&app, &[]).await;
    for _ in 0..50 {
        if value(&scraped.1, "registry_websocket_subscriptions", &[]) > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        scraped = scrape(&app, &[]).await;
    }
    let (status, text) = scraped;
    assert_eq!(status, 200, "{text}");
    let graphql = [("method", "POST"), ("route", "/graphql"), ("status", "200")];
    for (name, labels, what) in [
        (
            "registry_http_requests_total",
            &graphql[..],
            "POST /graphql 200",
        ),
        (
            "registry_http_requests_total",
            &[("route", "default"), ("status", "404")][..],
            "unmatched 404",
        ),
        (
            "registry_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/graphql")][..],
            "latency histogram",
        ),
        (
            "registry_http_request_duration_seconds_bucket",
            &[("route", "/graphql"), ("le", "+Inf")][..],
            "latency buckets",
        ),
        (
            "registry_graphql_operations_total",
            &[("operation", "MetricsProbe"), ("outcome", "OK")][..],
            "named operation",
        ),
        (
            "registry_graphql_operations_total",
            &[("operation", "-"), ("outcome", "GRAPHQL_VALIDATION_FAILED")][..],
            "refused document",
        ),
        (
            "registry_refusals_total",
            &[("code", "BAD_REQUEST")][..],
            "refused body",
        ),
        ("registry_db_pool_connections", &[][..], "pool connections"),
        ("registry_db_pool_max_connections", &[][..], "pool size"),
        ("registry_audit_chain_head_event_id", &[][..], "audit head"),
        ("registry_websocket_connections", &[][..], "open sockets"),
        (
            "registry_websocket_connections_total",
            &[][..],
            "accepted sockets",
        ),
        (
            "registry_checks_total",
            &[("domain", "PROCUREMENT"), ("decision", "CLEAR")][..],
            "checks by domain and decision",
        ),
        (
            "registry_check_record_group_size_count",
            &[][..],
            "check-record groups",
        ),
        (
            "registry_check_record_commit_seconds_count",
            &[][..],
            "check-record commit latency",
        ),
        ("registry_db_pool_waits_total", &[][..], "pool waits"),
        (
            "registry_db_pool_wait_seconds_count",
            &[][..],
            "time waited for the pool",
        ),
        (
            "registry_db_pool_wait_seconds_sum",
            &[][..],
            "time waited for the pool",
        ),
        (
            "registry_websocket_subscriptions",
            &[][..],
            "open subscriptions",
        ),
        (
            "registry_websocket_subscriptions_total",
            &[][..],
            "subscriptions started",
        ),
        (
            "registry_persisted_queries_total",
            &[("outcome", "registered")][..],
            "persisted query registered",
        ),
        (
            "registry_persisted_queries_total",
            &[("outcome", "found")][..],
            "persisted query run by hash",
        ),
    ] {
        assert!(
            value(&text, name, labels) > 0.0,
            "{what}: {name}{labels:?} in\n{text}"
        );
    }
    assert!(text.contains("# TYPE registry_http_request_duration_seconds histogram"));
    if app.backend == tests::Backend::Postgres {
        // Single checks share lookup statements on PostgreSQL only.
        assert!(
            value(&text, "registry_check_lookup_group_size_count", &[]) > 0.0,
            "lookup groups in\n{text}"
        );
    }
    ws.close(None).await.ok();
}

/// Without a token, a request relayed by a proxy is refused even from loopback.
async fn without_a_token_only_direct_loopback_reads(app: TestApp) {
    app.create_operator(&valid_code("441802", 82), "指标访问公司")
        .await;
    let (status, _) = scrape(&app, &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(status, 403);
    let (status, _) = scrape(&app, &[("forwarded", "for=203.0.113.9")]).await;
    assert_eq!(status, 403);
    let (status, text) = scrape(&app, &[]).await;
    assert_eq!(status, 200);
    assert!(text.contains("registry_http_requests_total"));
}

fn with_a_token(settings: &mut api::config::Settings) {
    settings.metrics.token = Some("scrape-secret-1".into());
}

async fn with_a_token_only_the_token_reads(app: TestApp) {
    app.create_operator(&valid_code("441802", 83), "指标令牌公司")
        .await;
    let (status, body) = scrape(&app, &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("UNAUTHENTICATED"));
    let (status, _) = scrape(&app, &[("authorization", "Bearer wrong")]).await;
    assert_eq!(status, 401);
    // A registry access token is not the metrics token.
    let admin = format!("Bearer {}", app.admin());
    let (status, _) = scrape(&app, &[("authorization", &admin)]).await;
    assert_eq!(status, 401);
    let (status, text) = scrape(
        &app,
        &[
            ("authorization", "Bearer scrape-secret-1"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(text.contains("registry_http_requests_total"));
}

on_both_backends!(
    every_family_has_values_after_a_mixed_run,
    without_a_token_only_direct_loopback_reads,
);
on_both_backends_with!(with_a_token_only_the_token_reads => with_a_token);
