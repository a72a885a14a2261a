//! Rate limits per token subject and per client address: 429, Retry-After, RATE_LIMITED.

use api::config::Settings;
use serde_json::json;
use tests::{HttpAnswer, TestApp, on_both_backends_with};

fn strict(settings: &mut Settings) {
    settings.limits.rate_per_second = 1;
    settings.limits.rate_burst = 3;
    settings.limits.public_rate_per_second = 1;
    settings.limits.public_rate_burst = 2;
}

/// One request a second, a burst of ten: a refused costly document must empty it.
fn small_burst(settings: &mut Settings) {
    settings.limits.rate_per_second = 1;
    settings.limits.rate_burst = 10;
}

/// The strict limits with 429s held as in production (the harness answers them at once).
fn strict_and_held(settings: &mut Settings) {
    strict(settings);
    settings.limits.rate_limited_hold_ms = 700;
}

fn behind_a_proxy(settings: &mut Settings) {
    strict(settings);
    settings.limits.trusted_proxies = vec!["127.0.0.1".into()];
}

async fn call(app: &TestApp, token: Option<&str>, headers: &[(&str, &str)]) -> HttpAnswer {
    app.post_graphql(token, &json!({ "query": "{ __typename }" }), headers)
        .await
}

fn assert_limited(answer: &HttpAnswer) {
    assert_eq!(answer.status, 429, "{}", answer.body);
    answer.gql().assert_error("RATE_LIMITED");
    let retry: u64 = answer
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!((1..=2).contains(&retry), "{retry}");
}

async fn each_subject_has_its_own_bucket(app: TestApp) {
    let admin = app.admin();
    let partner_same_name = app
        .partner("admin-city", &[api::domain::measures::Domain::Procurement])
        .await;
    for _ in 0..3 {
        assert_eq!(call(&app, Some(&admin), &[]).await.status, 200);
    }
    assert_limited(&call(&app, Some(&admin), &[]).await);
    // Another caller is not affected; nor is the same subject under another role.
    assert_eq!(call(&app, Some(&app.auditor()), &[]).await.status, 200);
    assert_eq!(call(&app, Some(&partner_same_name), &[]).await.status, 200);
    // A batch costs one request per operation.
    let auditor2 = app.token(api::auth::Role::Auditor, "auditor-2");
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    assert_eq!(
        app.post_graphql(Some(&auditor2), &batch, &[]).await.status,
        200
    );
    assert_limited(&call(&app, Some(&auditor2), &[]).await);
    // The bucket refills at the configured rate.
    // Real time: buckets refill by the monotonic clock, not the registry's.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(call(&app, Some(&admin), &[]).await.status, 200);
}

async fn anonymous_callers_are_counted_by_address(app: TestApp) {
    for _ in 0..2 {
        assert_eq!(call(&app, None, &[]).await.status, 200);
    }
    // X-Forwarded-For from an untrusted peer changes nothing.
    assert_limited(&call(&app, None, &[("x-forwarded-for", "198.51.100.9")]).await);
    // Refused tokens count against the address too (they cost a signature check).
    assert_limited(&call(&app, Some("garbage"), &[]).await);
    // Authenticated callers from the same address have their own buckets.
    assert_eq!(call(&app, Some(&app.admin()), &[]).await.status, 200);
}

async fn trusted_proxies_forward_the_client_address(app: TestApp) {
    let a = [("x-forwarded-for", "198.51.100.1")];
    let b = [("x-forwarded-for", "203.0.113.50, 198.51.100.2")];
    for _ in 0..2 {
        assert_eq!(call(&app, None, &a).await.status, 200);
    }
    assert_limited(&call(&app, None, &a).await);
    // Another client behind the same proxy: its own bucket (the right-most entry).
    assert_eq!(call(&app, None, &b).await.status, 200);
    // A client cannot escape by prepending addresses: the right-most untrusted one counts.
    let spoof = [("x-forwarded-for", "10.9.9.9, 198.51.100.1")];
    assert_limited(&call(&app, None, &spoof).await);
    // Nor by sending a line of its own: HAProxy's `option forwardfor` adds another line
    // after it, and the right-most entry of all the lines is the one the proxy wrote.
    let c = "198.51.100.3";
    for i in 0..3 {
        let own = format!("10.9.9.{i}");
        let lines = [("x-forwarded-for", own.as_str()), ("x-forwarded-for", c)];
        let answer = call(&app, None, &lines).await;
        if i < 2 {
            assert_eq!(answer.status, 200, "{}", answer.body);
        } else {
            assert_limited(&answer);
        }
    }
}

/// WebSocket upgrades count against the client address; each `connection_init` against
/// its token's subject.
async fn websocket_connections_are_rate_limited(app: TestApp) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let connect = || async {
        let mut req = app.ws_url("/graphql/ws").into_client_request().unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        tokio_tungstenite::connect_async(req).await
    };
    // The address's burst is 2: two upgrades pass, the third is refused before upgrading.
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(connect().await.expect("upgrade").0);
    }
    match connect().await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429);
            assert!(resp.headers().get("retry-after").is_some());
        }
        other => panic!(
            "expected HTTP 429, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    // The subject's burst is 3, and the admin token already spent it on /graphql.
    let admin = app.admin();
    for _ in 0..3 {
        assert_eq!(call(&app, Some(&admin), &[]).await.status, 200);
    }
    let ws = &mut open[0];
    let init = serde_json::json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {admin}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await;
    // Refused: the connection is closed before any acknowledgement (not left hanging).
    let closed = matches!(
        &answer,
        Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_))))
    );
    assert!(closed, "a limited subject was not refused: {answer:?}");
    // Another subject still connects (on the second open socket).
    let auditor = app.auditor();
    let ws = &mut open[1];
    let init = serde_json::json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {auditor}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .expect("an answer");
    assert!(
        matches!(&answer, Some(Ok(Message::Text(t))) if t.contains("connection_ack")),
        "{answer:?}"
    );
}

/// A document refused for its cost is charged that cost anyway (capped at the burst, into
/// debt): otherwise a caller resending one that is refused after parsing and validation
/// costs the server that work every time without ever meeting its rate limit.
async fn a_document_refused_for_its_cost_is_charged_its_cost(app: TestApp) {
    let auditor = app.auditor();
    let aliases: Vec<String> = (0..30)
        .map(|i| format!("a{i}: publicListings(first: 500) {{ edges {{ node {{ id }} }} }}"))
        .collect();
    let costly = json!({ "query": format!("{{ {} }}", aliases.join(" ")) });
    let refused = app.post_graphql(Some(&auditor), &costly, &[]).await;
    refused.gql().assert_error("QUERY_TOO_COMPLEX");
    // Nine of the ten tokens were left after the door took one; the refusal owes them all
    // and more, so the next request of this caller is refused before its body is read.
    assert_limited(&call(&app, Some(&auditor), &[]).await);
    // Nobody else pays for it.
    let other = app.token(api::auth::Role::Auditor, "auditor-2");
    assert_eq!(call(&app, Some(&other), &[]).await.status, 200);
}

/// A refusal for the rate is sent after its Retry-After time, at most
/// `limits.rate_limited_hold_ms` (here 700 ms): a client in a closed loop is slowed to one
/// request per hold per connection instead of being refused thousands of times a second.
/// Answers that are not 429 are not held.
async fn a_refusal_is_held_for_its_retry_after(app: TestApp) {
    use std::time::{Duration, Instant};
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(call(&app, None, &[]).await.status, 200);
        assert!(started.elapsed() < Duration::from_millis(700));
    }
    let started = Instant::now();
    let refused = call(&app, None, &[]).await;
    let waited = started.elapsed();
    assert_limited(&refused);
    assert!(
        waited >= Duration::from_millis(700),
        "answered after {waited:?}"
    );
    // A refused WebSocket upgrade is held the same way.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        app.ws_url("/graphql/ws"),
    )
    .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        tokio_tungstenite::tungstenite::http::HeaderValue::from_static("graphql-transport-ws"),
    );
    let started = Instant::now();
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429)
        }
        other => panic!(
            "expected HTTP 429, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    assert!(started.elapsed() >= Duration::from_millis(700));
}

/// `/schema.graphql` is an anonymous request like any: counted per client address.
async fn the_schema_download_is_rate_limited(app: TestApp) {
    let mut served = Vec::new();
    for _ in 0..2 {
        let resp = app.get("/schema.graphql").await;
        assert_eq!(resp.status(), 200);
        served.push(resp.text().await.unwrap());
    }
    assert!(served[0].contains("type Query"), "{}", served[0]);
    assert_eq!(served[0], served[1]);
    let refused = app.get("/schema.graphql").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
}

on_both_backends_with!(
    the_schema_download_is_rate_limited => strict,
    a_refusal_is_held_for_its_retry_after => strict_and_held,
    a_document_refused_for_its_cost_is_charged_its_cost => small_burst,
    websocket_connections_are_rate_limited => strict,
    each_subject_has_its_own_bucket => strict,
    anonymous_callers_are_counted_by_address => strict,
    trusted_proxies_forward_the_client_address => behind_a_proxy,
);
